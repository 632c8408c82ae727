// The convolution every pdeq layer calls: LibTorch's conv2d, with one exception under bf16 autocast.
#pragma once

#include <torch/types.h>

namespace pdeq::nn::functional {

/// at::conv2d(input, weight, bias, stride, padding, dilation, groups), except under CPU autocast to bfloat16
/// with a channels-last input: then the forward pass and the input gradient run in bfloat16 (as autocast
/// would), but the weight and bias gradients are computed in fp32 from fp32 copies of the saved bfloat16
/// input and of the output gradient. oneDNN 2.6.3 (Debian's LibTorch 1.13) has a bf16 weight-gradient kernel
/// for channels-last 3x3 convolutions that runs ~5x slower than its fp32 one (`ONEDNN_VERBOSE`; README,
/// "Memory format and mixed precision"). Returns bfloat16 under autocast, like autocast's conv2d.
torch::Tensor conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                     torch::IntArrayRef stride, torch::IntArrayRef padding, torch::IntArrayRef dilation,
                     int64_t groups);

}  // namespace pdeq::nn::functional
