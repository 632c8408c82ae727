#include <pdeq/run/stop_signal.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace pdeq::run {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int signal_number) {
  if (g_stop.exchange(true)) _exit(128 + signal_number);
  static const char message[] = "\npdeq: stopping after this step (again to abort)\n";
  [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
}

void install(struct sigaction* previous_int, struct sigaction* previous_term) {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, previous_int);
  sigaction(SIGTERM, &action, previous_term);
}

// Scopes may be opened from several threads (runs in parallel); the depth and the saved handlers are shared.
std::mutex g_scope_mutex;
int g_scope_depth = 0;
struct sigaction g_previous_int {};
struct sigaction g_previous_term {};

}  // namespace

StopSignalScope::StopSignalScope() {
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  if (g_scope_depth++ == 0) install(&g_previous_int, &g_previous_term);
}

StopSignalScope::~StopSignalScope() {
  std::lock_guard<std::mutex> lock(g_scope_mutex);
  if (--g_scope_depth == 0) {
    sigaction(SIGINT, &g_previous_int, nullptr);
    sigaction(SIGTERM, &g_previous_term, nullptr);
    g_stop.store(false);
  }
}

void install_stop_handlers() { install(nullptr, nullptr); }

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void request_stop() { g_stop.store(true); }
void clear_stop_request() { g_stop.store(false); }

}  // namespace pdeq::run
