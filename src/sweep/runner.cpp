#include <pdeq/sweep/runner.h>

#include <pdeq/proc/supervisor.h>
#include <pdeq/run/progress.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/run_lock.h>
#include <pdeq/sweep/progress.h>

#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace pdeq::sweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// Keys that may differ between a point and its existing run folder: how it runs, not what it computes.
bool ignored_key(const std::string& key) { return key == "train.threads"; }

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

/// The last `lines` lines of a log (error messages end child logs).
std::string log_tail(const fs::path& log, size_t lines) {
  std::ifstream in(log);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    // Progress bars redraw with '\r': keep what was drawn last.
    const auto cr = line.find_last_of('\r');
    if (cr != std::string::npos) line = line.substr(cr + 1);
    if (line.empty()) continue;
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += (out.empty() ? "" : "\n") + l;
  return out;
}

void append_line(const fs::path& path, const json& entry) {
  std::ofstream out(path, std::ios::app);
  out << entry.dump() << "\n";
}

}  // namespace

const char* to_string(PointState state) {
  switch (state) {
    case PointState::kDone:
      return "done";
    case PointState::kResume:
      return "resume";
    case PointState::kNew:
      return "new";
    case PointState::kRunning:
      return "running";
  }
  return "?";
}

PointState point_state(const Point& point, const fs::path& run_dir) {
  const run::RunDirectory run(run_dir);
  if (run::RunLock::holder(run_dir)) return PointState::kRunning;
  if (!fs::exists(run.config_path())) return PointState::kNew;
  const auto stored = flatten(run.read_json(run.config_path()));
  const auto wanted = flatten(config::to_json(point.config));
  for (const auto& [key, value] : wanted) {
    if (ignored_key(key)) continue;
    const auto it = stored.find(key);
    if (it == stored.end() || it->second != value) {
      throw config::ConfigError(run.config_path().string() + ": " + key + ": the run folder holds " +
                                (it == stored.end() ? "no value" : it->second.dump()) +
                                " but the sweep's point " + point.name + " has " + value.dump() +
                                " (the sweep changed); remove the folder or choose another --out");
    }
  }
  if (run.finished()) return PointState::kDone;
  return run.has_checkpoint() ? PointState::kResume : PointState::kNew;
}

int64_t threads_per_job(int64_t config_threads, int64_t cores, int64_t jobs) {
  const int64_t share = std::max<int64_t>(1, cores / std::max<int64_t>(1, jobs));
  return config_threads > 0 && config_threads <= share ? config_threads : share;
}

