// Dataset lookup by name: default locations, normalisation statistics, deterministic train/val split.
#pragma once

#include <pdeq/data/image_set.h>

#include <string>
#include <vector>

namespace pdeq::data {

/// What pdeq knows about a dataset before reading it.
struct DatasetInfo {
  std::string name;          ///< cifar10 | cifar100 | fashion_mnist | mnist
  std::string default_root;  ///< e.g. ../shared/data/cifar-10-batches-bin (relative to the working directory)
  int64_t channels, height, width, num_classes;
  std::vector<double> mean, std;  ///< per channel, on [0,1] pixel values (training-set statistics)
};

/// The entry for `name`; throws std::invalid_argument listing the known names.
///
/// Default roots: CIFAR-10 `../shared/data/cifar-10-batches-bin`, CIFAR-100
/// `../shared/data/cifar-100-binary` (relative to the working directory, the repository root), Fashion-MNIST
/// `/usr/share/datasets/fashion-mnist` (Debian's dataset-fashion-mnist), MNIST `/usr/share/datasets/mnist`.
/// When the environment variable PDEQ_DATA_DIR is set, the CIFAR defaults are
/// `$PDEQ_DATA_DIR/cifar-10-batches-bin` and `$PDEQ_DATA_DIR/cifar-100-binary` instead. The variable is read
/// on every call, which is why the entry is returned by value. `data.root` in a config overrides all of this.
DatasetInfo dataset_info(const std::string& name);
std::vector<std::string> dataset_names();

/// Whose per-channel statistics normalise a dataset's images.
enum class Normalization {
  kReference,  ///< the reference implementation's constants (CIFAR-10 std 0.2023, 0.1994, 0.2010)
  kDataset,    ///< the training set's measured statistics (CIFAR-10 std 0.2470, 0.2435, 0.2616)
};

/// `info` with the mean/std of `normalization` (they differ for CIFAR-10 only).
DatasetInfo with_normalization(DatasetInfo info, Normalization normalization);

/// Which images of a dataset's files a run uses: data.val_size, data.split_seed and data.limit_* of a config.
struct SplitOptions {
  int64_t val_size = 5000;  ///< held out from the training files, deterministic by split_seed
  uint64_t split_seed = 0;
  int64_t limit_train = 0;  ///< 0: all; otherwise the first N after the split
  int64_t limit_val = 0;
  int64_t limit_test = 0;
};

/// An in-memory dataset (CIFAR, Fashion-MNIST, MNIST) to read.
struct ImageDataOptions {
  std::string dataset = "cifar10";  ///< a name of dataset_names()
  std::string root;                 ///< empty: the dataset's default location
  SplitOptions split;
  Normalization normalization = Normalization::kReference;  ///< the mean/std of DataSplits::info
};

struct DataSplits {
  ImageSet train, val, test;
  DatasetInfo info;
};

/// Indices into the training files: validation and training part (see load_image_data).
struct TrainValSplit {
  std::vector<int64_t> train, val;
};

/// The split of n training files that load_image_data makes: val = the first val_size entries of a
/// permutation seeded by split_seed, train = the rest, then the first limit_train / limit_val of each.
/// val_size >= n throws c10::ValueError "data.val_size: expected fewer than the <n> <what>, got <v>" (errors
/// name the config keys the options come from).
TrainValSplit split_train_val(int64_t n, const SplitOptions& options, const std::string& what);

/// Reads the dataset (root or its default) and splits it:
///   - val: the first val_size images of a permutation of the training files seeded by split_seed;
///   - train: the rest of that permutation (train and val are disjoint and together are the training files);
///   - test: the test files in file order;
/// then keeps the first limit_train / limit_val / limit_test images of each (0: all; a limit above the size
/// keeps all). The same split_seed gives the same split on every platform. Missing or malformed files throw
/// std::runtime_error naming the path; val_size >= the number of training images or a negative size throws
/// c10::ValueError naming the config key (data.val_size, data.limit_*).
DataSplits load_image_data(const ImageDataOptions& options);

}  // namespace pdeq::data
