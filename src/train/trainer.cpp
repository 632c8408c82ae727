#include <pdeq/train/trainer.h>

#include <pdeq/analysis/params.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/crash_point.h>
#include <pdeq/run/plots.h>
#include <pdeq/run/progress.h>
#include <pdeq/run/stop_signal.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

namespace pdeq::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string step_metrics(const run::TrainingState& s, const std::string& accuracy_name) {
  if (s.epoch_samples <= 0) return "";
  return fmt::format("loss {:.4f} {} {:.2f}%", s.epoch_loss_sum / s.epoch_samples, accuracy_name,
                     100.0 * s.epoch_correct / s.epoch_samples);
}

/// Histograms of every quantizing activation quantizer's input on the first batch it sees while alive (the
/// first validation batch): its observer is set for that time. Weight quantizers are left out, their input is
/// the weight, which log_histograms writes as such.
class InputHistograms {
 public:
  explicit InputHistograms(torch::nn::Module& model) : quantizers_(quant::QuantizerSet(model).activations()) {
    seen_.assign(quantizers_.size(), false);
    for (size_t i = 0; i < quantizers_.size(); ++i) {
      auto& quantizer = quantizers_[i].second;
      if (quantizer->passes_through()) continue;
      quantizer->observer = [this, i](const torch::Tensor& x, const torch::Tensor&) {
        if (seen_[i]) return;
        seen_[i] = true;
        if (auto h = run::make_histogram(x)) histograms_.emplace_back(quantizers_[i].first, std::move(*h));
      };
    }
  }
  ~InputHistograms() {
    for (auto& entry : quantizers_) entry.second->observer = nullptr;
  }
  InputHistograms(const InputHistograms&) = delete;
  InputHistograms& operator=(const InputHistograms&) = delete;

  const std::vector<std::pair<std::string, run::Histogram>>& histograms() const { return histograms_; }

 private:
  std::vector<std::pair<std::string, quant::FakeQuantize>> quantizers_;
  std::vector<bool> seen_;
  std::vector<std::pair<std::string, run::Histogram>> histograms_;
};

void reset_epoch_sums(run::TrainingState& s) {
  s.step_in_epoch = 0;
  s.epoch_loss_sum = s.epoch_correct = s.epoch_samples = s.epoch_seconds = 0.0;
}

}  // namespace

Trainer::Trainer(Task& task, torch::optim::Optimizer& optimizer, run::RunDirectory run,
                 TrainerOptions options, distributed::ProcessGroup* group)
    : task_(task),
      optimizer_(optimizer),
      run_(std::move(run)),
      options_(std::move(options)),
      base_lrs_(learning_rates(optimizer)),
      group_(group) {
  TORCH_CHECK_VALUE(options_.epochs >= 1, "epochs must be >= 1, but got ", options_.epochs);
  TORCH_CHECK_VALUE(options_.base_lr > 0, "base_lr must be positive, but got ", options_.base_lr);
  for (const int64_t every :
       {options_.eval_every, options_.checkpoint_every, options_.metrics_every, options_.plot_every}) {
    TORCH_CHECK_VALUE(every >= 1, "eval/checkpoint/metrics/plot intervals must be >= 1, but got ", every);
  }
  TORCH_CHECK_VALUE(options_.patience >= 0, "patience must be >= 0, but got ", options_.patience);
  if (group_ != nullptr) {
    parameters_ = task_.module().parameters();
    // One allreduce per step: the gradients, the step's sums and this rank's stop request in one buffer.
    task_.set_gradient_sync([this](const StepStats& local) {
      const auto sums =
          distributed::average_gradients(*group_, parameters_, static_cast<double>(local.samples),
                                         {local.loss_sum, local.correct, static_cast<double>(local.samples),
                                          run::stop_requested() ? 1.0 : 0.0});
      stop_agreed_ = sums[3] > 0;
      return StepStats{sums[0], sums[1], std::llround(sums[2])};
    });
  }
}

