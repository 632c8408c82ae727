// nn::functional::dropout: a hashed mask on CPU, torch's dropout elsewhere.
#include <pdeq/nn/dropout.h>

#include "dropout_kernels.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

namespace pdeq::nn::functional {
namespace {

uint64_t draw_key() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

}  // namespace

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability must be in [0, 1], but got ", p);
  if (!training || p == 0.0) return x;
  if (!x.device().is_cpu() || !(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble)) {
    return torch::dropout(x, p, true);
  }
  if (p == 1.0) return x * 0;
  const auto keep = 1.0 - p;
  // P(h < t) = t / 2^32 for a uniform 32-bit h.
  const auto threshold = static_cast<uint32_t>(std::min(std::ldexp(keep, 32), 4294967295.0));
  auto mask = torch::empty(x.sizes(), x.options().requires_grad(false));
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dropout_mask", [&] {
    detail::dropout_mask<scalar_t>(mask.data_ptr<scalar_t>(), mask.numel(), threshold,
                                   static_cast<scalar_t>(1.0 / keep), draw_key(), threads);
  });
  return x * mask;
}

}  // namespace pdeq::nn::functional
