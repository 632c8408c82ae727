// Library entry points behind `pdeq train`, `pdeq eval` and `pdeq bench`: whole runs from a config.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/dist/process_group.h>
#include <pdeq/train/trainer.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::train {

struct RunOptions {
  bool force = false;     ///< overwrite a finished or unfinished run in the output folder
  int64_t max_steps = 0;  ///< > 0: stop resumably after this many steps (as on Ctrl-C)
  int64_t seeds = 0;      ///< > 0: overrides train.seeds of a new run (`pdeq train --seeds N`)
  /// This process is one rank of a data-parallel run (`pdeq train --rank R --world-size N --master A:P`, or
  /// a rank started by `--nproc N`): data.batch_size is the global batch, split between the ranks.
  std::optional<dist::ProcessGroupOptions> distributed = std::nullopt;
};

/// The checks a resume of `run_dir` by `world_size` ranks can fail before any rank starts: the run exists, is
/// unfinished, and its last checkpoint was written by as many ranks (config::ConfigError otherwise).
void check_resumable(const std::filesystem::path& run_dir, int64_t world_size);

/// A new run in `out`: writes the resolved config.json, trains, tests the best checkpoint, writes
/// summary.json. With train.seeds = N > 1: N runs in <out>/seed<i> (train.seed + i), and <out>/summary.json
/// holds the mean and sample std of their test accuracies (each taken at its best validation epoch).
FitResult train_run(const config::Config& config, const std::filesystem::path& out,
                    const RunOptions& options = {});

/// Continues the run in `run_dir` from its last checkpoint with the config stored there (multi-seed runs:
/// finished seeds are kept, the interrupted one resumes, the rest start).
FitResult resume_run(const std::filesystem::path& run_dir, const RunOptions& options = {});

struct EvalOptions {
  std::optional<int64_t> weight_bits;  ///< override the checkpoint's bit widths (32: full precision)
  std::optional<int64_t> act_bits;
  std::string checkpoint = "best";  ///< best | last
  std::string split = "test";       ///< test | val
};

/// Accuracy and loss of a run's checkpoint, optionally at other bit widths.
nlohmann::json evaluate_run(const std::filesystem::path& run_dir, const EvalOptions& options = {});

struct BenchOptions {
  int64_t steps = 20;  ///< timed training steps per measurement
  int64_t warmup = 3;
  int64_t rounds = 3;    ///< measurements alternate model/baseline this many times; the median is reported
  bool baseline = true;  ///< also measure the same model in full precision
  /// "a.b=value" applied to the baseline's config (before it is set to full precision), e.g.
  /// {"model.name=resnet20", "model.stable=false"} to compare a symmetric net with the plain float ResNet.
  std::vector<std::string> baseline_overrides;
  /// Data-parallel: this process is one rank; data.batch_size is the global batch. Rank 0 returns the
  /// figures (global images/s, communication seconds per step), the other ranks a null JSON.
  std::optional<dist::ProcessGroupOptions> distributed = std::nullopt;
  /// Image models: measure every train.memory_format x train.precision pair (model and baseline each) and
  /// add them as `modes`, a table of {memory_format, precision, images_per_second, float_images_per_second,
  /// ratio_to_float}; the top-level figures stay those of the configured pair.
  bool all_modes = false;
};

/// Training throughput on synthetic batches of the configured shape (no data is read). Graph datasets use the
/// real graph and report seconds per full-batch epoch (a training step plus a validation pass).
nlohmann::json bench_train(const config::Config& config, const BenchOptions& options = {});

struct DataBenchOptions {
  int64_t batches = 20;     ///< training batches timed (the loader's first batch, warm-up, not counted)
  int64_t train_steps = 0;  ///< > 0: also time this many real training steps against synthetic batches
};

/// `pdeq bench data`: the configured training loader alone, as fast as it can deliver (decode, augment,
/// normalise, prefetch): images_per_second, with workers, batch, image_size. With train_steps > 0 also
/// end-to-end training images/s on the real loader (decoding beside training, as in a run) next to the same
/// model on one synthetic batch, and their ratio end_to_end_fraction.
nlohmann::json bench_data(const config::Config& config, const DataBenchOptions& options = {});

}  // namespace pdeq::train
