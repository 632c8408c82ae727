#include <pdeq/dist/launch.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace pdeq::dist {
namespace {

// Signals that arrived at the launcher, to be forwarded once to every rank by the waiting loop.
std::atomic<int> g_forward{0};

void on_signal(int signal_number) { g_forward.store(signal_number); }

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port on 127.0.0.1: " + reason);
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::pair<std::string, int> parse_master(const std::string& master) {
  const auto colon = master.rfind(':');
  const std::string expected = "expected ADDR:PORT (e.g. 10.0.0.1:29500) with a port in [1, 65535], got '";
  if (colon == std::string::npos || colon == 0 || colon + 1 == master.size())
    throw std::invalid_argument(expected + master + "'");
  const std::string port_text = master.substr(colon + 1);
  if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5)
    throw std::invalid_argument(expected + master + "'");
  const int port = std::stoi(port_text);
  if (port < 1 || port > 65535) throw std::invalid_argument(expected + master + "'");
  return {master.substr(0, colon), port};
}

std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name) {
  const std::string flag = "--" + name;
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag) {
      ++i;  // and its value
    } else if (args[i].rfind(flag + "=", 0) != 0) {
      out.push_back(args[i]);
    }
  }
  return out;
}

int launch_local(const std::filesystem::path& executable, const std::vector<std::string>& args, int nproc,
                 int grace_seconds) {
  if (nproc < 1) throw std::invalid_argument("--nproc must be >= 1, but got " + std::to_string(nproc));
  const int port = free_loopback_port();
  spdlog::info("starting {} ranks, rendezvous on 127.0.0.1:{}", nproc, port);

  // Everything exec needs is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<std::vector<std::string>> rank_args(static_cast<size_t>(nproc));
  std::vector<std::vector<char*>> rank_argv(static_cast<size_t>(nproc));
  for (int r = 0; r < nproc; ++r) {
    auto& a = rank_args[static_cast<size_t>(r)];
    a.push_back(executable.string());
    a.insert(a.end(), args.begin(), args.end());
    for (const std::string& s :
         {std::string("--rank"), std::to_string(r), std::string("--world-size"), std::to_string(nproc),
          std::string("--master"), "127.0.0.1:" + std::to_string(port)}) {
      a.push_back(s);
    }
    for (auto& s : a) rank_argv[static_cast<size_t>(r)].push_back(s.data());
    rank_argv[static_cast<size_t>(r)].push_back(nullptr);
  }

  struct sigaction action {
  }, previous_int{}, previous_term{};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  g_forward.store(0);
  sigaction(SIGINT, &action, &previous_int);
  sigaction(SIGTERM, &action, &previous_term);

  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (const pid_t p : pids) ::kill(p, SIGKILL);
      throw std::runtime_error(std::string("cannot start a rank: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::setpgid(0, 0);  // out of the terminal's foreground group: Ctrl-C reaches the launcher only
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::execv(rank_argv[static_cast<size_t>(r)][0], rank_argv[static_cast<size_t>(r)].data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }

  using Clock = std::chrono::steady_clock;
  std::vector<bool> alive(pids.size(), true);
  int running = nproc, result = 0, failed_rank = -1;
  std::optional<Clock::time_point> kill_at;
  while (running > 0) {
    if (const int s = g_forward.exchange(0); s != 0) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (alive[r]) ::kill(pids[r], s);
    }
    if (kill_at && Clock::now() >= *kill_at) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (alive[r]) {
          spdlog::error("rank {} did not stop within {} s; killing it", r, grace_seconds);
          ::kill(pids[r], SIGKILL);
        }
      }
      kill_at.reset();
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    size_t r = 0;
    while (r < pids.size() && pids[r] != pid) ++r;
    if (r == pids.size()) continue;
    alive[r] = false;
    --running;
    const int code = exit_code_of(status);
    if (code != 0 && failed_rank < 0) {
      failed_rank = static_cast<int>(r);
      result = code;
      // 130: the rank was interrupted and checkpointed; the others stop at the same step on their own, and a
      // second signal would abort them mid-checkpoint. Any other failure: tell the others to stop.
      if (code != 130) {
        spdlog::error("rank {} exited with code {}; stopping the other ranks", r, code);
        for (size_t o = 0; o < pids.size(); ++o)
          if (alive[o]) ::kill(pids[o], SIGTERM);
      }
      kill_at = Clock::now() + std::chrono::seconds(grace_seconds);
    }
  }
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  return result;
}

}  // namespace pdeq::dist
