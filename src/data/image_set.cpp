// ImageSet: an in-memory image classification split.
#include <pdeq/data/image_set.h>

namespace pdeq::data {

ImageSet ImageSet::subset(const torch::Tensor& indices) const {
  TORCH_CHECK(indices.dim() == 1 && indices.scalar_type() == torch::kInt64,
              "subset indices must be a 1-D int64 tensor, but got ", indices.scalar_type(), " of shape ",
              indices.sizes());
  ImageSet out;
  // index_select itself rejects indices outside [0, size()).
  out.images = images.index_select(0, indices);
  out.labels = labels.index_select(0, indices);
  out.num_classes = num_classes;
  out.name = name;
  return out;
}

}  // namespace pdeq::data
