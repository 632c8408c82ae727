#include <pdeq/train/compute_mode.h>

#include <pdeq/compat/torch.h>

#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>
#include <torch/utils.h>

namespace pdeq::train {
namespace {

/// aten::batch_norm under CPU autocast: in fp32. LibTorch 1.13's autocast leaves batch norm out of its lists,
/// so a bfloat16 convolution output would be normalised in bfloat16 against fp32 statistics, a mixed-type
/// path whose backward is slow on CPU; normalising in fp32 also keeps BN's statistics and output exact.
at::Tensor batch_norm_in_fp32(const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                              const c10::optional<at::Tensor>& bias,
                              const c10::optional<at::Tensor>& running_mean,
                              const c10::optional<at::Tensor>& running_var, bool training, double momentum,
                              double eps, bool cudnn_enabled) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const bool reduced = input.scalar_type() == at::kBFloat16 || input.scalar_type() == at::kHalf;
  return at::batch_norm(reduced ? input.to(at::kFloat) : input, weight, bias, running_mean, running_var,
                        training, momentum, eps, cudnn_enabled);
}

}  // namespace

TORCH_LIBRARY_IMPL(aten, AutocastCPU, m) { m.impl("batch_norm", TORCH_FN(batch_norm_in_fp32)); }

void to_memory_format(torch::nn::Module& module, torch::MemoryFormat format) {
  torch::NoGradGuard no_grad;
  auto convert = [format](torch::Tensor& t) {
    if (!t.defined() || t.dim() != 4 || t.is_contiguous(format)) return;
    // set_data swaps the storage under the same tensor (and autograd identity), as Module::to does.
    t.set_data(t.contiguous(format));
  };
  for (auto& p : module.parameters()) convert(p);
  for (auto& b : module.buffers()) convert(b);
}

torch::Tensor to_memory_format(const torch::Tensor& batch, torch::MemoryFormat format) {
  return batch.dim() == 4 ? batch.contiguous(format) : batch;
}

AutocastScope::AutocastScope(const ComputeMode& mode) : active_(mode.bf16) {
  if (!active_) return;
  was_enabled_ = compat::autocast_enabled(at::kCPU);
  previous_dtype_ = compat::autocast_dtype(at::kCPU);
  compat::set_autocast(at::kCPU, true, at::kBFloat16);
  // The same mode on a GPU: CUDA autocast only touches CUDA tensors (and the CPU one CPU tensors), so both
  // are on and the model's device decides which applies.
  was_cuda_enabled_ = compat::autocast_enabled(at::kCUDA);
  previous_cuda_dtype_ = compat::autocast_dtype(at::kCUDA);
  compat::set_autocast(at::kCUDA, true, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cached bfloat16 copies of leaf weights live until the outermost scope.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast(at::kCPU, was_enabled_, previous_dtype_);
  compat::set_autocast(at::kCUDA, was_cuda_enabled_, previous_cuda_dtype_);
}

}  // namespace pdeq::train
