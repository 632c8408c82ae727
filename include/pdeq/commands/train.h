// `pdeq train`: a new run from a config, or the continuation of one; data-parallel with local ranks.
#pragma once

#include <pdeq/distributed/process_group.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::commands {

/// How this process takes part in data-parallel training: it starts `nproc` local ranks of itself, or it is
/// one rank (`rank` set) of a group that meets at `master`.
struct DistributedOptions {
  int nproc = 1;
  std::optional<int64_t> rank;
  int64_t world_size = 1;
  std::string master;             ///< ADDR:PORT of rank 0
  int64_t timeout_seconds = 120;  ///< a silent rank is an error after this long

  /// The process group this rank joins; nullopt when this process is not a rank. Throws config::ConfigError
  /// when rank >= world_size or `master` is malformed.
  std::optional<distributed::ProcessGroupOptions> process_group() const;
};

struct TrainOptions {
  std::filesystem::path config;        ///< a new run's config file (with `out`)
  std::vector<std::string> overrides;  ///< "key.path=value", applied to `config` and validated like it
  std::filesystem::path out;           ///< the new run's folder
  std::filesystem::path resume;        ///< or: the run folder to continue
  bool force = false;                  ///< overwrite an existing run folder
  int64_t max_steps = 0;               ///< > 0: stop (resumably) after this many steps
  int64_t seeds = 0;                   ///< > 0: repeat with this many seeds
  /// Not empty (`--device`): a new run's train.device (as --set train.device=...); a resumed run continues
  /// on this device instead of its train.device.
  std::string device;
  DistributedOptions distributed;
};

/// The full command line (executable first) of a child `pdeq train` process: a rank of `--nproc`, a sweep
/// point. The CLI supplies it, since only the CLI knows how its options are spelled.
using TrainCommandLine = std::function<std::vector<std::string>(const TrainOptions&)>;

struct TrainResult {
  bool finished = false;     ///< the run (every seed) is complete
  bool interrupted = false;  ///< stopped by a signal after checkpointing; resumable
  nlohmann::json summary;    ///< summary.json of a finished run (null on ranks other than 0)

  /// 0 finished or stopped by max_steps, 130 interrupted, else the failing rank's code.
  int exit_code = 0;
  nlohmann::json to_json() const { return summary; }
};

/// Validates once, then trains or resumes. With distributed.nproc > 1 it checks what every rank would refuse,
/// then starts the ranks with `child_command_line` under a supervisor and waits for them.
TrainResult train(const TrainOptions& options, const TrainCommandLine& child_command_line = {});

}  // namespace pdeq::commands
