// The one training loop: epochs, learning-rate and bit schedules, validation, best/last checkpoints, metrics,
// graceful stop and exact resume. Task-agnostic: it sees a Task and a RunDirectory.
#pragma once

#include <pdeq/distributed/process_group.h>
#include <pdeq/quant/bit_schedule.h>
#include <pdeq/quant/fake_quantize.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/tensorboard.h>
#include <pdeq/train/lr_schedule.h>
#include <pdeq/train/task.h>

#include <pdeq/run/stop_signal.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>

namespace pdeq::train {

struct TrainerOptions {
  int64_t epochs = 1;
  double base_lr = 0.1;
  LrScheduleKind lr_schedule = LrScheduleKind::kCosine;
  bool lr_per_epoch = true;  ///< the rate moves once per epoch (the reference), else every step
  double warmup_epochs = 0.0;
  double min_lr = 0.0;
  quant::BitScheduleOptions weight_bits{quant::kFullPrecisionBits};
  quant::BitScheduleOptions act_bits{quant::kFullPrecisionBits};
  int64_t log_every = 50;
  /// > 0: stop (checkpoint and return, as on Ctrl-C) after this many steps in this session.
  int64_t max_steps = 0;
  /// Intervals in epochs; the last epoch always does all four. Full-batch graph epochs take milliseconds, so
  /// evaluating, checkpointing and plotting every epoch would dominate a 1000-epoch run.
  int64_t eval_every = 1;        ///< validation and best-checkpoint selection
  int64_t checkpoint_every = 1;  ///< last checkpoint; metrics are flushed to disk with it
  int64_t metrics_every = 1;     ///< metrics rows (evaluated epochs always get one)
  int64_t plot_every = 1;        ///< training curves
  /// > 0: early stopping once the best validation epoch is this many epochs behind (evaluated epochs at the
  /// final bit widths only).
  int64_t patience = 0;
  /// TensorBoard event files in <run>/tensorboard/ (docs/tensorboard.md): every metrics row's numbers, the
  /// learning rate of each parameter group and every quantizer's clipping scale with each row; histograms of
  /// the weights and of the activation quantizers' inputs at each evaluation; the test metrics at the end.
  bool tensorboard = true;
};

struct FitResult {
  bool finished = false;     ///< false: stopped early, resumable from the last checkpoint
  nlohmann::json summary;    ///< summary.json contents when finished (null on data-parallel ranks > 0)
  bool interrupted = false;  ///< stopped by a signal or request_stop() (not by max_steps)
};

class Trainer {
 public:
  /// `optimizer` must hold `task.module()`'s parameters. Each parameter group's lr as configured here is its
  /// base lr: the schedule multiplies every group's base lr by lr_at_step(step) / options.base_lr.
  ///
  /// With a process `group` (data parallelism, one Trainer per rank, each on its own shard of the data): rank
  /// 0's parameters and buffers are broadcast at the start, every step averages the gradients over the ranks
  /// in one flat allreduce (which also sums the step statistics and agrees on a stop request), validation and
  /// test sums are reduced over the ranks, and only rank 0 writes to the run folder. BatchNorm normalises
  /// with each rank's own batch statistics, as PyTorch's DDP; the running statistics evaluated and saved are
  /// rank 0's (broadcast before each evaluation). Every rank must read the same run folder to resume.
  Trainer(Task& task, torch::optim::Optimizer& optimizer, run::RunDirectory run, TrainerOptions options,
          distributed::ProcessGroup* group = nullptr);

  /// Trains from scratch, or from the run's last checkpoint when `resume`. Writes summary.json at the end,
  /// after testing the best checkpoint. `extra_summary` entries are merged into the summary.
  FitResult fit(bool resume, const nlohmann::json& extra_summary = nlohmann::json::object());

 private:
  void apply_bit_schedule(int64_t epoch);
  bool at_final_bits(int64_t epoch) const;
  void save_last(run::TrainingState& state);
  /// The command that continues this run: `pdeq train --resume DIR`, with `--nproc N` for N ranks.
  std::string resume_command() const;
  bool writes_files() const { return group_ == nullptr || group_->is_main(); }
  /// Ctrl-C/SIGTERM, agreed by all ranks at the last step when data-parallel (so all stop at the same step).
  bool should_stop() const { return group_ != nullptr ? stop_agreed_ : run::stop_requested(); }
  /// task_.evaluate, summed over the ranks' shards when data-parallel.
  EvalStats evaluate(EvalSplit split);
  nlohmann::json finish(const run::TrainingState& state, bool early_stopped,
                        const nlohmann::json& extra_summary);
  /// The event file of this session, after dropping the events of epochs >= `first_epoch` (1-based: the
  /// first this session trains) that a killed run left, so no step appears twice. Stays null when
  /// train.tensorboard is off and on data-parallel ranks > 0.
  void open_events(int64_t first_epoch);
  /// A metrics row's numbers (step = its epoch), each parameter group's learning rate and the clipping
  /// scales.
  void log_row(const nlohmann::json& row);
  /// Histograms of the weights (every parameter of 2 or more dimensions) and of `inputs` (name, histogram).
  void log_histograms(int64_t step, const std::vector<std::pair<std::string, run::Histogram>>& inputs);
  /// flush(), or a warning and no more events if the file cannot be written (the metrics stay the record).
  void flush_events();

  Task& task_;
  torch::optim::Optimizer& optimizer_;
  run::RunDirectory run_;
  TrainerOptions options_;
  std::vector<double> base_lrs_;         ///< per parameter group, as constructed
  std::vector<nlohmann::json> metrics_;  ///< all rows of the run; written with each checkpoint
  size_t metrics_written_ = 0;
  distributed::ProcessGroup* group_ = nullptr;
  std::vector<torch::Tensor> parameters_;  ///< whose gradients are averaged (data-parallel)
  bool stop_agreed_ = false;
  std::unique_ptr<run::EventFileWriter> events_;
};

}  // namespace pdeq::train
