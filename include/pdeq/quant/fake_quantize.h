// Clipped uniform fake quantization with a learned clipping scale (Ben-Yair et al. 2022, Sec. 2).
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>
#include <ostream>

namespace pdeq::quant {

/// What a quantizer acts on; decides the defaults (weights: signed, alpha 3, standardised; activations:
/// unsigned, alpha 6).
enum class QuantTarget { kWeight, kActivation };

/// Bit widths at or above this pass the input through unchanged.
constexpr int64_t kFullPrecisionBits = 32;

/// The smallest clipping scale a quantizer uses. alpha is a learned parameter that weight decay or a large
/// step can drive to zero or below (x/a divides by it; a < 0 flips the grid), so every quantizer computes
/// with max(alpha, kMinAlpha) in forward and backward. The clamp is straight-through for dL/dalpha (the
/// gradient at the floor is the one of the clamped value, not zero), so an alpha pushed below the floor can
/// come back.
constexpr double kMinAlpha = 1e-4;

/// Options of the stateless operator.
struct FakeQuantizeFuncOptions {
  /// Bit width b; >= 32 passes through.
  TORCH_ARG(int64_t, bits) = kFullPrecisionBits;
  /// Signed: a*q_{b-1}(clip(x/a,-1,1)); unsigned: a*q_b(clip(x/a,0,1)), q_b(t)=round((2^b-1)t)/(2^b-1).
  TORCH_ARG(bool, is_signed) = false;
  /// Signed at 2 bits the levels are the ternary {-a, 0, a} (threshold a/2). With this flag, the reference's
  /// "calibrated gradient" (uq_with_calibrated_gradients): dL/dx = dL/dy everywhere, not clip-masked, so
  /// weights beyond +-a keep moving; dL/da is the usual one. The module sets it for weights only, as the
  /// reference.
  TORCH_ARG(bool, ternary_at_two_bits) = true;
  /// The signed, symmetric mid-rise grid of the graph networks' activations (Ben-Yair et al., PDE-GCN): 2^b
  /// levels a*(2k - n)/n, k = 0..n, n = 2^b - 1, on [-a, a] and no zero level (b = 2: {+-1/3, +-1} a;
  /// b = 1: {-a, a}). Overrides is_signed; same STE, clip mask and dL/da rule as the other grids.
  TORCH_ARG(bool, midrise) = false;
  /// Unsigned grid only: no input gradient at x = 0 (the clip interval (0, a] instead of the reference's
  /// [0, a]), as ReLU's relu'(0) = 0, so that Q(x) = Q(relu(x)) in value and in gradient. Off by default (the
  /// reference); a model sets it on the quantizers that read a ReLU's output, whose ReLU it may then drop.
  TORCH_ARG(bool, open_lower_end) = false;
};

namespace functional {
/// Q(x) = a * q_b(clip(x/a, lo, 1)), lo = -1 (signed, with q_{b-1}; or mid-rise) or 0 (unsigned), as one
/// autograd function: straight-through estimator for round, clip mask on dL/dx (dx = dy for lo*a <= x <= a,
/// else 0, as the reference; with open_lower_end, unsigned: 0 < x <= a), and the PACT/LSQ-style dL/da:
/// q(x/a) - x/a inside the range, the clip value (lo or 1) outside.
/// `alpha` is a one-element tensor or, per channel, a [C] tensor broadcast along dim 0 of `x` (any shape [C,
/// ...]), used as max(alpha, kMinAlpha). It is cast to x's dtype; its gradient comes back in its own dtype.
/// bits >= 32 returns `x` itself.
/// Float and double CPU tensors use a fused multi-threaded kernel, float and double CUDA tensors the CUDA
/// kernels (in a build with CUDA); other dtypes and devices, and a GenericKernels scope, use tensor ops.
///
/// Example:
///   auto y = pdeq::quant::functional::fake_quantize(x, torch::tensor(3.0),
///                                                   FakeQuantizeFuncOptions().bits(4).is_signed(true));
torch::Tensor fake_quantize(const torch::Tensor& x, const torch::Tensor& alpha,
                            const FakeQuantizeFuncOptions& options = {});

/// a * clip(x/a, lo, 1) without rounding (lo = -1 signed, 0 unsigned): what a trained quantizer computes at
/// full precision. Differentiable in x (clip mask, closed at both ends unless `open_lower_end`, as in
/// fake_quantize) and alpha (lo or 1 outside the range, 0 inside); `alpha` as in fake_quantize.
torch::Tensor clip_to_scale(const torch::Tensor& x, const torch::Tensor& alpha, bool is_signed,
                            bool open_lower_end = false);
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
  /// The signed mid-rise grid (see FakeQuantizeFuncOptions::midrise); 1 bit is then allowed.
  TORCH_ARG(bool, midrise) = false;
  /// Activations: this quantizer reads a ReLU's output, so it may stand in for the ReLU (absorbs_relu): its
  /// unsigned grid gets FakeQuantizeFuncOptions::open_lower_end. Off by default, which keeps the reference's
  /// input gradient at x = 0; the models set it where a ReLU precedes the quantizer.
  TORCH_ARG(bool, absorb_relu) = false;
};

/// A fake quantizer that owns its clipping scale alpha (parameter) and its bit width (buffer "bits", so
/// checkpoints carry it). Weights: Q((w - mean(w)) / std(w)) with signed levels (ternary with the calibrated
/// gradient at 2 bits); activations: unsigned levels on [0, a] (signed on [-a, a] with is_signed).
/// Full precision (bits >= 32) means two things. A quantizer built at >= 32 bits (a float model) passes its
/// input through untouched. One built to quantize (options.bits() < 32) and set to >= 32 later (`pdeq eval
/// --abits 32`, the stability analysis) keeps the standardisation and the clip at alpha and drops only the
/// rounding, as the reference's full-precision evaluation: the network's BN layers were trained behind them.
/// Input and output have the same shape; per-channel quantizers need x.size(0) == channels.
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

