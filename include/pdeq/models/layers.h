// What every pdeq classifier shares: its stages of blocks, run and traced one way, and one initialisation
// pass.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <optional>
#include <vector>

namespace pdeq::models {

/// The weight-quantizer template of one convolution with `out_channels` outputs: a per-channel template
/// (ModelOptions::weight_quant with channels() != 0) gets this convolution's count; a per-tensor one is
/// returned as is.
quant::FakeQuantizeOptions weight_quant_for(quant::FakeQuantizeOptions options, int64_t out_channels);

/// The template of an activation quantizer that reads a ReLU's output: with absorb_relu it may stand in for
/// that ReLU (relu_unless_absorbed, forward_stages). The blocks' choice; a quantizer's default keeps the
/// reference's gradient at 0.
quant::FakeQuantizeOptions after_relu(quant::FakeQuantizeOptions options);

/// The TV layer a block puts at one site (`inner`: inside the block, else on its input) for `channels`
/// channels, or an empty holder when `tv` is unset or does not place one there.
nn::TVSmooth make_tv_smooth(const std::optional<TVOptions>& tv, bool inner, int64_t channels);

/// A residual block whose output is ReLU(y): when the next block's input quantizer absorbs a ReLU
/// (FakeQuantizeImpl::absorbs_relu), forward_stages hands it y instead, one elementwise pass fewer each way
/// per block, with the same values and gradients (the ReLU at the end of the block and the unsigned
/// quantizer's clip at 0 agree bit for bit, as relu_unless_absorbed inside a block).
class ReluOutputBlock {
 public:
  virtual ~ReluOutputBlock() = default;
  /// Whether the output is exactly ReLU(y) for some y that forward_before_relu can return.
  virtual bool defers_output_relu() const = 0;
  /// y, where forward(x) = ReLU(y); only when defers_output_relu().
  virtual torch::Tensor forward_before_relu(const torch::Tensor& x) = 0;
  /// The quantizer that reads the block's input first; null when something else (TV smoothing) does.
  virtual const quant::FakeQuantizeImpl* input_quantizer() const = 0;
};

/// Runs `x` through every block of every stage in order, recording block j of stage i as "layer<i+1>.<j>"
/// when `trace` is not null (the names analyses and tests rely on). A ReluOutputBlock followed by a block
/// whose input quantizer absorbs ReLUs leaves its ReLU to that quantizer; the trace still records ReLU(y).
torch::Tensor forward_stages(std::vector<torch::nn::Sequential>& stages, torch::Tensor x,
                             ActivationTrace* trace);

/// Whether the first block of `stages` reads its input through a quantizer that absorbs a ReLU in front of
/// it, so that the stem's ReLU can be left out.
bool stages_absorb_input_relu(std::vector<torch::nn::Sequential>& stages);

/// The ReLU in front of an activation quantizer, h.relu_(), left out when `next` absorbs it
/// (FakeQuantizeImpl::absorbs_relu: the same values and gradients, one elementwise pass fewer each way).
/// `next` is the quantizer h goes to, or null when something else (TV smoothing) comes first.
void relu_unless_absorbed(torch::Tensor& h, const quant::FakeQuantizeImpl* next);

/// The reference's initialisation, in one pass over every module below `root`: Kaiming-normal (fan_out, ReLU)
/// convolution weights (float and quantized), BN weight 1 and bias 0, torch's default Linear init, TV
/// smoothing gamma = gamma_init.
void reset_classifier_parameters(torch::nn::Module& root);

}  // namespace pdeq::models
