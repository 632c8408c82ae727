// Whole runs from a config: a new run folder, or the continuation of one (multi-seed and data-parallel too).
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/distributed/process_group.h>
#include <pdeq/train/trainer.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace pdeq::experiment {

struct RunOptions {
  bool force = false;     ///< overwrite a finished or unfinished run in the output folder
  int64_t max_steps = 0;  ///< > 0: stop resumably after this many steps (as on Ctrl-C)
  int64_t seeds = 0;      ///< > 0: overrides train.seeds of a new run (`pdeq train --seeds N`)
  /// This process is one rank of a data-parallel run (`pdeq train --rank R --world-size N --master A:P`, or
  /// a rank started by `--nproc N`): data.batch_size is the global batch, split between the ranks.
  std::optional<distributed::ProcessGroupOptions> distributed = std::nullopt;
  /// Not empty: the device of this process (`--device`), instead of the config's train.device; a resumed
  /// run may continue on another device than it started on (checkpoints hold CPU tensors).
  std::string device{};
};

/// The checks a resume of `run_dir` by `world_size` ranks can fail before any rank starts: the run exists, is
/// unfinished, and its last checkpoint was written by as many ranks (config::ConfigError otherwise). Returns
/// the run's validated config.
config::Config check_resumable(const std::filesystem::path& run_dir, int64_t world_size);

/// A new run in `out`: writes the resolved config.json, trains, tests the best checkpoint, writes
/// summary.json. With train.seeds = N > 1: N runs in <out>/seed<i> (train.seed + i), and <out>/summary.json
/// holds the mean and sample std of their test accuracies (each taken at its best validation epoch).
train::FitResult train_run(const config::Config& config, const std::filesystem::path& out,
                           const RunOptions& options = {});

/// Continues the run in `run_dir` from its last checkpoint with the config stored there (multi-seed runs:
/// finished seeds are kept, the interrupted one resumes, the rest start).
train::FitResult resume_run(const std::filesystem::path& run_dir, const RunOptions& options = {});

}  // namespace pdeq::experiment