  /// quantize(x), then observer(x, y) when one is set.
  torch::Tensor forward(const torch::Tensor& x);
  /// Q(x) as configured (the input itself at >= 32 bits); never calls the observer.
  torch::Tensor quantize(const torch::Tensor& x);

  /// Q(x) for readers that are convolutions (`conv`) and, when `exact` is asked for, for other readers (a
  /// residual sum). Under CPU bfloat16 autocast an activation quantizer writes `conv` in bfloat16 (the fp32
  /// levels rounded to nearest even, bit for bit what autocast's own cast before the convolution gives, which
  /// then has nothing to do) and `exact` in fp32 from the same pass, and its backward pass reads the
  /// convolution's bfloat16 input gradient directly: values and gradients are those of forward(x), two
  /// elementwise passes fewer each way. Elsewhere both are forward(x).
  struct ConvOperand {
    torch::Tensor conv;
    torch::Tensor exact;  ///< undefined unless asked for
  };
  ConvOperand forward_for_conv(const torch::Tensor& x, bool exact = false);

  void set_bits(int64_t bits);
  int64_t bits() const;
  /// True for a float layer: built at >= 32 bits and still there (forward returns its input itself).
  bool passes_through() const;
  bool is_weight() const { return options.target() == QuantTarget::kWeight; }
  /// True when Q(relu(x)) = Q(x), in value and in gradient (x = 0 included: the open lower end of the
  /// unsigned grid): an unsigned activation quantizer built with absorb_relu that clips at 0 (one built to
  /// quantize, at any bit width) and has no observer (which would see
  /// the negative inputs). A block can then leave out the ReLU in front of it: one elementwise pass fewer
  /// forward and one backward per activation.
  bool absorbs_relu() const;

  FakeQuantizeOptions options;
  torch::Tensor alpha;  ///< parameter: [] or [channels]
  torch::Tensor bits_;  ///< buffer: int64 scalar
  /// Analyses only (not saved): called as observer(x, y) after every forward, e.g. to measure the error per
  /// layer.
  std::function<void(const torch::Tensor& input, const torch::Tensor& output)> observer;

 private:
  // bits() without a .item() per forward (a device sync per quantizer per step on CUDA): the buffer stays the
  // truth (set_bits, checkpoints, clone and direct writes change it), and its value is re-read only when its
  // storage or version counter changed, which are read without touching the data.
  mutable int64_t cached_bits_ = 0;
  mutable const void* cached_bits_data_ = nullptr;
  mutable uint32_t cached_bits_version_ = 0;
};
TORCH_MODULE(FakeQuantize);

}  // namespace pdeq::quant
