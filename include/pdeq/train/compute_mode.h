// How a task computes on its hardware: the memory layout of image weights and batches, and mixed precision.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

namespace pdeq::train {

/// `train.memory_format` and `train.precision` as the task applies them.
struct ComputeMode {
  /// Layout of 4-D weights and image batches; ChannelsLast is NHWC in memory, oneDNN's native layout.
  torch::MemoryFormat memory_format = torch::MemoryFormat::Contiguous;
  /// Autocast to bfloat16 for convolutions and matmuls, CPU and CUDA (see AutocastScope).
  bool bf16 = false;
};

/// Every 4-D parameter and buffer of `module` (and its children) in `format`, in place: the tensors keep
/// their identity (an optimizer holding them is unaffected), only their strides change. A no-op for tensors
/// already in `format`. Optimizer state follows the parameters' layout when it is created (zeros_like).
void to_memory_format(torch::nn::Module& module, torch::MemoryFormat format);

/// A 4-D batch in `format` (a copy unless it already is); other ranks are returned unchanged.
torch::Tensor to_memory_format(const torch::Tensor& batch, torch::MemoryFormat format);

/// For its lifetime, when `mode.bf16`: LibTorch's CPU and CUDA autocast to bfloat16 (at::autocast), i.e.
/// convolutions, linear layers and matmuls run in bfloat16 with fp32 accumulation; everything autocast does
/// not list keeps its inputs' dtype. What stays fp32: parameters and their gradients (autocast casts copies),
/// the optimizer state, BatchNorm (its inputs are cast to fp32 by pdeq's AutocastCPU kernel for
/// aten::batch_norm, so statistics and outputs are fp32), the loss (cross-entropy is on autocast's fp32
/// list), and every quantizer, which computes in fp32 under autocast (quant::functional::fake_quantize; an
/// activation quantizer feeding a convolution also writes the bfloat16 operand itself,
/// FakeQuantizeImpl::forward_for_conv). Wrap the forward pass only; backward runs each op in the dtype its
/// forward used. Scopes nest; leaving the outermost one drops autocast's cache of bfloat16 weight copies
/// (they go stale at the next optimizer step).
///
/// Example:
///   { AutocastScope autocast(mode); logits = model->forward(images); }
///   loss = cross_entropy(logits, labels); loss.backward();
class AutocastScope {
 public:
  explicit AutocastScope(const ComputeMode& mode);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
  bool was_cuda_enabled_ = false;
  at::ScalarType previous_cuda_dtype_ = at::kHalf;
};

}  // namespace pdeq::train
