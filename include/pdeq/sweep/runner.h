// Runs a sweep's points as child processes of the pdeq CLI, resumably and in parallel.
//
// Each point runs as a child process whose command line the caller supplies (the CLI's `pdeq train --config
// <out>/points/<name>.json --out <out>/<name>`, or `--resume <out>/<name>` when its folder holds a
// checkpoint), under a proc::Supervisor: a crash or error in one point cannot take the others down, every run
// gets a fresh process (no state such as a stop flag carries over), and its output goes to
// <out>/logs/<name>.log. A point whose folder has summary.json is done and skipped. Failures are appended to
// <out>/sweep_status.jsonl with the end of the log and do not stop the others.
//
// SIGINT/SIGTERM: no new point starts; the supervisor forwards the signal to the running ones (they
// checkpoint and exit) and the sweep returns stopped; the next run_sweep on the same folder resumes them.
#pragma once

#include <pdeq/sweep/spec.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::sweep {

/// How one point starts: with `config`, a new run of that config file into `run_dir`; without, a resume of
/// `run_dir`.
struct PointLaunch {
  std::filesystem::path run_dir;
  std::optional<std::filesystem::path> config;
};

/// The full command line (executable first) that runs one point.
using PointCommandLine = std::function<std::vector<std::string>(const PointLaunch&)>;

struct RunnerOptions {
  PointCommandLine command_line;  ///< required unless dry_run
  int64_t jobs = 1;               ///< points run at the same time
  int64_t cores = 0;              ///< 0: std::thread::hardware_concurrency()
  bool dry_run = false;           ///< list the points and their state, run nothing
  /// Every this many seconds while points run, one line on the running points' progress (epoch, %, ETA;
  /// read_point_progress); 0: none.
  double progress_seconds = 60;
};

/// kRunning: another process holds the point's run folder (run::RunLock); the sweep leaves it alone.
enum class PointState { kDone, kResume, kNew, kRunning };
const char* to_string(PointState state);

/// What run_sweep would do with `point` in `run_dir`. A folder holding a run of a different config (other
/// than train.threads) throws config::ConfigError naming its config.json and the first differing key: the
/// sweep file changed, so the folder must be removed or another --out chosen.
PointState point_state(const Point& point, const std::filesystem::path& run_dir);

/// Threads per job: the config's train.threads when set and <= cores / jobs, else cores / jobs (at least 1).
int64_t threads_per_job(int64_t config_threads, int64_t cores, int64_t jobs);

struct SweepOutcome {
  int64_t total = 0;
  int64_t done = 0;         ///< finished points (skipped or run now)
  int64_t failed = 0;       ///< failed in this call
  int64_t interrupted = 0;  ///< stopped by a signal in this call, resumable
  bool stopped = false;     ///< a stop was requested
  nlohmann::json plan;      ///< one entry per point: name, state, overrides
};

/// Runs every point not yet done. Checks all folders (point_state) before starting anything; writes
/// <out>/sweep.json (the plan), the point configs and the logs; prints progress (points done/total, ETA; a
/// line per started and finished point, and every options.progress_seconds the running points' epochs).
SweepOutcome run_sweep(const std::vector<Point>& points, const std::filesystem::path& out,
                       const RunnerOptions& options);

}  // namespace pdeq::sweep
