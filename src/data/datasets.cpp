// The dataset table and load_image_data(): read, validate shape, split train/val by seed, apply limits.
#include <pdeq/data/datasets.h>

#include <pdeq/data/image_folder.h>

#include "random.h"

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace pdeq::data {
namespace {

/// Stream tag so that the split permutation never coincides with a loader stream of the same seed.
constexpr uint64_t kSplitStream = 0x73706c6974ULL;  // "split"

/// `<PDEQ_DATA_DIR>/<folder>` when the variable is set and non-empty, else `../shared/data/<folder>`
/// (the shared data folder beside the repository, relative to the repository root as working directory).
std::string shared_default(const std::string& folder) {
  const char* dir = std::getenv("PDEQ_DATA_DIR");
  return (dir != nullptr && *dir != '\0' ? std::string(dir) : std::string("../shared/data")) + "/" + folder;
}

std::vector<DatasetInfo> dataset_table() {
  // Mean/std: the usual per-channel statistics of each training set, on [0, 1] pixels.
  // clang-format off
  return {
      // name           default root                           C   H   W   classes
      //                mean                      std
      {"cifar10",       shared_default("cifar-10-batches-bin"), 3, 32, 32, 10,
                        {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}},
      {"cifar100",      shared_default("cifar-100-binary"),     3, 32, 32, 100,
                        {0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762}},
      {"fashion_mnist", "/usr/share/datasets/fashion-mnist",    1, 28, 28, 10,
                        {0.2860},                 {0.3530}},
      {"mnist",         "/usr/share/datasets/mnist",            1, 28, 28, 10,
                        {0.1307},                 {0.3081}},
  };
  // clang-format on
}

ImageSet read_split(const DatasetInfo& info, const std::string& root, Split split) {
  if (info.name == "cifar10") return read_cifar10(root, split);
  if (info.name == "cifar100") return read_cifar100(root, split);
  return read_mnist_idx(root, split, info.name);  // fashion_mnist, mnist
}

std::string shape_string(int64_t c, int64_t h, int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

void expect_shape(const ImageSet& set, const DatasetInfo& info, const std::string& root) {
  const auto& s = set.images.sizes();
  if (s[1] != info.channels || s[2] != info.height || s[3] != info.width ||
      set.num_classes != info.num_classes) {
    throw std::runtime_error(root + ": " + set.name + " holds " + shape_string(s[1], s[2], s[3]) +
                             " images of " + std::to_string(set.num_classes) + " classes, expected " +
                             shape_string(info.channels, info.height, info.width) + " images of " +
                             std::to_string(info.num_classes) + " classes for " + info.name);
  }
}

void expect_non_negative(int64_t value, const char* key) {
  if (value < 0) {
    TORCH_CHECK_VALUE(false, key, ": expected an integer >= 0, got ", value);
  }
}

/// order[begin, end), cut to its first `limit` entries (all when limit is 0 or exceeds the size).
std::vector<int64_t> head(const std::vector<int64_t>& order, int64_t begin, int64_t end, int64_t limit) {
  if (limit > 0) end = std::min(end, begin + limit);
  return std::vector<int64_t>(order.begin() + begin, order.begin() + end);
}

}  // namespace

DatasetInfo dataset_info(const std::string& name) {
  for (auto& info : dataset_table()) {
    if (info.name == name) return info;
  }
  throw std::invalid_argument("unknown dataset \"" + name +
                              "\", expected one of: " + c10::Join(", ", dataset_names()));
}

DatasetInfo with_normalization(DatasetInfo info, Normalization normalization) {
  // The reference's CIFAR-10 std (0.2023, 0.1994, 0.2010) is the widespread one from pytorch-cifar; the
  // measured std of the training pixels is larger. Its CIFAR-100 constants equal the measured ones.
  if (normalization == Normalization::kReference && info.name == "cifar10")
    info.std = {0.2023, 0.1994, 0.2010};
  return info;
}

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const auto& info : dataset_table()) names.push_back(info.name);
  return names;
}

TrainValSplit split_train_val(int64_t n, const SplitOptions& options, const std::string& what) {
  expect_non_negative(options.val_size, "data.val_size");
  expect_non_negative(options.limit_train, "data.limit_train");
  expect_non_negative(options.limit_val, "data.limit_val");
  TORCH_CHECK_VALUE(options.val_size < n, "data.val_size: expected fewer than the ", n, " ", what, ", got ",
                    options.val_size);
  detail::SplitMix64 rng(detail::derive_seed({options.split_seed, kSplitStream}));
  const std::vector<int64_t> order = detail::permutation(n, rng);
  return {head(order, options.val_size, n, options.limit_train),
          head(order, 0, options.val_size, options.limit_val)};
}

DataSplits load_image_data(const ImageDataOptions& options) {
  const SplitOptions& split_options = options.split;
  DataSplits out;
  out.info = with_normalization(dataset_info(options.dataset), options.normalization);
  expect_non_negative(split_options.val_size, "data.val_size");
  expect_non_negative(split_options.limit_train, "data.limit_train");
  expect_non_negative(split_options.limit_val, "data.limit_val");
  expect_non_negative(split_options.limit_test, "data.limit_test");
  const std::string root = options.root.empty() ? out.info.default_root : options.root;

  ImageSet train_files = read_split(out.info, root, Split::kTrain);
  ImageSet test_files = read_split(out.info, root, Split::kTest);
  expect_shape(train_files, out.info, root);
  expect_shape(test_files, out.info, root);

  const TrainValSplit split = split_train_val(train_files.size(), split_options,
                                              "training images of " + out.info.name + " in " + root);
  const auto as_tensor = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64); };
  out.val = train_files.subset(as_tensor(split.val));
  out.train = train_files.subset(as_tensor(split.train));
  if (split_options.limit_test > 0 && split_options.limit_test < test_files.size()) {
    out.test = test_files.subset(torch::arange(split_options.limit_test, torch::kInt64));
  } else {
    out.test = std::move(test_files);
  }
  out.train.name = out.info.name + "/train";
  out.val.name = out.info.name + "/val";
  out.test.name = out.info.name + "/test";
  return out;
}

}  // namespace pdeq::data
