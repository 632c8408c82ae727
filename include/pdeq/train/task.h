// What a training run trains: the model, its data and the step. The Trainer owns everything else (run folder,
// checkpoints, schedules, resume), so image, graph or distributed tasks reuse it unchanged.
#pragma once

#include <pdeq/models/classifier.h>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace pdeq::train {

enum class EvalSplit { kVal, kTest };

/// Sums over the samples of one step (so epochs can be aggregated exactly, also across a resume).
struct StepStats {
  double loss_sum = 0.0;
  double correct = 0.0;
  int64_t samples = 0;
};

/// Called by a train step between backward() and optimizer.step() with the step's own sums; returns the sums
/// the step reports. Data-parallel training averages the gradients over the ranks here and sums the
/// statistics (one allreduce, see distributed::average_gradients).
using GradientSync = std::function<StepStats(const StepStats& local)>;

struct EvalStats {
  double loss = 0.0;      ///< mean per sample
  double accuracy = 0.0;  ///< fraction in [0, 1]
  int64_t samples = 0;
};

class Task {
 public:
  virtual ~Task() = default;

  virtual torch::nn::Module& module() = 0;
  virtual int64_t steps_per_epoch() const = 0;
  /// Puts the model in training mode and positions the data at step `first_step` of epoch `epoch` (0-based).
  virtual void begin_epoch(int64_t epoch, int64_t first_step) = 0;
  /// One optimisation step: forward, loss, backward, optimizer.step().
  virtual StepStats train_step(torch::optim::Optimizer& optimizer) = 0;
  virtual bool has_split(EvalSplit split) const = 0;
  virtual EvalStats evaluate(EvalSplit split) = 0;
  /// Runs the model (eval mode, no gradients) on the current evaluation batch, recording every block's
  /// output.
  using TraceFn = std::function<void(models::ActivationTrace& trace)>;
  /// Visits the evaluation batches of `split` in a fixed order (one batch for full-graph tasks). `visit` may
  /// call its TraceFn several times on the same batch, e.g. once with quantized and once with full-precision
  /// activations, which is how analyses compare two passes of the same weights layer by layer.
  virtual void for_each_eval_batch(EvalSplit split, const std::function<void(const TraceFn& run)>& visit) = 0;
  /// Added to each metrics row, after the epoch's validation (e.g. a second network's losses).
  virtual nlohmann::json metrics_extras() { return nlohmann::json::object(); }
  /// Added to summary.json at the end of a run (e.g. images skipped as unreadable).
  virtual nlohmann::json summary_extras() const { return nlohmann::json::object(); }
  /// What a sample is called in progress lines ("img", "node").
  virtual std::string sample_unit() const { return "img"; }
  /// What progress and log lines call the training accuracy (StepStats::correct / samples) and
  /// EvalStats::accuracy: "acc" for classifiers.
  virtual std::string train_accuracy_name() const { return "acc"; }
  virtual std::string eval_accuracy_name() const { return "acc"; }

  /// Installs the hook every train_step passes to its step (cross_entropy_step); empty: none.
  void set_gradient_sync(GradientSync sync) { gradient_sync_ = std::move(sync); }

 protected:
  const GradientSync& gradient_sync() const { return gradient_sync_; }

 private:
  GradientSync gradient_sync_;
};

}  // namespace pdeq::train
