#include <pdeq/proc/supervisor.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace pdeq::proc {
namespace {

using Clock = std::chrono::steady_clock;

// Signals received and not yet forwarded, one bit per signal, and whether any arrived at all. A handler may
// only touch lock-free atomics; the supervisor's waiting loop does the forwarding.
std::atomic<unsigned> g_pending{0};
std::atomic<bool> g_stop{false};

unsigned bit_of(int signal_number) { return signal_number == SIGINT ? 1u : 2u; }

void on_signal(int signal_number) {
  g_pending.fetch_or(bit_of(signal_number));
  g_stop.store(true);
}

// Supervisors may nest (a test inside a sweep); the outermost one installs and restores the handlers.
std::mutex g_mutex;
int g_depth = 0;
struct sigaction g_previous_int {};
struct sigaction g_previous_term {};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

Supervisor::Supervisor() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_depth++ > 0) return;
  g_pending.store(0);
  g_stop.store(false);
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &g_previous_int);
  sigaction(SIGTERM, &action, &g_previous_term);
}

Supervisor::~Supervisor() {
  for (const Child& child : children_) ::kill(child.pid, SIGKILL);
  for (const Child& child : children_) {
    int status = 0;
    while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  if (--g_depth > 0) return;
  sigaction(SIGINT, &g_previous_int, nullptr);
  sigaction(SIGTERM, &g_previous_term, nullptr);
  g_pending.store(0);
  g_stop.store(false);
}

int Supervisor::start(const std::vector<std::string>& argv_strings,
                      const std::optional<std::filesystem::path>& log) {
  if (argv_strings.empty()) throw std::invalid_argument("Supervisor::start: empty command line");
  // Everything the child needs is made before fork: between fork and exec only async-signal-safe calls.
  std::vector<char*> argv;
  for (const std::string& s : argv_strings) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  int stdin_fd = -1, log_fd = -1;
  if (log) {
    stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    log_fd = ::open(log->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (stdin_fd < 0 || log_fd < 0) {
      const std::string reason = std::strerror(errno);
      if (stdin_fd >= 0) ::close(stdin_fd);
      if (log_fd >= 0) ::close(log_fd);
      throw std::runtime_error("cannot open " + log->string() + " for " + argv_strings[0] + ": " + reason);
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A process group of its own: a terminal's Ctrl-C reaches the supervisor only.
    ::setpgid(0, 0);
    // The child dies with its supervisor (SIGTERM: it checkpoints and exits), even one killed by SIGKILL. The
    // signal follows the thread that forked, so a supervisor lives on the thread that created it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);  // the supervisor died before prctl took effect
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (log_fd >= 0) {
      ::dup2(stdin_fd, STDIN_FILENO);
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);  // as a shell reports a program it cannot run
  }
  const int fork_errno = errno;
  if (stdin_fd >= 0) ::close(stdin_fd);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) throw std::runtime_error("cannot start " + argv_strings[0] + ": " + std::strerror(fork_errno));
  children_.push_back({next_id_, pid, Clock::now()});
  return next_id_++;
}

void Supervisor::forward_pending_signals() {
  const unsigned pending = g_pending.exchange(0);
  if (pending & bit_of(SIGINT)) signal_all(SIGINT);
  if (pending & bit_of(SIGTERM)) signal_all(SIGTERM);
}

std::optional<ChildExit> Supervisor::wait_any(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    forward_pending_signals();
    // Only our own children are reaped: others of this process (a test's, a library's) are not ours to wait.
    for (auto it = children_.begin(); it != children_.end(); ++it) {
      int status = 0;
      if (::waitpid(it->pid, &status, WNOHANG) == it->pid) {
        const ChildExit exit{it->id, exit_code_of(status),
                             std::chrono::duration<double>(Clock::now() - it->start).count()};
        children_.erase(it);
        return exit;
      }
    }
    if (children_.empty() || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Supervisor::signal_all(int signal_number) {
  for (const Child& child : children_) ::kill(child.pid, signal_number);
}

bool Supervisor::stop_requested() const { return g_stop.load(); }

std::vector<int> Supervisor::running_ids() const {
  std::vector<int> ids;
  for (const Child& child : children_) ids.push_back(child.id);
  return ids;
}

}  // namespace pdeq::proc
