// NodeFeatures: dense or compressed-row node features.
#include <pdeq/nn/node_features.h>

#include <c10/util/Exception.h>
#include <pdeq/nn/dropout.h>

#include <torch/torch.h>

namespace pdeq::nn {

NodeFeatures::NodeFeatures(const torch::Tensor& features) {
  TORCH_CHECK(features.defined() && features.dim() == 2, "node features must be a [N, F] tensor, but got ",
              features.defined() ? c10::str(features.sizes()) : "an undefined tensor");
  if (features.is_sparse()) {
    sparse_ = CsrMatrix::from_sparse(features);
  } else {
    dense_ = features;
  }
}

int64_t NodeFeatures::num_nodes() const { return is_sparse() ? sparse_.rows() : dense_.size(0); }
int64_t NodeFeatures::num_features() const { return is_sparse() ? sparse_.cols() : dense_.size(1); }

NodeFeatures NodeFeatures::dropout(double p, bool training) const {
  if (!training || p == 0.0) return *this;
  NodeFeatures out = *this;
  if (is_sparse()) {
    out.sparse_ = sparse_.with_values(functional::dropout(sparse_.values(), p, true));
  } else {
    out.dense_ = functional::dropout(dense_, p, true);
  }
  return out;
}

torch::Tensor NodeFeatures::matmul(const torch::Tensor& weight) const {
  return is_sparse() ? sparse_.matmul(weight) : torch::mm(dense_, weight);
}

torch::Tensor NodeFeatures::to_dense() const { return is_sparse() ? sparse_.to_dense() : dense_; }

NodeFeatures NodeFeatures::to(torch::Device device) const {
  NodeFeatures out = *this;
  if (is_sparse()) {
    out.sparse_ = sparse_.to(device);
  } else {
    out.dense_ = dense_.to(device);
  }
  return out;
}

}  // namespace pdeq::nn
