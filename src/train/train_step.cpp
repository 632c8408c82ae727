#include <pdeq/train/train_step.h>

#include <torch/nn/functional/loss.h>

namespace pdeq::train {
namespace F = torch::nn::functional;

StepStats cross_entropy_step(torch::optim::Optimizer& optimizer, const torch::Tensor& logits,
                             const torch::Tensor& labels, double label_smoothing, const GradientSync& sync) {
  // Clearing the gradients after the forward pass is the same as before it: the forward pass writes none.
  optimizer.zero_grad();
  const auto loss =
      F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
  loss.backward();
  const int64_t n = labels.size(0);
  StepStats stats{loss.item<double>() * static_cast<double>(n),
                  logits.detach().argmax(1).eq(labels).sum().item<double>(), n};
  if (sync) stats = sync(stats);
  optimizer.step();
  return stats;
}

StepStats empty_batch_step(torch::optim::Optimizer& optimizer, const GradientSync& sync) {
  if (!sync) return {};
  optimizer.zero_grad();
  const StepStats stats = sync(StepStats{});
  if (stats.samples > 0) optimizer.step();
  return stats;
}

StepStats classifier_step(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                          const torch::Tensor& images, const torch::Tensor& labels, double label_smoothing,
                          const ComputeMode& mode, const GradientSync& sync) {
  const auto input = to_memory_format(images, mode.memory_format);
  torch::Tensor logits;
  {
    // The forward pass only: backward runs every op in the dtype its forward pass used.
    const AutocastScope autocast(mode);
    logits = model.forward(input);
  }
  return cross_entropy_step(optimizer, logits.to(torch::kFloat), labels, label_smoothing, sync);
}

}  // namespace pdeq::train
