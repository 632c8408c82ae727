#include <pdeq/run/progress.h>

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <cstdio>

namespace pdeq::run {

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                  static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return buffer;
}

bool ProgressReporter::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressReporter::ProgressReporter(std::string label, int64_t total, int64_t log_every, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      log_every_(std::max<int64_t>(1, log_every)),
      terminal_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressReporter::update(int64_t done, int64_t items, const std::string& metrics) {
  // A process that logs warnings only (data-parallel ranks other than 0) draws no progress either.
  if (!spdlog::should_log(spdlog::level::info)) return;
  const auto now = std::chrono::steady_clock::now();
  if (start_done_ < 0) start_done_ = done - 1;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double steps_per_second = elapsed > 0 ? static_cast<double>(done - start_done_) / elapsed : 0.0;
  const double rate = elapsed > 0 ? static_cast<double>(items) / elapsed : 0.0;
  const double eta = steps_per_second > 0 ? static_cast<double>(total_ - done) / steps_per_second : 0.0;
  if (terminal_) {
    // Redrawing more than ~10 times a second only costs time.
    if (done != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s %.0f %s/s ETA %s", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), metrics.c_str(), rate,
                 unit_.c_str(), format_duration(eta).c_str());
    std::fflush(stderr);
  } else if (done % log_every_ == 0 || done == total_) {
    spdlog::info("{} step {}/{} {} {:.0f} {}/s ETA {}", label_, done, total_, metrics, rate, unit_,
                 format_duration(eta));
  }
}

void ProgressReporter::finish() {
  if (terminal_ && spdlog::should_log(spdlog::level::info)) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
}

}  // namespace pdeq::run
