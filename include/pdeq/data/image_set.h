// An image classification split held whole in memory as uint8, plus the readers that produce one.
#pragma once

#include <torch/types.h>

#include <array>
#include <string>

namespace pdeq::data {

enum class Split { kTrain, kTest };

/// images: uint8 [N, C, H, W]; labels: int64 [N] in [0, num_classes).
struct ImageSet {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t num_classes = 0;
  std::string name;  ///< e.g. "cifar10/train"

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// Rows `indices` (int64 [M]) of this set.
  ImageSet subset(const torch::Tensor& indices) const;
};

/// CIFAR-10 binary version: data_batch_{1..5}.bin / test_batch.bin, 3073-byte records.
ImageSet read_cifar10(const std::string& root, Split split);
/// CIFAR-100 binary version: train.bin / test.bin, 3074-byte records (coarse, fine); fine labels used.
ImageSet read_cifar100(const std::string& root, Split split);
/// (Fashion-)MNIST IDX files, gzip-compressed or plain: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
ImageSet read_mnist_idx(const std::string& root, Split split, const std::string& name = "mnist");

}  // namespace pdeq::data
