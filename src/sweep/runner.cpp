#include <pdeq/sweep/runner.h>

#include <pdeq/train/progress.h>
#include <pdeq/train/run_dir.h>
#include <pdeq/train/stop_signal.h>

#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

extern char** environ;

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

struct Child {
  size_t index;
  pid_t pid;
  Clock::time_point start;
  PointState state;
};

/// Starts `pdeq train` for one point in its own process group (so that a terminal's Ctrl-C reaches only the
/// sweep, which then stops each child exactly once), stdout and stderr into `log`.
pid_t spawn(const fs::path& executable, const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv_strings{executable.string()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, executable.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    throw std::runtime_error("cannot start " + executable.string() + ": " + std::strerror(error));
  }
  return pid;
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
  }
  return "?";
}

PointState point_state(const Point& point, const fs::path& run_dir) {
  const train::RunDirectory run(run_dir);
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
  train::atomic_write_file(out / "sweep.json", outcome.plan.dump(2) + "\n");
  const fs::path status_path = out / "sweep_status.jsonl";

  std::deque<size_t> pending;
  for (size_t i = 0; i < points.size(); ++i) {
    if (states[i] != PointState::kDone) pending.push_back(i);
  }
  const int64_t jobs = std::min<int64_t>(options.jobs, std::max<size_t>(1, pending.size()));
  spdlog::info("sweep: {} points ({} done, {} to resume, {} new), {} job(s) -> {}", points.size(),
               outcome.done, count(PointState::kResume), count(PointState::kNew), jobs, out.string());

  train::install_stop_handlers();
  const auto start = Clock::now();
  const size_t to_run = pending.size();
  size_t finished_now = 0;
  std::vector<Child> running;
  bool forwarded = false;

  while (!running.empty() || (!pending.empty() && !train::stop_requested())) {
    while (static_cast<int64_t>(running.size()) < jobs && !pending.empty() && !train::stop_requested()) {
      const size_t i = pending.front();
      pending.pop_front();
      const Point& point = points[i];
      const fs::path run_dir = out / point.name;
      std::vector<std::string> args;
      if (states[i] == PointState::kResume) {
        args = {"train", "--resume", run_dir.string()};
      } else {
        config::Config config = point.config;
        config.train.threads = threads_per_job(config.train.threads, cores, jobs);
        const fs::path config_path = out / "points" / (point.name + ".json");
        train::atomic_write_file(config_path, config::to_json(config).dump(2) + "\n");
        args = {"train", "--config", config_path.string(), "--out", run_dir.string()};
      }
      const fs::path log = out / "logs" / (point.name + ".log");
      running.push_back({i, spawn(options.executable, args, log), Clock::now(), states[i]});
      spdlog::info("sweep: {} {} (log {})", states[i] == PointState::kResume ? "resuming" : "starting",
                   point.name, log.string());
    }
    if (train::stop_requested() && !forwarded) {
      forwarded = true;
      outcome.stopped = true;
      spdlog::warn("sweep: stopping; {} running point(s) checkpoint and exit", running.size());
      for (const Child& child : running) ::kill(child.pid, SIGTERM);
    }

    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const auto it =
        std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == pid; });
    if (it == running.end()) continue;  // not ours
    const Child child = *it;
    running.erase(it);
    const Point& point = points[child.index];
    const fs::path run_dir = out / point.name;
    const fs::path log = out / "logs" / (point.name + ".log");
    const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const double seconds = std::chrono::duration<double>(Clock::now() - child.start).count();
    json entry = {{"time", utc_now()}, {"name", point.name}, {"exit_code", exit_code}, {"seconds", seconds}};
    if (exit_code == 0 && train::RunDirectory(run_dir).finished()) {
      entry["status"] = "done";
      ++outcome.done;
      ++finished_now;
    } else if (exit_code == 130 || (outcome.stopped && train::RunDirectory(run_dir).has_checkpoint())) {
      entry["status"] = "interrupted";
      ++outcome.interrupted;
    } else {
      entry["status"] = "failed";
      entry["error"] = log_tail(log, 10);
      ++outcome.failed;
      ++finished_now;
      spdlog::error("sweep: {} failed (exit {}), see {}:\n{}", point.name, exit_code, log.string(),
                    log_tail(log, 3));
    }
    append_line(status_path, entry);

    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const size_t left = to_run - finished_now;
    const std::string eta =
        finished_now > 0 && !outcome.stopped
            ? train::format_duration(elapsed / static_cast<double>(finished_now) * static_cast<double>(left))
            : "?";
    spdlog::info("sweep: {}/{} done{} ({}), {} running, elapsed {}, ETA {}", outcome.done, outcome.total,
                 outcome.failed ? ", " + std::to_string(outcome.failed) + " failed" : std::string(),
                 point.name + " " + entry["status"].get<std::string>(), running.size(),
                 train::format_duration(elapsed), eta);
  }
  if (train::stop_requested()) outcome.stopped = true;
  return outcome;
}

}  // namespace pdeq::sweep
