#include <pdeq/train/lr_schedule.h>

#include <torch/optim/sgd.h>

#include <cmath>

namespace pdeq::train {

double lr_at_step(const LrScheduleOptions& options, int64_t step_in) {
  TORCH_CHECK_VALUE(options.total_steps() >= 1, "total steps must be >= 1, but got ", options.total_steps());
  const int64_t every = options.steps_per_update();
  TORCH_CHECK_VALUE(every >= 1, "steps_per_update must be >= 1, but got ", every);
  const int64_t step = step_in - step_in % every;
  const int64_t warmup = options.warmup_steps();
  if (step < warmup) {
    return options.base_lr() * static_cast<double>(std::min(step + every, warmup)) /
           static_cast<double>(warmup);
  }
  if (options.kind() == LrScheduleKind::kConstant) return options.base_lr();
  const double span = std::max<int64_t>(1, options.total_steps() - warmup);
  const double t = std::min(1.0, static_cast<double>(step - warmup) / span);
  return options.min_lr() + (options.base_lr() - options.min_lr()) * 0.5 * (1.0 + std::cos(M_PI * t));
}

std::vector<double> learning_rates(const torch::optim::Optimizer& optimizer) {
  std::vector<double> lrs;
  for (const auto& group : optimizer.param_groups()) lrs.push_back(group.options().get_lr());
  return lrs;
}

void scale_learning_rates(torch::optim::Optimizer& optimizer, const std::vector<double>& base_lrs,
                          double factor) {
  auto& groups = optimizer.param_groups();
  TORCH_CHECK(groups.size() == base_lrs.size(), "base_lrs must have one entry per parameter group (",
              groups.size(), "), but got ", base_lrs.size());
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(base_lrs[i] * factor);
}

}  // namespace pdeq::train
