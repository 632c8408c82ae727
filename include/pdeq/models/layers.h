// What every pdeq classifier shares: its stages of blocks, run and traced one way, and one initialisation
// pass.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace pdeq::models {

/// The weight-quantizer template of one convolution with `out_channels` outputs: a per-channel template
/// (ModelOptions::weight_quant with channels() != 0) gets this convolution's count; a per-tensor one is
/// returned as is.
quant::FakeQuantizeOptions weight_quant_for(quant::FakeQuantizeOptions options, int64_t out_channels);

/// Runs `x` through every block of every stage in order, recording block j of stage i as "layer<i+1>.<j>"
/// when `trace` is not null (the names analyses and tests rely on).
torch::Tensor forward_stages(std::vector<torch::nn::Sequential>& stages, torch::Tensor x,
                             ActivationTrace* trace);

/// The ReLU in front of an activation quantizer, h.relu_(), left out when `next` absorbs it
/// (FakeQuantizeImpl::absorbs_relu: the same values and gradients, one elementwise pass fewer each way).
/// `next` is the quantizer h goes to, or null when something else (TV smoothing) comes first.
void relu_unless_absorbed(torch::Tensor& h, const quant::FakeQuantizeImpl* next);

/// The reference's initialisation, in one pass over every module below `root`: Kaiming-normal (fan_out, ReLU)
/// convolution weights (float and quantized), BN weight 1 and bias 0, torch's default Linear init, TV
/// smoothing gamma = gamma_init.
void reset_classifier_parameters(torch::nn::Module& root);

}  // namespace pdeq::models
