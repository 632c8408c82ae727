// Dataset lookup by name: default locations, normalisation statistics, deterministic train/val split.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/image_set.h>

#include <string>
#include <vector>

namespace pdeq::data {

struct DatasetInfo {
  std::string name;                ///< cifar10 | cifar100 | fashion_mnist | mnist
  std::string default_root;        ///< e.g. ../shared/data/cifar-10-batches-bin
  int64_t channels, height, width, num_classes;
  std::vector<double> mean, std;   ///< per channel, on [0,1] pixel values
};

/// Throws std::invalid_argument listing the known names.
const DatasetInfo& dataset_info(const std::string& name);
std::vector<std::string> dataset_names();

struct DataSplits {
  ImageSet train, val, test;
  DatasetInfo info;
};

/// Reads the configured dataset (root or its default), splits val_size off the training files by split_seed,
/// applies the limits. Missing or malformed files throw std::runtime_error naming the path.
DataSplits load_image_data(const config::DataConfig& config);

}  // namespace pdeq::data
