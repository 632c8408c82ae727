// `pdeq bench train`: training throughput on synthetic batches, next to the same model in full precision.
#pragma once

#include <pdeq/commands/train.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace pdeq::commands {

struct BenchTrainOptions {
  std::filesystem::path config;
  std::vector<std::string> overrides;
  int64_t steps = 20;  ///< timed training steps per measurement
  int64_t warmup = 3;
  int64_t rounds = 3;    ///< measurements alternate model/baseline this many times; the median is reported
  bool baseline = true;  ///< also measure the same model in full precision
  /// "a.b=value" applied to the baseline's config (before it is set to full precision), e.g.
  /// {"model.name=resnet20", "model.stable=false"} to compare a symmetric net with the plain float ResNet.
  std::vector<std::string> baseline_overrides;
  /// Image models: measure every train.memory_format x train.precision pair (model and baseline each) and
  /// add them as `modes`, a table of {memory_format, precision, images_per_second, float_images_per_second,
  /// ratio_to_float}; the top-level figures stay those of the configured pair.
  bool all_modes = false;
  /// Data-parallel: `nproc` local ranks, or this process as one rank; data.batch_size is the global batch.
  DistributedOptions distributed;
};

/// The full command line (executable first) of one rank of `pdeq bench train --nproc N`.
using BenchTrainCommandLine = std::function<std::vector<std::string>(const BenchTrainOptions&)>;

struct BenchTrainResult {
  /// images_per_second (graphs: seconds_per_epoch), float_* and ratio_to_float, the rounds, model, bits,
  /// batch, threads; data-parallel: world_size, batch_per_rank, communication_seconds_per_step. Null on
  /// ranks other than 0.
  nlohmann::json figures;
  int exit_code = 0;  ///< of the ranks, with --nproc
  nlohmann::json to_json() const { return figures; }
};

/// Image datasets: synthetic batches of the configured shape (no data is read). Graph datasets: the real
/// graph, seconds per full-batch epoch (a training step plus a validation pass).
BenchTrainResult bench_train(const BenchTrainOptions& options,
                             const BenchTrainCommandLine& child_command_line = {});

}  // namespace pdeq::commands
