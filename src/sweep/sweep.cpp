#include <pdeq/sweep/sweep.h>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pdeq::sweep {

SweepOutcome run_sweep_file(const std::string& sweep_file, const std::filesystem::path& out,
                            const RunnerOptions& options) {
  const SweepSpec spec = load_sweep(sweep_file);
  const std::vector<Point> points = expand_sweep(spec);
  SweepOutcome outcome = run_sweep(points, out, options);
  if (options.dry_run || outcome.done == 0) return outcome;

  std::vector<std::filesystem::path> dirs;
  ReportOptions report_options;
  for (const Point& point : points) {
    dirs.push_back(out / point.name);
    if (spec.search.trials == 0) continue;
    for (const auto& key : point.configuration_keys) {
      auto& keys = report_options.best_per;
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  const auto report = write_report(read_runs(dirs), out / "report", report_options);
  spdlog::info("sweep: report of {} row(s) -> {}", report["rows"].size(), (out / "report").string());
  return outcome;
}

}  // namespace pdeq::sweep
