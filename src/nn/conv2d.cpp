#include <pdeq/nn/conv2d.h>

#include <pdeq/compat/torch.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

namespace pdeq::nn::functional {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// bf16 forward and input gradient, fp32 weight and bias gradients. `bias` is an empty tensor for none
/// (LibTorch 1.13's Function::apply cannot take an undefined tensor).
class Bf16ConvFp32WeightGrad : public torch::autograd::Function<Bf16ConvFp32WeightGrad> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias, std::vector<int64_t> stride,
                               std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups) {
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const auto x = input.to(at::kBFloat16);
    const auto w = weight.to(at::kBFloat16);
    const bool has_bias = bias.numel() > 0;
    const auto b = has_bias ? bias.to(at::kBFloat16) : torch::Tensor();
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["bias"] = has_bias;
    ctx->saved_data["input_dtype"] = input.scalar_type();
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    return at::conv2d(x, w, b, stride, padding, dilation, groups);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto dilation = ctx->saved_data["dilation"].toIntVector();
    const int64_t groups = ctx->saved_data["groups"].toInt();
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto& grad = grad_outputs[0];
    const std::vector<int64_t> no_output_padding(stride.size(), 0);
    // The sizes must outlive the calls below: an IntArrayRef of a braced list dangles after its statement.
    const std::vector<int64_t> bias_size{w.size(0)};
    const c10::OptionalIntArrayRef bias_sizes = has_bias ? c10::OptionalIntArrayRef(bias_size) : c10::nullopt;

    torch::Tensor grad_input, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) {
      grad_input = std::get<0>(at::convolution_backward(grad.to(at::kBFloat16), x, w, bias_sizes, stride,
                                                        padding, dilation, false, no_output_padding, groups,
                                                        {true, false, false}));
      grad_input = grad_input.to(ctx->saved_data["input_dtype"].toScalarType());
    }
    if (ctx->needs_input_grad(1) || (has_bias && ctx->needs_input_grad(2))) {
      const auto weight_grads = at::convolution_backward(
          grad.to(at::kFloat), x.to(at::kFloat), w.to(at::kFloat), bias_sizes, stride, padding, dilation,
          false, no_output_padding, groups, {false, true, has_bias});
      grad_weight = std::get<1>(weight_grads).to(ctx->saved_data["weight_dtype"].toScalarType());
      if (has_bias) grad_bias = std::get<2>(weight_grads);
    }
    return {grad_input, grad_weight, grad_bias, {}, {}, {}, {}};
  }
};

}  // namespace

torch::Tensor conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                     torch::IntArrayRef stride, torch::IntArrayRef padding, torch::IntArrayRef dilation,
                     int64_t groups) {
  const bool mixed = compat::autocast_enabled(at::kCPU) &&
                     compat::autocast_dtype(at::kCPU) == at::kBFloat16 && input.device().is_cpu() &&
                     input.dim() == 4 && input.suggest_memory_format() == at::MemoryFormat::ChannelsLast &&
                     (input.requires_grad() || weight.requires_grad());
  if (!mixed) return at::conv2d(input, weight, bias, stride, padding, dilation, groups);
  return Bf16ConvFp32WeightGrad::apply(input, weight, bias.defined() ? bias : torch::empty({0}), stride.vec(),
                                       padding.vec(), dilation.vec(), groups);
}

}  // namespace pdeq::nn::functional