EvalStats Trainer::evaluate(EvalSplit split) {
  if (group_ == nullptr) return task_.evaluate(split);
  // Ranks normalise with their own batch statistics, so their BatchNorm running statistics differ: rank
  // 0's are the model's (and the checkpoint's).
  group_->broadcast_module(task_.module());
  const EvalStats local = task_.evaluate(split);
  const double n = static_cast<double>(local.samples);
  const auto sums = group_->sum({local.loss * n, local.accuracy * n, n});
  return {sums[2] > 0 ? sums[0] / sums[2] : 0.0, sums[2] > 0 ? sums[1] / sums[2] : 0.0,
          std::llround(sums[2])};
}

void Trainer::apply_bit_schedule(int64_t epoch) {
  quant::QuantizerSet quantizers(task_.module());
  quantizers.set_weight_bits(quant::bits_at_epoch(options_.weight_bits, epoch));
  quantizers.set_activation_bits(quant::bits_at_epoch(options_.act_bits, epoch));
}

// Only epochs already at the run's final bit widths compete for "best": a 12-bit epoch of a gradual 16->4
// schedule must not be reported as the 4-bit result.
bool Trainer::at_final_bits(int64_t epoch) const {
  const int64_t last = options_.epochs - 1;
  return quant::bits_at_epoch(options_.weight_bits, epoch) ==
             quant::bits_at_epoch(options_.weight_bits, last) &&
         quant::bits_at_epoch(options_.act_bits, epoch) == quant::bits_at_epoch(options_.act_bits, last);
}

/// Metrics first, then the checkpoint: a resume truncates metrics to the checkpoint's epoch.
std::string Trainer::resume_command() const {
  std::string command = "pdeq train --resume " + run_.root().string();
  if (group_ != nullptr && group_->world_size() > 1)
    command += " --nproc " + std::to_string(group_->world_size());
  return command;
}

void Trainer::save_last(run::TrainingState& state) {
  if (!writes_files()) return;
  if (metrics_written_ != metrics_.size()) {
    run_.write_metrics(metrics_);
    metrics_written_ = metrics_.size();
  }
  run::save_checkpoint(run_.last_checkpoint(), task_.module(), &optimizer_, state);
}

void Trainer::open_events(int64_t first_epoch) {
  events_.reset();
  if (!options_.tensorboard || !writes_files()) return;
  const auto folder = run_.tensorboard_path();
  try {
    run::truncate_event_files(folder, first_epoch);
    events_ = std::make_unique<run::EventFileWriter>(folder);
  } catch (const std::exception& e) {
    spdlog::warn("no TensorBoard events for this run: {}", e.what());
  }
}

void Trainer::log_row(const nlohmann::json& row) {
  if (!events_) return;
  const int64_t step = row.at("epoch").get<int64_t>();
  for (const auto& item : row.items()) {
    if (item.key() != "epoch" && item.value().is_number()) {
      events_->add_scalar(run::scalar_tag(item.key()), step, item.value().get<double>());
    }
  }
  const auto lrs = learning_rates(optimizer_);
  for (size_t g = 0; g < lrs.size(); ++g) events_->add_scalar("lr/group_" + std::to_string(g), step, lrs[g]);
  const quant::QuantizerSet quantizers(task_.module());
  const auto scales = quantizers.scales();
  for (size_t i = 0; i < scales.size(); ++i) {
    if (!quantizers.all()[i].second->passes_through()) {
      events_->add_scalar("alpha/" + scales[i].first, step, scales[i].second);
    }
  }
}

void Trainer::log_histograms(int64_t step,
                             const std::vector<std::pair<std::string, run::Histogram>>& inputs) {
  if (!events_) return;
  for (const auto& item : task_.module().named_parameters()) {
    if (item.value().dim() < 2) continue;
    if (auto h = run::make_histogram(item.value())) events_->add_histogram("weights/" + item.key(), step, *h);
  }
  for (const auto& [name, histogram] : inputs) events_->add_histogram("input/" + name, step, histogram);
}

void Trainer::flush_events() {
  if (!events_) return;
  try {
    events_->flush();
  } catch (const std::exception& e) {
    spdlog::warn("TensorBoard events stop here: {}", e.what());
    events_.reset();
  }
}

