// ImageSet: an in-memory image classification split.
#include <pdeq/data/image_set.h>

#include "memory.h"

#include <cstring>

namespace pdeq::data {

ImageSet ImageSet::subset(const torch::Tensor& indices) const {
  TORCH_CHECK(indices.dim() == 1 && indices.scalar_type() == torch::kInt64,
              "subset indices must be a 1-D int64 tensor, but got ", indices.scalar_type(), " of shape ",
              indices.sizes());
  TORCH_CHECK(images.defined() && images.dim() >= 1 && images.scalar_type() == torch::kUInt8 &&
                  labels.defined() && labels.dim() == 1 && labels.scalar_type() == torch::kInt64,
              "subset needs uint8 images [N, ...] and int64 labels [N], but got ",
              images.defined() ? c10::str(images.scalar_type(), images.sizes()) : std::string("undefined"),
              " and ",
              labels.defined() ? c10::str(labels.scalar_type(), labels.sizes()) : std::string("undefined"));
  // Row copies into a huge-page-advised buffer rather than index_select: the training split of CIFAR is 138
  // MB, and page faults, not copying, dominate filling it (see memory.h).
  const auto index = indices.contiguous();
  const auto source = images.contiguous();
  const auto source_labels = labels.contiguous();
  const int64_t n = index.size(0), size = source.size(0);
  const int64_t row_bytes = size > 0 ? source.numel() / size : 0;
  std::vector<int64_t> shape = source.sizes().vec();
  shape[0] = n;

  ImageSet out;
  out.images = detail::empty_for_dataset(shape, torch::kUInt8);
  out.labels = torch::empty({n}, torch::kInt64);
  const int64_t* idx = index.data_ptr<int64_t>();
  const uint8_t* src = source.data_ptr<uint8_t>();
  const int64_t* src_labels = source_labels.data_ptr<int64_t>();
  uint8_t* dst = out.images.data_ptr<uint8_t>();
  int64_t* dst_labels = out.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(idx[i] >= 0 && idx[i] < size, "subset index must be in [0, ", size, "), but got ", idx[i],
                " at position ", i);
    std::memcpy(dst + i * row_bytes, src + idx[i] * row_bytes, static_cast<size_t>(row_bytes));
    dst_labels[i] = src_labels[idx[i]];
  }
  out.num_classes = num_classes;
  out.name = name;
  return out;
}

}  // namespace pdeq::data
