#include <pdeq/distributed/launch.h>

#include <pdeq/proc/supervisor.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace pdeq::distributed {

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

int launch_local(int nproc, const RankCommandLine& command_line, int grace_seconds) {
  if (nproc < 1) throw std::invalid_argument("--nproc must be >= 1, but got " + std::to_string(nproc));
  const std::string master = "127.0.0.1:" + std::to_string(free_loopback_port());
  spdlog::info("starting {} ranks, rendezvous on {}", nproc, master);

  using Clock = std::chrono::steady_clock;
  proc::Supervisor supervisor;
  for (int r = 0; r < nproc; ++r) supervisor.start(command_line({r, nproc, master}));  // child id == rank

  int result = 0;
  bool failed = false;
  std::optional<Clock::time_point> kill_at;
  while (supervisor.running() > 0) {
    if (kill_at && Clock::now() >= *kill_at) {
      for (const int r : supervisor.running_ids())
        spdlog::error("rank {} did not stop within {} s; killing it", r, grace_seconds);
      supervisor.signal_all(SIGKILL);
      kill_at.reset();
    }
    const auto exit = supervisor.wait_any(std::chrono::milliseconds(200));
    if (!exit || exit->exit_code == 0 || failed) continue;
    failed = true;
    result = exit->exit_code;
    // 130: the rank was interrupted and checkpointed; the others stop at the same step on their own, and a
    // second signal would abort them mid-checkpoint. Any other failure: tell the others to stop.
    if (exit->exit_code != 130) {
      spdlog::error("rank {} exited with code {}; stopping the other ranks", exit->id, exit->exit_code);
      supervisor.signal_all(SIGTERM);
    }
    kill_at = Clock::now() + std::chrono::seconds(grace_seconds);
  }
  return result;
}

}  // namespace pdeq::distributed
