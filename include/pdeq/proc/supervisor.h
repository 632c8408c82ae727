// Child processes of pdeq itself (sweep points, data-parallel ranks), started and watched by one supervisor.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace pdeq::proc {

/// How a child ended: its exit status, or 128 + the signal that killed it (as a shell reports it).
struct ChildExit {
  int id = -1;  ///< what Supervisor::start returned
  int exit_code = 0;
  double seconds = 0.0;  ///< from start to exit
};

/// Starts children and waits for them. Each child gets a process group of its own, so a terminal's Ctrl-C
/// reaches the supervisor only; the supervisor forwards every SIGINT/SIGTERM it receives to each running
/// child, once (the children's own handlers make the first a graceful stop and a second an abort). While a
/// Supervisor exists it owns SIGINT/SIGTERM of this process; the previous handlers come back on destruction.
/// Children still running at destruction (an exception unwinding through the owner) get SIGKILL and are
/// reaped, and a child whose supervisor dies (even by SIGKILL) gets SIGTERM from the kernel
/// (PR_SET_PDEATHSIG), so none outlives its supervisor. Use a supervisor on the thread that created it.
class Supervisor {
 public:
  Supervisor();
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  /// Runs argv[0] (a path) with `argv`. With `log`, stdin is /dev/null and stdout and stderr are appended to
  /// `log`; without, the child shares this process's streams. Throws std::runtime_error when it cannot
  /// start; a program that cannot be executed exits 127.
  int start(const std::vector<std::string>& argv, const std::optional<std::filesystem::path>& log = {});

  /// Forwards pending signals, then waits up to `timeout` for a child to exit.
  std::optional<ChildExit> wait_any(std::chrono::milliseconds timeout);

  /// Sends `signal_number` to every running child.
  void signal_all(int signal_number);

  /// True once SIGINT or SIGTERM reached this process while the supervisor existed.
  bool stop_requested() const;

  size_t running() const { return children_.size(); }
  /// Ids of the children still running.
  std::vector<int> running_ids() const;

 private:
  struct Child {
    int id;
    pid_t pid;
    std::chrono::steady_clock::time_point start;
  };
  void forward_pending_signals();

  std::vector<Child> children_;
  int next_id_ = 0;
};

}  // namespace pdeq::proc
