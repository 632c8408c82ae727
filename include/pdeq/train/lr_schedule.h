// Learning-rate schedules by optimisation step (LibTorch 1.13 ships no cosine scheduler).
#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>

#include <string>
#include <vector>

namespace pdeq::train {

enum class LrScheduleKind { kConstant, kCosine };

struct LrScheduleOptions {
  LrScheduleOptions(double base_lr, int64_t total_steps) : base_lr_(base_lr), total_steps_(total_steps) {}
  TORCH_ARG(double, base_lr);
  TORCH_ARG(int64_t, total_steps);
  TORCH_ARG(LrScheduleKind, kind) = LrScheduleKind::kCosine;
  TORCH_ARG(int64_t, warmup_steps) = 0;  ///< linear ramp from base_lr/warmup_steps to base_lr
  TORCH_ARG(double, min_lr) = 0.0;
  /// The rate moves every this many steps (steps per epoch: once per epoch, as a torch scheduler stepped
  /// after each epoch); 1: every step.
  TORCH_ARG(int64_t, steps_per_update) = 1;
};

/// lr(step) = min + (base - min) * (1 + cos(pi * t)) / 2, t = (s - warmup) / (total - warmup), after a
/// linear warm-up, with s = step rounded down to a multiple of steps_per_update (per epoch: lr(epoch e) =
/// min + (base - min) * (1 + cos(pi * e / epochs)) / 2, torch's CosineAnnealingLR(T_max = epochs)); a pure
/// function of the step, so a resumed run needs only its step counter.
double lr_at_step(const LrScheduleOptions& options, int64_t step);

/// Every parameter group's learning rate.
std::vector<double> learning_rates(const torch::optim::Optimizer& optimizer);

/// Sets group i's learning rate to base_lrs[i] * factor (the schedule applied to each group's own base lr).
void scale_learning_rates(torch::optim::Optimizer& optimizer, const std::vector<double>& base_lrs,
                          double factor);

}  // namespace pdeq::train
