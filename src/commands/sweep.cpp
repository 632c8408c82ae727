#include <pdeq/commands/sweep.h>

#include <pdeq/sweep/report.h>
#include <pdeq/sweep/runner.h>
#include <pdeq/sweep/spec.h>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pdeq::commands {

nlohmann::json SweepResult::to_json() const {
  return {{"out", out.string()},
          {"points", outcome.total},
          {"done", outcome.done},
          {"failed", outcome.failed},
          {"interrupted", outcome.interrupted}};
}

SweepResult sweep(const SweepOptions& options, const TrainCommandLine& child_command_line) {
  const sweep::SweepSpec spec = sweep::load_sweep(options.file.string());
  const std::vector<sweep::Point> points = sweep::expand_sweep(spec);
  sweep::RunnerOptions runner;
  runner.jobs = options.jobs;
  runner.cores = options.cores;
  runner.dry_run = options.dry_run;
  runner.command_line = [&](const sweep::PointLaunch& launch) {
    TrainOptions train;
    if (launch.config) {
      train.config = *launch.config;
      train.out = launch.run_dir;
    } else {
      train.resume = launch.run_dir;
    }
    return child_command_line(train);
  };
  const SweepResult result{sweep::run_sweep(points, options.out, runner), options.out};
  if (options.dry_run || result.outcome.done == 0) return result;

  std::vector<std::filesystem::path> dirs;
  sweep::ReportOptions report_options;
  for (const sweep::Point& point : points) {
    dirs.push_back(options.out / point.name);
    if (spec.search.trials == 0) continue;
    for (const auto& key : point.configuration_keys) {
      auto& keys = report_options.best_per;
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  const auto report = sweep::write_report(sweep::read_runs(dirs), options.out / "report", report_options);
  spdlog::info("sweep: report of {} row(s) -> {}", report["rows"].size(), (options.out / "report").string());
  return result;
}

}  // namespace pdeq::commands
