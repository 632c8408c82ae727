// nn::functional::dropout: a hashed mask, from the fused CPU kernel or from ATen integer operations on any
// device; both give the same mask bit for bit.
#include <pdeq/nn/dropout.h>

#include <pdeq/quant/kernel_path.h>

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

// ---- device-generic path: dropout_kernels.cpp's hash in int64 tensors holding 32-bit values
// ----------------

constexpr int64_t kLow32 = 0xFFFFFFFF;

/// (x * c) mod 2^32 for x in [0, 2^32): in two 16-bit halves of c, so that no int64 product overflows.
torch::Tensor mul32(const torch::Tensor& x, uint32_t c) {
  const auto lo = at::mul(x, static_cast<int64_t>(c & 0xFFFFu));
  const auto hi =
      at::bitwise_left_shift(at::bitwise_and(at::mul(x, static_cast<int64_t>(c >> 16)), 0xFFFF), 16);
  return at::bitwise_and(lo.add_(hi), kLow32);
}

torch::Tensor lowbias32(torch::Tensor x) {
  x = at::bitwise_xor(x, at::bitwise_right_shift(x, 16));
  x = mul32(x, 0x7feb352dU);
  x = at::bitwise_xor(x, at::bitwise_right_shift(x, 15));
  x = mul32(x, 0x846ca68bU);
  return at::bitwise_xor(x, at::bitwise_right_shift(x, 16));
}

/// The mask of detail::dropout_mask for element indices 0..n-1, on `options`' device and in its dtype.
torch::Tensor hashed_mask(int64_t n, uint32_t keep_threshold, double scale, uint64_t seed,
                          const torch::TensorOptions& options) {
  constexpr uint32_t kGolden = 0x9e3779b9U;
  const auto i = torch::arange(n, options.dtype(torch::kLong));
  // key_lo = seed_lo ^ ((i >> 32) * golden mod 2^32): the kernel's per-block key (blocks divide 2^32).
  const auto key_lo =
      at::bitwise_xor(mul32(at::bitwise_right_shift(i, 32), kGolden), static_cast<int64_t>(seed & kLow32));
  const auto first = at::bitwise_and(mul32(at::bitwise_and(i, kLow32), kGolden).add_(key_lo), kLow32);
  const auto h = lowbias32(at::bitwise_xor(lowbias32(first), static_cast<int64_t>(seed >> 32)));
  const auto keep = h.lt(static_cast<int64_t>(keep_threshold));
  return torch::where(keep, torch::full({}, scale, options), torch::zeros({}, options));
}

}  // namespace

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability must be in [0, 1], but got ", p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0;
  const auto keep = 1.0 - p;
  // P(h < t) = t / 2^32 for a uniform 32-bit h.
  const auto threshold = static_cast<uint32_t>(std::min(std::ldexp(keep, 32), 4294967295.0));
  const bool fused = x.device().is_cpu() &&
                     (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) &&
                     quant::fused_cpu_kernels_enabled();
  if (!fused) {
    // The scale is rounded to x's dtype as the kernel rounds it (1 / keep in double, then cast).
    const auto options = x.options().requires_grad(false);
    return x * hashed_mask(x.numel(), threshold, 1.0 / keep, draw_key(), options).view(x.sizes());
  }
  auto mask = torch::empty(x.sizes(), x.options().requires_grad(false));
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dropout_mask", [&] {
    detail::dropout_mask<scalar_t>(mask.data_ptr<scalar_t>(), mask.numel(), threshold,
                                   static_cast<scalar_t>(1.0 / keep), draw_key(), threads);
  });
  return x * mask;
}

}  // namespace pdeq::nn::functional