FitResult Trainer::fit(bool resume, const nlohmann::json& extra_summary) {
  // Handlers for this run only; the flag is cleared when the outermost scope ends (see StopSignalScope).
  const run::StopSignalScope stop_scope;
  stop_agreed_ = false;
  const int64_t world_size = group_ != nullptr ? group_->world_size() : 1;
  if (!writes_files()) {
    // Rank 0 owns the run folder.
  } else if (const int removed = run_.remove_stale_temporaries()) {
    spdlog::info("removed {} temporary file(s) left by a killed writer in {}", removed, run_.root().string());
  }
  run::TrainingState state;
  if (resume) {
    state = run::load_checkpoint(run_.last_checkpoint(), task_.module(), &optimizer_);
    TORCH_CHECK_VALUE(
        state.world_size == world_size, "run ", run_.root().string(), " was trained by ", state.world_size,
        " data-parallel process(es) and cannot continue with ", world_size,
        " (the batches each rank saw, and so the exact continuation, depend on it); resume with ",
        state.world_size == 1 ? std::string("no --nproc") : "--nproc " + std::to_string(state.world_size));
    if (writes_files()) run_.truncate_metrics(state.epoch + 1);
    spdlog::info("resuming {} at epoch {} step {}", run_.root().string(), state.epoch + 1,
                 state.step_in_epoch);
  }
  state.world_size = world_size;
  // Every rank starts from rank 0's weights (a fresh model is initialised differently on each).
  if (group_ != nullptr) group_->broadcast_module(task_.module());
  if (writes_files() && !resume && std::filesystem::exists(run_.metrics_path())) {
    // Rows of an earlier session killed before its first checkpoint: this run starts over, so do they.
    run_.truncate_metrics(1);
  }
  open_events(resume ? state.epoch + 1 : 1);
  metrics_ = writes_files() ? run_.read_metrics() : std::vector<nlohmann::json>{};
  metrics_written_ = metrics_.size();
  const int64_t steps_per_epoch = task_.steps_per_epoch();
  TORCH_CHECK(steps_per_epoch > 0, "the training set yields no batch");
  const auto lr_options = LrScheduleOptions(options_.base_lr, options_.epochs * steps_per_epoch)
                              .kind(options_.lr_schedule)
                              .warmup_steps(std::llround(options_.warmup_epochs * steps_per_epoch))
                              .min_lr(options_.min_lr)
                              .steps_per_update(options_.lr_per_epoch ? steps_per_epoch : 1);
  const bool has_val = task_.has_split(EvalSplit::kVal);
  int64_t session_steps = 0;
  const auto session_start = Clock::now();
  const double earlier_sessions_seconds = state.wall_seconds;
  auto stamp_wall_time = [&] {
    state.wall_seconds = earlier_sessions_seconds + seconds_since(session_start);
  };
  auto every = [](int64_t epoch, int64_t n) { return (epoch + 1) % n == 0; };
  bool early_stopped = false;

  for (int64_t epoch = state.epoch; epoch < options_.epochs; ++epoch) {
    apply_bit_schedule(epoch);
    task_.begin_epoch(epoch, state.step_in_epoch);
    run::ProgressReporter progress(fmt::format("epoch {}/{}", epoch + 1, options_.epochs), steps_per_epoch,
                                   options_.log_every, task_.sample_unit());
    int64_t session_samples = 0;
    while (state.step_in_epoch < steps_per_epoch) {
      const auto step_start = Clock::now();
      const double lr = lr_at_step(lr_options, state.global_step);
      scale_learning_rates(optimizer_, base_lrs_, lr / options_.base_lr);
      const StepStats step = task_.train_step(optimizer_);
      run::crash_point("step");
      if (!std::isfinite(step.loss_sum)) {
        progress.finish();
        throw std::runtime_error(fmt::format(
            "training diverged: loss is {} at epoch {} step {} (lr {:.4g}); the last checkpoint is kept",
            step.loss_sum, epoch + 1, state.step_in_epoch + 1, lr));
      }
      state.epoch_loss_sum += step.loss_sum;
      state.epoch_correct += step.correct;
      state.epoch_samples += static_cast<double>(step.samples);
      ++state.step_in_epoch;
      ++state.global_step;
      ++session_steps;
      session_samples += step.samples;
      const double step_seconds = seconds_since(step_start);
      state.epoch_seconds += step_seconds;
      progress.update(state.step_in_epoch, session_samples, step_metrics(state, task_.train_accuracy_name()));

      const bool out_of_steps = options_.max_steps > 0 && session_steps >= options_.max_steps;
      if ((should_stop() || out_of_steps) && state.step_in_epoch < steps_per_epoch) {
        progress.finish();
        stamp_wall_time();
        save_last(state);
        spdlog::info("stopped at epoch {} step {}/{}; continue with: {}", epoch + 1, state.step_in_epoch,
                     steps_per_epoch, resume_command());
        return {false, {}, should_stop()};
      }
    }
    progress.finish();

    const bool last = epoch + 1 == options_.epochs;
    const bool evaluate = has_val && (last || every(epoch, options_.eval_every));
    std::vector<std::pair<std::string, run::Histogram>> input_histograms;
    EvalStats val;
    if (evaluate) {
      std::optional<InputHistograms> inputs;
      if (events_) inputs.emplace(task_.module());
      val = this->evaluate(EvalSplit::kVal);
      if (inputs) input_histograms = inputs->histograms();
    }
    const int64_t weight_bits = quant::bits_at_epoch(options_.weight_bits, epoch);
    const int64_t act_bits = quant::bits_at_epoch(options_.act_bits, epoch);
    if (last || evaluate || every(epoch, options_.metrics_every)) {
      nlohmann::json row = {
          {"epoch", epoch + 1},
          {"lr", lr_at_step(lr_options, state.global_step - 1)},
          {"weight_bits", weight_bits},
          {"act_bits", act_bits},
          {"train_loss", state.epoch_loss_sum / std::max(1.0, state.epoch_samples)},
          {"train_acc", state.epoch_correct / std::max(1.0, state.epoch_samples)},
          {"val_loss", evaluate ? nlohmann::json(val.loss) : nlohmann::json()},
          {"val_acc", evaluate ? nlohmann::json(val.accuracy) : nlohmann::json()},
          {"images_per_second", state.epoch_samples / std::max(1e-9, state.epoch_seconds)},
          {"seconds", state.epoch_seconds},
      };
      spdlog::info("epoch {}/{}: W{}A{} lr {:.4g} train loss {:.4f} {} {:.2f}%{} {:.0f} {}/s {:.3f}s",
                   epoch + 1, options_.epochs, weight_bits, act_bits, row["lr"].get<double>(),
                   row["train_loss"].get<double>(), task_.train_accuracy_name(),
                   100 * row["train_acc"].get<double>(),
                   evaluate ? fmt::format(" | val loss {:.4f} {} {:.2f}%", val.loss,
                                          task_.eval_accuracy_name(), 100 * val.accuracy)
                            : "",
                   row["images_per_second"].get<double>(), task_.sample_unit(), state.epoch_seconds);
      row.update(task_.metrics_extras());
      log_row(row);
      metrics_.push_back(std::move(row));
    }
    // At the evaluation interval; without a validation split, at the epochs it would be evaluated.
    if (last || every(epoch, options_.eval_every)) log_histograms(epoch + 1, input_histograms);
    flush_events();

    const bool checkpoint_due = last || every(epoch, options_.checkpoint_every);
    // Without a validation split there is no selection: the last epoch is the result.
    const bool candidate = evaluate || (!has_val && checkpoint_due);
    const double score = has_val ? val.accuracy : static_cast<double>(epoch);
    ++state.epoch;
    if (candidate && at_final_bits(epoch) && score > state.best_val_accuracy) {
      state.best_val_accuracy = score;
      state.best_epoch = epoch + 1;
      stamp_wall_time();
      if (writes_files()) run::save_checkpoint(run_.best_checkpoint(), task_.module(), nullptr, state);
    }
    if (evaluate && options_.patience > 0 && at_final_bits(epoch) && state.best_epoch > 0 &&
        epoch + 1 - state.best_epoch >= options_.patience && !last) {
      early_stopped = true;
      spdlog::info("early stop after epoch {}: validation accuracy has not improved since epoch {}",
                   epoch + 1, state.best_epoch);
    }
    reset_epoch_sums(state);
    // --max-steps reached at the end of an epoch (always so with one step per epoch) stops here too.
    const bool out_of_steps = options_.max_steps > 0 && session_steps >= options_.max_steps;
    const bool stopping = (should_stop() || out_of_steps) && !last && !early_stopped;
    if (checkpoint_due || early_stopped || stopping) {
      stamp_wall_time();
      save_last(state);
    }
    if (writes_files() && (last || early_stopped || every(epoch, options_.plot_every))) {
      try {
        run::plot_training_curves(metrics_, run_.curves_path());
      } catch (const std::exception& e) {
        spdlog::warn("could not draw {}: {}", run_.curves_path().string(), e.what());
      }
    }
    if (early_stopped) break;
    if (stopping) {
      spdlog::info("stopped after epoch {}; continue with: {}", epoch + 1, resume_command());
      return {false, {}, should_stop()};
    }
  }
  stamp_wall_time();
  return {true, finish(state, early_stopped, extra_summary)};
}

