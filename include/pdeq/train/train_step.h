// The optimisation step the classification tasks share (images and graph nodes differ only in how they get
// their logits and labels).
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/train/compute_mode.h>
#include <pdeq/train/task.h>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

namespace pdeq::train {

/// The loss of cross_entropy_step: label smoothing, and for per-pixel labels an ignore label and class
/// weights (F::cross_entropy's options; the mean is over the counted pixels, weighted).
struct CrossEntropyOptions {
  /* implicit */ CrossEntropyOptions(double label_smoothing = 0.0) : label_smoothing(label_smoothing) {}
  double label_smoothing = 0.0;
  int64_t ignore_index = -100;  ///< torch's default: no label is ignored
  torch::Tensor weight;         ///< float [C] per class; undefined: all 1
};

/// Clears the gradients, takes the mean cross-entropy of `logits` [N, C] against `labels` [N] (with
/// `label_smoothing`), backpropagates it and updates the parameters `optimizer` holds. `logits` must come
/// from those parameters with autograd on. Returns the loss summed over the N samples, the correct
/// predictions and N, or what `sync` (when set) makes of them after averaging the gradients across ranks.
/// Per-pixel `logits` [N, C, H, W] with `labels` [N, H, W] count N * (the batch's pixel accuracy over the
/// pixels not ignored) as correct, so that correct / samples stays an accuracy.
///
/// Example (a Task::train_step):
///   return cross_entropy_step(optimizer, model_->forward(images), labels, smoothing, gradient_sync());
StepStats cross_entropy_step(torch::optim::Optimizer& optimizer, const torch::Tensor& logits,
                             const torch::Tensor& labels, const CrossEntropyOptions& loss,
                             const GradientSync& sync = {});

/// The step of a batch with no samples (every image skipped as unreadable): alone, nothing happens; with
/// `sync` this rank still joins the step's allreduce with weight 0 (the other ranks wait for it) and applies
/// the averaged gradients of the ranks that had samples, so every rank keeps the same weights.
StepStats empty_batch_step(torch::optim::Optimizer& optimizer, const GradientSync& sync = {});

/// One step of an image classifier in `mode`: `images` [N, C, H, W] brought to mode's memory format, the
/// forward pass under AutocastScope(mode), then cross_entropy_step on the logits in fp32 (so the loss, its
/// gradient and the optimizer update are fp32 in every mode).
///
/// Example (ImageClassificationTask::train_step, pdeq bench train):
///   return classifier_step(*model_, optimizer, images, labels, smoothing, mode_, gradient_sync());
StepStats classifier_step(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                          const torch::Tensor& images, const torch::Tensor& labels,
                          const CrossEntropyOptions& loss, const ComputeMode& mode,
                          const GradientSync& sync = {});

}  // namespace pdeq::train
