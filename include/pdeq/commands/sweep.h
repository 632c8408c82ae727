// `pdeq sweep`: a sweep file in, one run folder per point and a report out.
#pragma once

#include <pdeq/commands/train.h>
#include <pdeq/sweep/runner.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace pdeq::commands {

struct SweepOptions {
  std::filesystem::path file;  ///< the sweep file
  std::filesystem::path out;   ///< sweep folder
  int64_t jobs = 1;            ///< points run in parallel
  int64_t cores = 0;           ///< cores split between the jobs; 0: all
  bool dry_run = false;        ///< list the points and their state, run nothing
};

struct SweepResult {
  sweep::SweepOutcome
      outcome;  ///< points, done, failed, interrupted, stopped, and the plan (state per point)
  std::filesystem::path out;

  /// 130 stopped, 1 when a point failed, else 0.
  int exit_code() const { return outcome.stopped ? 130 : outcome.failed > 0 ? 1 : 0; }
  nlohmann::json to_json() const;
};

/// Loads and expands the sweep (every point validated before anything runs), runs each point not yet done
/// as a child `pdeq train` (`child_command_line`), then, unless a dry run or nothing has finished, writes
/// <out>/report over the sweep's points (with a search: the best trial per configuration).
SweepResult sweep(const SweepOptions& options, const TrainCommandLine& child_command_line);

}  // namespace pdeq::commands
