#include <pdeq/run/crash_point.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

namespace pdeq::run {
namespace {

struct CrashSpec {
  std::string name;  // empty: disabled
  long count = 0;
};

CrashSpec read_spec() {
  const char* value = std::getenv("PDEQ_CRASH_AT");
  if (value == nullptr) return {};
  const std::string text(value);
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return {};
  char* end = nullptr;
  const long count = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (end == text.c_str() + colon + 1 || *end != '\0' || count < 1) return {};
  return {text.substr(0, colon), count};
}

}  // namespace

void crash_point(const char* name) {
  static const CrashSpec spec = read_spec();
  static std::atomic<long> hits{0};
  if (spec.name.empty() || spec.name != name) return;
  if (++hits == spec.count) ::kill(::getpid(), SIGKILL);
}

}  // namespace pdeq::run
