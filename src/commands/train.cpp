#include <pdeq/commands/train.h>

#include <pdeq/config/config.h>
#include <pdeq/distributed/launch.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>

#include <chrono>
#include <stdexcept>

namespace pdeq::commands {

std::optional<distributed::ProcessGroupOptions> DistributedOptions::process_group() const {
  if (!rank) return std::nullopt;
  if (*rank >= world_size) {
    throw config::ConfigError("--rank: must be < --world-size (" + std::to_string(world_size) + "), got " +
                              std::to_string(*rank));
  }
  std::pair<std::string, int> address;
  try {
    address = distributed::parse_master(master);
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(std::string("--master: ") + e.what());
  }
  return distributed::ProcessGroupOptions(*rank, world_size)
      .master_addr(address.first)
      .master_port(address.second)
      .timeout(std::chrono::seconds(timeout_seconds));
}

namespace {

void check_usage(const TrainOptions& options) {
  if (options.config.empty() == options.resume.empty())
    throw config::ConfigError("train: give either --config (with --out) or --resume");
  if (!options.config.empty() && options.out.empty())
    throw config::ConfigError("train: --config needs --out");
  if (!options.resume.empty() && !options.overrides.empty())
    throw config::ConfigError("--set cannot change a resumed run");
  if (!options.resume.empty() && options.seeds > 0)
    throw config::ConfigError("--seeds cannot change a resumed run");
}

/// A new run's overrides: --set, then --device as train.device (recorded in its config.json).
std::vector<std::string> new_run_overrides(const TrainOptions& options) {
  std::vector<std::string> overrides = options.overrides;
  if (!options.device.empty()) overrides.push_back("train.device=" + options.device);
  return overrides;
}

/// `--nproc N`: what every rank would refuse is refused once, here, before any rank starts; then the ranks.
TrainResult launch_ranks(const TrainOptions& options, const TrainCommandLine& child_command_line) {
  const int nproc = options.distributed.nproc;
  if (options.resume.empty()) {
    auto config = config::load_config(options.config.string(), new_run_overrides(options));
    if (options.seeds > 0) config.train.seeds = options.seeds;
    experiment::validate_config(config);
    experiment::validate_distributed(config, nproc);
    // A device this machine lacks, or one whose collective backend this build lacks (NCCL), is refused
    // once here rather than by every rank.
    distributed::backend_for(experiment::run_device(config));
  } else {
    distributed::backend_for(
        experiment::run_device(experiment::check_resumable(options.resume, nproc), options.device));
  }
  if (!child_command_line) throw std::invalid_argument("train --nproc needs a child command line");
  TrainResult result;
  result.exit_code = distributed::launch_local(nproc, [&](const distributed::RankAddress& a) {
    TrainOptions rank = options;
    rank.distributed = {1, a.rank, a.world_size, a.master, options.distributed.timeout_seconds};
    return child_command_line(rank);
  });
  result.finished = result.exit_code == 0;
  result.interrupted = result.exit_code == 130;
  return result;
}

}  // namespace

TrainResult train(const TrainOptions& options, const TrainCommandLine& child_command_line) {
  check_usage(options);
  if (options.distributed.nproc > 1) return launch_ranks(options, child_command_line);
  const experiment::RunOptions run_options{options.force, options.max_steps, options.seeds,
                                           options.distributed.process_group(), options.device};
  const train::FitResult fit =
      options.resume.empty()
          ? experiment::train_run(config::load_config(options.config.string(), new_run_overrides(options)),
                                  options.out, run_options)
          : experiment::resume_run(options.resume, run_options);
  TrainResult result;
  result.finished = fit.finished;
  result.interrupted = fit.interrupted;
  result.summary = fit.summary;
  result.exit_code = fit.interrupted ? 130 : 0;
  return result;
}

}  // namespace pdeq::commands
