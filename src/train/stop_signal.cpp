#include <pdeq/train/stop_signal.h>

#include <unistd.h>
#include <atomic>
#include <csignal>

namespace pdeq::train {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int signal_number) {
  if (g_stop.exchange(true)) _exit(128 + signal_number);
  static const char message[] = "\npdeq: stopping after this step (again to abort)\n";
  [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void request_stop() { g_stop.store(true); }
void clear_stop_request() { g_stop.store(false); }

}  // namespace pdeq::train
