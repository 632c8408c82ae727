#include <pdeq/train/train_step.h>

#include <torch/nn/functional/loss.h>

namespace pdeq::train {
namespace F = torch::nn::functional;

StepStats cross_entropy_step(torch::optim::Optimizer& optimizer, const torch::Tensor& logits,
                             const torch::Tensor& labels, const CrossEntropyOptions& options,
                             const GradientSync& sync) {
  // Clearing the gradients after the forward pass is the same as before it: the forward pass writes none.
  optimizer.zero_grad();
  auto loss_options = F::CrossEntropyFuncOptions()
                          .label_smoothing(options.label_smoothing)
                          .ignore_index(options.ignore_index);
  if (options.weight.defined()) loss_options.weight(options.weight.to(logits.device()));
  const auto loss = F::cross_entropy(logits, labels, loss_options);
  loss.backward();
  const int64_t n = labels.size(0);
  const auto hits = logits.detach().argmax(1).eq(labels);
  double correct = 0.0;
  if (labels.dim() == 1) {
    correct = hits.sum().item<double>();
  } else {
    // Per pixel: the batch's pixel accuracy, as N samples' worth.
    const auto counted = labels.ne(options.ignore_index);
    const double pixels = counted.sum().item<double>();
    correct =
        pixels > 0 ? hits.logical_and(counted).sum().item<double>() / pixels * static_cast<double>(n) : 0.0;
  }
  StepStats stats{loss.item<double>() * static_cast<double>(n), correct, n};
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
                          const torch::Tensor& images, const torch::Tensor& labels,
                          const CrossEntropyOptions& loss, const ComputeMode& mode,
                          const GradientSync& sync) {
  const auto input = to_memory_format(images, mode.memory_format);
  torch::Tensor logits;
  {
    // The forward pass only: backward runs every op in the dtype its forward pass used.
    const AutocastScope autocast(mode);
    logits = model.forward(input);
  }
  return cross_entropy_step(optimizer, logits.to(torch::kFloat), labels, loss, sync);
}

}  // namespace pdeq::train
