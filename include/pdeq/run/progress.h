// Progress of long loops: a one-line bar with rate and ETA on a terminal, periodic log lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pdeq::run {

class ProgressReporter {
 public:
  /// `label` prefixes each line ("epoch 3/200"); `total` steps; the rate is in `unit`s per second ("img",
  /// "node", ...). Bars go to stderr when it is a terminal; otherwise one log line every `log_every` steps.
  ProgressReporter(std::string label, int64_t total, int64_t log_every, std::string unit = "img");

  /// Call after each step with the step count done so far and items processed in this session.
  void update(int64_t done, int64_t items, const std::string& metrics);
  /// Clears the bar line.
  void finish();

  static bool stderr_is_terminal();

 private:
  std::string label_, unit_;
  int64_t total_, log_every_, start_done_ = -1;
  bool terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// "1:02:03" / "2:03".
std::string format_duration(double seconds);

}  // namespace pdeq::run
