// Clipped uniform fake quantization with a learned clipping scale (Ben-Yair et al. 2022, Sec. 2).
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <ostream>

namespace pdeq::quant {

/// What a quantizer acts on; decides the defaults (weights: signed, alpha 3, standardised; activations:
/// unsigned, alpha 6).
enum class QuantTarget { kWeight, kActivation };

/// Bit widths at or above this pass the input through unchanged.
constexpr int64_t kFullPrecisionBits = 32;

/// Options of the stateless operator.
struct FakeQuantizeFuncOptions {
  /// Bit width b; >= 32 passes through.
  TORCH_ARG(int64_t, bits) = kFullPrecisionBits;
  /// Signed: a*q_{b-1}(clip(x/a,-1,1)); unsigned: a*q_b(clip(x/a,0,1)), q_b(t)=round((2^b-1)t)/(2^b-1).
  TORCH_ARG(bool, is_signed) = false;
  /// Signed and bits <= 2: ternary {-a,0,a} with the reference's calibrated alpha gradient.
  TORCH_ARG(bool, ternary_at_two_bits) = true;
};

namespace functional {
/// One autograd function: STE for round, clip mask on dL/dx, PACT/LSQ-style dL/dalpha.
/// `alpha` is a scalar tensor or, per channel, a [C] tensor broadcast along dim 0 of `x`.
torch::Tensor fake_quantize(const torch::Tensor& x, const torch::Tensor& alpha,
                            const FakeQuantizeFuncOptions& options = {});
}  // namespace functional

/// Options of the FakeQuantize module.
struct FakeQuantizeOptions {
  /* implicit */ FakeQuantizeOptions(QuantTarget target = QuantTarget::kActivation);
  TORCH_ARG(QuantTarget, target);
  /// Initial bit width (changed later with set_bits, e.g. by the gradual schedule).
  TORCH_ARG(int64_t, bits) = kFullPrecisionBits;
  /// Defaults by target: weights true, activations false.
  TORCH_ARG(bool, is_signed);
  /// Initial clipping scale: weights 3.0, activations 6.0 (the reference's values).
  TORCH_ARG(double, init_alpha);
  /// > 0: one alpha per slice along dim 0 (output channels of a weight).
  TORCH_ARG(int64_t, channels) = 0;
  /// Weights only: (w-mean)/std per tensor before quantizing, as the reference. Ignored for activations.
  TORCH_ARG(bool, standardize);
};

/// A fake quantizer that owns its clipping scale alpha (parameter) and its bit width (buffer, so checkpoints
/// carry it). Input and output have the same shape.
///
/// Example:
///   pdeq::quant::FakeQuantize act(pdeq::quant::FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
///   auto y = act(torch::relu(x));
class FakeQuantizeImpl : public torch::nn::Cloneable<FakeQuantizeImpl> {
 public:
  explicit FakeQuantizeImpl(FakeQuantizeOptions options = {});

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);

  void set_bits(int64_t bits);
  int64_t bits() const;
  bool is_weight() const { return options.target() == QuantTarget::kWeight; }

  FakeQuantizeOptions options;
  torch::Tensor alpha;     ///< parameter: [] or [channels]
  torch::Tensor bits_;     ///< buffer: int64 scalar
};
TORCH_MODULE(FakeQuantize);

}  // namespace pdeq::quant
