// What the fake-quantizer tests share: the fixture, small tensors, and an independent autograd reference.
#pragma once

#include <pdeq/quant/fake_quantize.h>

#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "test_support.h"

namespace pdeq::quant {

namespace F = functional;

struct FakeQuantizeTest : pdeq::test::SeedingFixture {};

inline FakeQuantizeFuncOptions unsigned_bits(int64_t bits) { return FakeQuantizeFuncOptions().bits(bits); }

inline FakeQuantizeFuncOptions signed_bits(int64_t bits) {
  return FakeQuantizeFuncOptions().bits(bits).is_signed(true);
}

inline torch::Tensor scalar(double value, torch::Dtype dtype = torch::kFloat) {
  return torch::tensor(value, torch::TensorOptions().dtype(dtype));
}

inline torch::Tensor values(const std::vector<double>& v, torch::Dtype dtype = torch::kFloat) {
  return torch::tensor(v, torch::TensorOptions().dtype(dtype));
}

inline int64_t grid_steps(int64_t bits, bool is_signed) {
  return is_signed ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
}

/// Independent formulation with ordinary autograd ops: the rounding residual is detached, which is exactly
/// the straight-through estimator, and clamp's own gradient is the clip mask. `calibrated` adds x - x (value
/// 0) outside the range so that dx passes unclipped there, as the reference's ternary calibrated gradient.
inline torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& alpha, int64_t bits,
                               bool is_signed, bool calibrated = false) {
  const double n = static_cast<double>(grid_steps(bits, is_signed));
  const double lo = is_signed ? -1.0 : 0.0;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  if (alpha.numel() > 1) {
    shape[0] = alpha.numel();
  }
  const torch::Tensor a = alpha.numel() > 1 ? alpha.reshape(shape) : alpha.reshape({});
  // Unsigned: relu after the clamp gives the open lower end (no dx at x = 0), as relu'(0) = 0.
  const torch::Tensor clamped = (x * a.reciprocal()).clamp(lo, 1.0);
  const torch::Tensor t = is_signed ? clamped : torch::relu(clamped);
  const torch::Tensor q = torch::round(t * n) / n;
  const torch::Tensor y = a * (t + (q - t).detach());
  if (!calibrated) {
    return y;
  }
  const torch::Tensor u = (x * a.reciprocal()).detach();
  return y + (x - x.detach()) * ((u < lo) | (u > 1.0));
}

}  // namespace pdeq::quant
