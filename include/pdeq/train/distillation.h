// Distillation training (the reference's stable_exp.py, train_distillation): a high-precision and a
// low-precision network that share every weight, trained together on CE(high) + CE(low) + c * D(high, low).
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/quant/fake_quantize.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/task.h>

#include <torch/nn/modules/batchnorm.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::train {

struct DistillationOptions {
  /// Activation bits of the high-precision network (>= 32: clipped at its own scales, not rounded). The
  /// low-precision network is the model as the bit schedule sets it.
  int64_t high_bits = 32;
  /// c in CE(high) + CE(low) + c * D(high, low).
  double activation_loss = 1e-5;
};

/// The reference's activation loss: the mean over layers l of ||softshrink(h_l - l_l, lambda_l)||^2 (summed
/// over every element of the batch), lambda_l = max|h_l| / (2^low_bits - 1) taken as a constant (no
/// gradient through it). `high` and `low` hold the same number of tensors of equal shapes (at least one).
torch::Tensor activation_loss(const std::vector<torch::Tensor>& high, const std::vector<torch::Tensor>& low,
                              int64_t low_bits);

/// The activations the loss compares, as the reference's networks return them: the output of every stage
/// (the last traced block "layer<S>.<i>" of each S), or every traced activation when none is named so.
std::vector<torch::Tensor> stage_outputs(const models::ActivationTrace& trace);

/// What the high-precision network has of its own: a clone of every activation quantizer of the model (its
/// alpha is the high network's clipping scale) and the running statistics of every BatchNorm. Registered in
/// the model as the child "distillation_high", so the optimizer trains its alphas and checkpoints carry it;
/// a model built without it loads such a checkpoint as the low-precision network (extra entries are ignored).
class DistillationStateImpl : public torch::nn::Module {
 public:
  /// Snapshots `model`'s current activation scales and BN statistics (call it before the model is trained).
  explicit DistillationStateImpl(torch::nn::Module& model);

  std::vector<quant::FakeQuantize> activations;  ///< parallel to the model's activation quantizers
  std::vector<torch::Tensor> running_mean, running_var, batches_tracked;  ///< parallel to its BatchNorms
  /// Sums of the current epoch (CE high, CE low, activation loss, high correct), each weighted by the
  /// batch's samples, so a run resumed mid-epoch logs what an uninterrupted one would.
  torch::Tensor epoch_sums;
};
TORCH_MODULE(DistillationState);

/// While alive, the model computes as the high-precision network: its activation quantizers use the
/// state's alphas at `high_bits`, its BatchNorms the state's running statistics. Restores the model when it
/// ends. Gradients of a forward pass taken inside reach the state's alphas.
class HighPrecisionScope {
 public:
  HighPrecisionScope(torch::nn::Module& model, DistillationStateImpl& state, int64_t high_bits);
  ~HighPrecisionScope();
  HighPrecisionScope(const HighPrecisionScope&) = delete;
  HighPrecisionScope& operator=(const HighPrecisionScope&) = delete;

 private:
  std::vector<std::pair<quant::FakeQuantize, torch::Tensor>> alphas_;  ///< quantizer, its own alpha
  std::vector<int64_t> bits_;
  struct Norm {
    torch::nn::BatchNorm2d norm;
    torch::Tensor mean, var, tracked;
  };
  std::vector<Norm> norms_;
};

/// The model's activation quantizers and BatchNorms in a fixed order (the state's is the same), leaving out
/// those of the distillation state itself.
std::vector<quant::FakeQuantize> model_activation_quantizers(torch::nn::Module& model);
std::vector<torch::nn::BatchNorm2d> model_batch_norms(torch::nn::Module& model);

/// The loss of one batch and its parts (means over the batch, activation loss as D, unscaled).
struct DistillationLoss {
  torch::Tensor total;  ///< CE(high) + CE(low) + c * D
  torch::Tensor ce_high, ce_low, activation;
  torch::Tensor logits_high, logits_low;
};

/// Forward passes of the low- and the high-precision network on `images` and the loss, with autograd on.
/// `images` in `mode`'s layout; both passes under its autocast. The model must hold `state` as child
/// "distillation_high".
DistillationLoss distillation_loss(models::ClassifierImpl& model, DistillationStateImpl& state,
                                   const torch::Tensor& images, const torch::Tensor& labels,
                                   const DistillationOptions& options, double label_smoothing = 0.0,
                                   const ComputeMode& mode = {});

/// Image classification trained by distillation. The task's model is the low-precision network, which is
/// what evaluate() and the checkpoints' selection see; the high-precision network is logged beside it
/// (metrics_extras, summary_extras: *_high keys). Single process only.
class DistillationTask : public Task {
 public:
  /// Takes the image task (its model not trained yet) and adds the high-precision state to its model.
  DistillationTask(std::unique_ptr<ImageClassificationTask> task, const DistillationOptions& options,
                   double label_smoothing);

  torch::nn::Module& module() override { return inner_->module(); }
  ImageClassificationTask& image_task() { return *inner_; }
  DistillationStateImpl& state() { return *state_; }
  int64_t steps_per_epoch() const override { return inner_->steps_per_epoch(); }
  void begin_epoch(int64_t epoch, int64_t first_step) override;
  StepStats train_step(torch::optim::Optimizer& optimizer) override;
  bool has_split(EvalSplit split) const override { return inner_->has_split(split); }
  /// The low-precision network's; the high one's is kept for metrics_extras / summary_extras.
  EvalStats evaluate(EvalSplit split) override;
  /// The high-precision network on `split` (eval mode, no gradients).
  EvalStats evaluate_high(EvalSplit split);
  void for_each_eval_batch(EvalSplit split, const std::function<void(const TraceFn& run)>& visit) override {
    inner_->for_each_eval_batch(split, visit);
  }
  nlohmann::json metrics_extras() override;
  nlohmann::json summary_extras() const override;
  std::string sample_unit() const override { return inner_->sample_unit(); }
  std::string train_accuracy_name() const override { return inner_->train_accuracy_name(); }
  std::string eval_accuracy_name() const override { return inner_->eval_accuracy_name(); }

 private:
  std::unique_ptr<ImageClassificationTask> inner_;
  DistillationState state_;
  DistillationOptions options_;
  double label_smoothing_;
  std::optional<EvalStats> val_high_, test_high_;
};

}  // namespace pdeq::train
