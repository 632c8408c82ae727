#include <pdeq/experiment/run.h>

#include <pdeq/analysis/statistics.h>

#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/key_use.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/run_lock.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <memory>
#include <optional>

namespace pdeq::experiment {
namespace fs = std::filesystem;

namespace {

bool data_parallel(const RunOptions& options) {
  return options.distributed && options.distributed->world_size() > 1;
}

torch::Device process_device(const config::Config& config, const RunOptions& options) {
  return run_device(config, options.device, data_parallel(options) ? &*options.distributed : nullptr);
}

/// Joins the data-parallel process group of `options`, if any, with the backend of `device` (Gloo on the
/// CPU, NCCL on CUDA); ranks other than 0 then log warnings only.
std::unique_ptr<distributed::ProcessGroup> join_group(const RunOptions& options, torch::Device device) {
  if (!data_parallel(options)) return nullptr;
  auto group_options = *options.distributed;
  group_options.device(device);
  auto group = std::make_unique<distributed::ProcessGroup>(group_options);
  if (!group->is_main()) spdlog::set_level(spdlog::level::warn);
  spdlog::info("rank {} of {} joined ({} on {})", group->rank(), group->world_size(), group->backend(),
               device.str());
  return group;
}

/// A run's task with the process settings it was made under: threads, seed, device, this rank's shard. Made
/// before the run folder is, so that what only the data can refuse (split sizes) leaves nothing behind.
struct PreparedTask {
  int64_t threads = 0;
  torch::Device device = torch::kCPU;
  std::unique_ptr<train::Task> task;
};

PreparedTask prepare_task(const config::Config& config, distributed::ProcessGroup* group,
                          const RunOptions& options) {
  PreparedTask prepared;
  prepared.device = group != nullptr ? group->options().device() : process_device(config, options);
  prepared.threads = train::configure_threads_and_seed(config.train.threads, config.train.seed);
  spdlog::info("{} threads, device {}", prepared.threads, prepared.device.str());
  const data::Shard shard =
      group != nullptr ? data::Shard{group->rank(), group->world_size()} : data::Shard{};
  prepared.task = make_task(config, prepared.device, shard);
  return prepared;
}

train::FitResult fit(const config::Config& config, PreparedTask prepared, const run::RunDirectory& run,
                     bool resume, const RunOptions& options, distributed::ProcessGroup* group) {
  train::Task& task = *prepared.task;
  auto optimizer = train::make_optimizer(task.module(), optimizer_options(config.train));
  auto trainer_opts = trainer_options(config);
  trainer_opts.max_steps = options.max_steps;
  train::Trainer trainer(task, *optimizer, run, trainer_opts, group);
  const nlohmann::json extra = {{"model", config.model.name},
                                {"dataset", config.data.dataset},
                                {"seed", config.train.seed},
                                {"threads", prepared.threads},
                                {"device", prepared.device.str()}};
  return trainer.fit(resume, extra);
}

train::FitResult fit_one(const config::Config& config, const run::RunDirectory& run, bool resume,
                         const RunOptions& options, distributed::ProcessGroup* group = nullptr) {
  return fit(config, prepare_task(config, group, options), run, resume, options, group);
}

/// Whether this process writes the run folder: a single process, or rank 0 of a data-parallel run.
bool writes_run_folder(const RunOptions& options) {
  return !options.distributed || options.distributed->rank() == 0;
}

/// The config of seed i of a multi-seed run: one seed, train.seed + i.
config::Config seed_config(const config::Config& config, int64_t i) {
  config::Config one = config;
  one.train.seeds = 1;
  one.train.seed = config.train.seed + static_cast<uint64_t>(i);
  return one;
}

fs::path seed_dir(const fs::path& root, int64_t i) { return root / ("seed" + std::to_string(i)); }

using analysis::mean_of;
using analysis::std_of;

/// Runs (or continues) every seed of a multi-seed run in <root>/seed<i>, then writes the aggregate summary.
train::FitResult fit_seeds(const config::Config& config, const run::RunDirectory& root,
                           const RunOptions& options) {
  std::vector<nlohmann::json> summaries;
  std::vector<double> test, val, seconds;
  for (int64_t i = 0; i < config.train.seeds; ++i) {
    const config::Config one = seed_config(config, i);
    const fs::path dir = seed_dir(root.root(), i);
    run::RunDirectory run(dir);
    train::FitResult result;
    if (fs::exists(run.summary_path())) {
      result = {true, run.read_json(run.summary_path())};
    } else if (fs::exists(run.config_path()) && run.has_checkpoint()) {
      spdlog::info("seed {}/{}: resuming {}", i + 1, config.train.seeds, dir.string());
      result = fit_one(read_run_config(run), run, /*resume=*/true, options);
    } else {
      spdlog::info("seed {}/{} (train.seed {}): {}", i + 1, config.train.seeds, one.train.seed, dir.string());
      run = run::RunDirectory::create(dir, /*force=*/true);
      run.write_json(run.config_path(), config::to_json(one));
      result = fit_one(one, run, /*resume=*/false, options);
    }
    if (!result.finished) return result;
    summaries.push_back(result.summary);
    test.push_back(result.summary.at("test_accuracy").get<double>());
    if (result.summary.at("best_val_accuracy").is_number()) {
      val.push_back(result.summary.at("best_val_accuracy").get<double>());
    }
    seconds.push_back(result.summary.at("wall_seconds").get<double>());
  }
  nlohmann::json summary = {
      {"seeds", config.train.seeds},
      {"first_seed", config.train.seed},
      {"model", config.model.name},
      {"dataset", config.data.dataset},
      {"test_accuracy", mean_of(test)},
      {"test_accuracy_std", std_of(test)},
      {"test_accuracies", test},
      {"best_val_accuracy", val.empty() ? nlohmann::json() : nlohmann::json(mean_of(val))},
      {"best_val_accuracy_std", val.empty() ? nlohmann::json() : nlohmann::json(std_of(val))},
      {"wall_seconds_per_run", mean_of(seconds)},
      {"runs", summaries},
  };
  root.write_json(root.summary_path(), summary);
  spdlog::info("{} seeds: test accuracy {:.2f} +- {:.2f}% -> {}", config.train.seeds, 100 * mean_of(test),
               100 * std_of(test), root.summary_path().string());
  return {true, summary};
}

}  // namespace

train::FitResult train_run(const config::Config& config_in, const fs::path& out, const RunOptions& options) {
  config::Config config = config_in;
  if (options.seeds > 0) config.train.seeds = options.seeds;
  // Every check that can fail on the config runs before the run folder exists.
  validate_config(config);
  const int64_t world_size = options.distributed ? options.distributed->world_size() : 1;
  validate_distributed(config, world_size);
  if (writes_run_folder(options)) {
    run::RunDirectory::check_creatable(out, options.force);
    for (const std::string& warning : keys_waiting_for_a_switch(config)) spdlog::warn("{}", warning);
  }
  const auto group = join_group(options, process_device(config, options));
  // One run: its data is read and its model built before the folder exists. Multi-seed runs read theirs per
  // seed, in the seed folders.
  PreparedTask prepared;
  if (config.train.seeds == 1) prepared = prepare_task(config, group.get(), options);
  std::optional<run::RunLock> lock;
  run::RunDirectory run(out);
  if (writes_run_folder(options)) {
    lock.emplace(out);
    run = run::RunDirectory::create(out, options.force);
    run.write_json(run.config_path(), config::to_json(config));
  }
  if (group != nullptr) {
    // The other ranks start once the folder is there; if rank 0 failed to make it, they fail here.
    group->barrier();
    return fit(config, std::move(prepared), run, /*resume=*/false, options, group.get());
  }
  if (config.train.seeds > 1) {
    if (options.force) {
      for (int64_t i = 0; i < config.train.seeds; ++i) fs::remove_all(seed_dir(out, i));
    }
    return fit_seeds(config, run, options);
  }
  return fit(config, std::move(prepared), run, /*resume=*/false, options, nullptr);
}

config::Config check_resumable(const fs::path& run_dir, int64_t world_size) {
  run::RunDirectory run = run::RunDirectory::open(run_dir);
  if (run.finished()) {
    throw std::runtime_error("run " + run_dir.string() + " is already finished (see " +
                             run.summary_path().string() + ")");
  }
  const config::Config config = read_run_config(run);
  validate_distributed(config, world_size);
  if (config.train.seeds > 1 || !run.has_checkpoint()) return config;
  const int64_t trained_by = run::read_training_state(run.last_checkpoint()).world_size;
  if (trained_by != world_size) {
    throw config::ConfigError(
        run.last_checkpoint().string() + ": written by a run of " + std::to_string(trained_by) +
        " data-parallel process(es), cannot continue with " + std::to_string(world_size) +
        " (each rank's batches, and so the exact continuation, depend on it); resume with " +
        (trained_by == 1 ? std::string("no --nproc")
                         : "--nproc " + std::to_string(trained_by) + " (or --world-size " +
                               std::to_string(trained_by) + ")"));
  }
  return config;
}

train::FitResult resume_run(const fs::path& run_dir, const RunOptions& options) {
  std::optional<run::RunLock> lock;
  if (writes_run_folder(options)) lock.emplace(run::RunDirectory::open(run_dir).root());
  const config::Config config =
      check_resumable(run_dir, options.distributed ? options.distributed->world_size() : 1);
  run::RunDirectory run = run::RunDirectory::open(run_dir);
  if (config.train.seeds > 1) return fit_seeds(config, run, options);
  const auto group = join_group(options, process_device(config, options));
  return fit_one(config, run, /*resume=*/run.has_checkpoint(), options, group.get());
}

}  // namespace pdeq::experiment