nlohmann::json Trainer::finish(const run::TrainingState& state, bool early_stopped,
                               const nlohmann::json& extra_summary) {
  // Rank 0 reads the best checkpoint; evaluate() hands its weights to the other ranks.
  if (writes_files()) run::load_checkpoint(run_.best_checkpoint(), task_.module(), nullptr);
  const EvalStats test = evaluate(EvalSplit::kTest);
  const auto params = analysis::count_params(task_.module());
  const auto rows = writes_files() ? run_.read_metrics() : metrics_;
  double samples = 0, seconds = 0;
  for (const auto& row : rows) {
    samples += row["images_per_second"].get<double>() * row["seconds"].get<double>();
    seconds += row["seconds"].get<double>();
  }
  nlohmann::json summary = {
      {"test_accuracy", test.accuracy},
      {"test_loss", test.loss},
      {"test_samples", test.samples},
      {"best_epoch", state.best_epoch},
      {"best_val_accuracy",
       task_.has_split(EvalSplit::kVal) ? nlohmann::json(state.best_val_accuracy) : nlohmann::json()},
      {"epochs", options_.epochs},
      {"epochs_run", state.epoch},
      {"early_stopped", early_stopped},
      {"weight_bits", quant::bits_at_epoch(options_.weight_bits, options_.epochs - 1)},
      {"act_bits", quant::bits_at_epoch(options_.act_bits, options_.epochs - 1)},
      {"params", params.total},
      {"params_model", params.model()},
      {"params_quantizer", params.quantizer},
      {"train_images_per_second", seconds > 0 ? samples / seconds : 0.0},
      {"wall_seconds", state.wall_seconds},
  };
  summary.update(task_.summary_extras());
  if (group_ != nullptr) {
    summary["world_size"] = group_->world_size();
    summary["communication_seconds"] = group_->communication_seconds();
  }
  summary.update(extra_summary);
  if (!writes_files()) return nullptr;  // the run's summary is rank 0's
  run_.write_json(run_.summary_path(), summary);
  // After summary.json: a run killed before it is resumed and tests again; logged before it, the test
  // scalars of such a run would be there twice.
  if (events_) {
    for (const auto& item : summary.items()) {
      if (item.key().rfind("test_", 0) == 0 && item.key() != "test_samples" && item.value().is_number()) {
        events_->add_scalar(run::scalar_tag(item.key()), state.epoch, item.value().get<double>());
      }
    }
    flush_events();
  }
  spdlog::info("finished: test {} {:.2f}% (best epoch {}), {} -> {}", task_.eval_accuracy_name(),
               100 * test.accuracy, state.best_epoch, run_.root().string(), run_.summary_path().string());
  return summary;
}

}  // namespace pdeq::train