SweepOutcome run_sweep(const std::vector<Point>& points, const fs::path& out, const RunnerOptions& options) {
  TORCH_CHECK_VALUE(options.jobs >= 1, "jobs must be >= 1, but got ", options.jobs);
  const int64_t cores =
      options.cores > 0 ? options.cores : std::max<int64_t>(1, std::thread::hardware_concurrency());

  SweepOutcome outcome;
  outcome.total = static_cast<int64_t>(points.size());
  outcome.plan = json::array();
  std::vector<PointState> states;
  for (const Point& point : points) {
    states.push_back(point_state(point, out / point.name));  // every folder checked before anything starts
    outcome.plan.push_back(
        {{"name", point.name}, {"state", to_string(states.back())}, {"overrides", point.overrides}});
  }
  const auto count = [&](PointState s) { return std::count(states.begin(), states.end(), s); };
  outcome.done = count(PointState::kDone);
  if (options.dry_run) return outcome;

  fs::create_directories(out / "points");
  fs::create_directories(out / "logs");
  run::atomic_write_file(out / "sweep.json", outcome.plan.dump(2) + "\n");
  const fs::path status_path = out / "sweep_status.jsonl";

  std::deque<size_t> pending;
  for (size_t i = 0; i < points.size(); ++i) {
    if (states[i] == PointState::kRunning) {
      spdlog::warn("sweep: {} is being written by another process (pid {}); skipped", points[i].name,
                   run::RunLock::holder(out / points[i].name).value_or(0));
    } else if (states[i] != PointState::kDone) {
      pending.push_back(i);
    }
  }
  const int64_t jobs = std::min<int64_t>(options.jobs, std::max<size_t>(1, pending.size()));
  spdlog::info("sweep: {} points ({} done, {} to resume, {} new), {} job(s) -> {}", points.size(),
               outcome.done, count(PointState::kResume), count(PointState::kNew), jobs, out.string());

  TORCH_CHECK_VALUE(static_cast<bool>(options.command_line),
                    "run_sweep: RunnerOptions::command_line is not set");
  proc::Supervisor supervisor;
  const auto start = Clock::now();
  const size_t to_run = pending.size();
  size_t finished_now = 0;
  std::map<int, size_t> point_of;  // supervisor child id -> point index
  struct Started {
    Clock::time_point time;
    double fraction = 0;  // progress read when it started
  };
  std::map<size_t, Started> started;  // point index -> when it started, while it runs
  auto last_status = Clock::now();
  // "a (epoch 13/200, 6%, ETA 1:02:03), b (starting)" for the running points, in the order they started.
  const auto running_points = [&] {
    std::string text;
    for (const auto& entry : point_of) {
      const size_t i = entry.second;
      const fs::path run_dir = out / points[i].name;
      const PointProgress progress = read_point_progress(run_dir, out / "logs" / (points[i].name + ".log"));
      const Started& since = started.at(i);
      const double elapsed = std::chrono::duration<double>(Clock::now() - since.time).count();
      const double gained = progress.fraction() - since.fraction;
      std::optional<double> eta;
      if (progress.known() && gained > 1e-9) eta = elapsed / gained * (1.0 - progress.fraction());
      text += (text.empty() ? "" : ", ") + points[i].name + " (" + describe(progress, eta) + ")";
    }
    return text;
  };

  while (supervisor.running() > 0 || (!pending.empty() && !supervisor.stop_requested())) {
    while (static_cast<int64_t>(supervisor.running()) < jobs && !pending.empty() &&
           !supervisor.stop_requested()) {
      const size_t i = pending.front();
      pending.pop_front();
      const Point& point = points[i];
      PointLaunch launch{out / point.name, std::nullopt};
      if (states[i] != PointState::kResume) {
        config::Config config = point.config;
        config.train.threads = threads_per_job(config.train.threads, cores, jobs);
        launch.config = out / "points" / (point.name + ".json");
        run::atomic_write_file(*launch.config, config::to_json(config).dump(2) + "\n");
      }
      const fs::path log = out / "logs" / (point.name + ".log");
      // A resumed point starts with some progress (and a retried one's log ends with its last attempt's).
      const double before = read_point_progress(launch.run_dir, log).fraction();
      point_of[supervisor.start(options.command_line(launch), log)] = i;
      started[i] = {Clock::now(), before};
      spdlog::info("sweep: {} {} (log {})", states[i] == PointState::kResume ? "resuming" : "starting",
                   point.name, log.string());
    }
    if (supervisor.stop_requested() && !outcome.stopped) {
      outcome.stopped = true;
      spdlog::warn("sweep: stopping; {} running point(s) checkpoint and exit", supervisor.running());
    }

    const auto exit = supervisor.wait_any(std::chrono::milliseconds(200));
    if (!exit) {
      if (options.progress_seconds > 0 && supervisor.running() > 0 &&
          Clock::now() - last_status >= std::chrono::duration<double>(options.progress_seconds)) {
        last_status = Clock::now();
        spdlog::info("sweep: {}/{} done{}, elapsed {}, running: {}", outcome.done, outcome.total,
                     outcome.failed ? ", " + std::to_string(outcome.failed) + " failed" : std::string(),
                     run::format_duration(std::chrono::duration<double>(Clock::now() - start).count()),
                     running_points());
      }
      continue;
    }
    const size_t index = point_of.at(exit->id);
    point_of.erase(exit->id);
    started.erase(index);
    const Point& point = points[index];
    const fs::path run_dir = out / point.name;
    const fs::path log = out / "logs" / (point.name + ".log");
    json entry = {{"time", utc_now()},
                  {"name", point.name},
                  {"exit_code", exit->exit_code},
                  {"seconds", exit->seconds}};
    if (exit->exit_code == 0 && run::RunDirectory(run_dir).finished()) {
      entry["status"] = "done";
      ++outcome.done;
      ++finished_now;
    } else if (exit->exit_code == 130 || (outcome.stopped && run::RunDirectory(run_dir).has_checkpoint())) {
      entry["status"] = "interrupted";
      ++outcome.interrupted;
    } else {
      entry["status"] = "failed";
      entry["error"] = log_tail(log, 10);
      ++outcome.failed;
      ++finished_now;
      spdlog::error("sweep: {} failed (exit {}), see {}:\n{}", point.name, exit->exit_code, log.string(),
                    log_tail(log, 3));
    }
    append_line(status_path, entry);

    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const size_t left = to_run - finished_now;
    const std::string eta =
        finished_now > 0 && !outcome.stopped
            ? run::format_duration(elapsed / static_cast<double>(finished_now) * static_cast<double>(left))
            : "?";
    spdlog::info("sweep: {}/{} done{} ({}), {} running, elapsed {}, ETA {}", outcome.done, outcome.total,
                 outcome.failed ? ", " + std::to_string(outcome.failed) + " failed" : std::string(),
                 point.name + " " + entry["status"].get<std::string>(), supervisor.running(),
                 run::format_duration(elapsed), eta);
  }
  if (supervisor.stop_requested()) outcome.stopped = true;
  return outcome;
}

}  // namespace pdeq::sweep
