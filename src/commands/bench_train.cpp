#include <pdeq/commands/bench_train.h>

#include "training_bench.h"

#include <pdeq/analysis/statistics.h>
#include <pdeq/distributed/launch.h>

#include <pdeq/data/datasets.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/registry.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>
#include <pdeq/train/train_step.h>

#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pdeq::commands {
namespace {

struct BenchTask {
  std::unique_ptr<train::Task> task;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

BenchTask make_bench_task(const config::Config& config, torch::Device device) {
  BenchTask b{experiment::make_task(config, device), nullptr};
  b.optimizer = train::make_optimizer(b.task->module(), experiment::optimizer_options(config.train));
  return b;
}

/// Seconds for `epochs` full-batch epochs: one training step and one validation pass each (as a run with
/// train.eval_every = 1, without its I/O).
double time_epochs(BenchTask& b, int64_t epochs) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < epochs; ++i) {
    b.task->begin_epoch(i, 0);
    b.task->train_step(*b.optimizer);
    b.task->evaluate(train::EvalSplit::kVal);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Graph datasets: real data (a graph is small), epochs per second with evaluation every epoch.
nlohmann::json bench_graph(const config::Config& config, const BenchTrainOptions& options, int64_t threads,
                           torch::Device device) {
  BenchTask subject = make_bench_task(config, device);
  std::optional<BenchTask> baseline;
  if (options.baseline) {
    config::Config float_config = config;
    float_config.quant.weight_bits = float_config.quant.act_bits = quant::kFullPrecisionBits;
    baseline = make_bench_task(float_config, device);
  }
  time_epochs(subject, options.warmup);
  if (baseline) time_epochs(*baseline, options.warmup);
  std::vector<double> subject_seconds, baseline_seconds;
  for (int64_t round = 0; round < options.rounds; ++round) {
    subject_seconds.push_back(time_epochs(subject, options.steps) / options.steps);
    if (baseline) baseline_seconds.push_back(time_epochs(*baseline, options.steps) / options.steps);
  }
  nlohmann::json result = {{"model", config.model.name},
                           {"dataset", config.data.dataset},
                           {"channels", config.model.graph.channels},
                           {"layers", config.model.graph.layers},
                           {"threads", threads},
                           {"device", device.str()},
                           {"weight_bits", config.quant.weight_bits},
                           {"act_bits", config.quant.act_bits},
                           {"epochs", options.steps},
                           {"rounds", options.rounds},
                           {"seconds_per_epoch", analysis::median_of(subject_seconds)},
                           {"seconds_per_epoch_rounds", subject_seconds},
                           {"seconds_per_1000_epochs", 1000 * analysis::median_of(subject_seconds)}};
  if (baseline) {
    result["float_seconds_per_epoch"] = analysis::median_of(baseline_seconds);
    result["float_seconds_per_epoch_rounds"] = baseline_seconds;
    result["ratio_to_float"] = analysis::median_of(baseline_seconds) / analysis::median_of(subject_seconds);
  }
  return result;
}

/// This process's figures (null on ranks other than 0).
nlohmann::json bench_in_process(const config::Config& config, const BenchTrainOptions& options) {
  TORCH_CHECK_VALUE(options.steps >= 1, "bench steps must be >= 1, but got ", options.steps);
  TORCH_CHECK_VALUE(options.rounds >= 1, "bench rounds must be >= 1, but got ", options.rounds);
  experiment::validate_config(config);
  const int64_t threads = train::configure_threads_and_seed(config.train.threads, config.train.seed);
  if (experiment::is_graph_dataset(config.data.dataset)) {
    return bench_graph(config, options, threads, experiment::run_device(config));
  }
  auto process_group = options.distributed.process_group();
  const torch::Device device = experiment::run_device(
      config, "", process_group && process_group->world_size() > 1 ? &*process_group : nullptr);
  if (process_group) process_group->device(device);  // the backend follows the device (Gloo, NCCL)
  const auto info = experiment::dataset_info(config.data);
  const int64_t batch = config.data.batch_size;  // global: each rank takes its share
  std::unique_ptr<distributed::ProcessGroup> group;
  int64_t local_batch = batch;
  if (process_group && process_group->world_size() > 1) {
    experiment::validate_distributed(config, process_group->world_size());
    group = std::make_unique<distributed::ProcessGroup>(*process_group);
    if (!group->is_main()) spdlog::set_level(spdlog::level::warn);
    const int64_t r = group->rank(), n = group->world_size();
    local_batch = batch * (r + 1) / n - batch * r / n;
    TORCH_CHECK_VALUE(local_batch >= 1, "data.batch_size ", batch, " is smaller than the ", n, " ranks");
  }
  const auto images = torch::randn({local_batch, info.channels, info.height, info.width}).to(device);
  // Segmentation: a label per pixel (random classes, none ignored).
  const auto labels =
      (experiment::is_segmentation_dataset(config.data.dataset)
           ? torch::randint(info.num_classes, {local_batch, info.height, info.width}, torch::kLong)
           : torch::randint(info.num_classes, {local_batch}, torch::kLong))
          .to(device);

  // The baseline's config: the same (or --baseline-set's) model in full precision.
  config::Config float_config = config;
  if (options.baseline && !options.baseline_overrides.empty()) {
    // The baseline may be another model (float resnet20 next to a symmetric one), validated like --set.
    auto document = config::to_json(config);
    for (const auto& assignment : options.baseline_overrides)
      config::apply_override(document, assignment, "--baseline-set");
    float_config = config::parse_config(document, "--baseline-set");
    experiment::validate_config(float_config);
  }
  float_config.quant.weight_bits = float_config.quant.act_bits = quant::kFullPrecisionBits;
  const std::string baseline_name = float_config.model.name + (float_config.model.stable ? " (stable)" : "");

  struct Rates {
    std::vector<double> subject, baseline, comm_per_step;
  };
  // Model and baseline in one memory format and precision, alternating `rounds` times: alternation spreads
  // machine noise evenly over both figures.
  const auto measure = [&](config::MemoryFormat memory_format, config::Precision precision) {
    const auto in_mode = [&](config::Config c) {
      c.train.memory_format = memory_format;
      c.train.precision = precision;
      return c;
    };
    detail::BenchModel subject = detail::make_bench_model(in_mode(config), info, device);
    if (group != nullptr) group->broadcast_module(*subject.model);
    std::optional<detail::BenchModel> baseline;
    if (options.baseline) {
      baseline = detail::make_bench_model(in_mode(float_config), info, device);
      if (group != nullptr) group->broadcast_module(*baseline->model);
    }
    detail::time_steps(subject, images, labels, options.warmup, group.get());
    if (baseline) detail::time_steps(*baseline, images, labels, options.warmup, group.get());
    Rates rates;
    for (int64_t round = 0; round < options.rounds; ++round) {
      const double comm_before = group != nullptr ? group->communication_seconds() : 0.0;
      rates.subject.push_back(batch * options.steps /
                              detail::time_steps(subject, images, labels, options.steps, group.get()));
      if (group != nullptr)
        rates.comm_per_step.push_back((group->communication_seconds() - comm_before) / options.steps);
      if (baseline)
        rates.baseline.push_back(batch * options.steps /
                                 detail::time_steps(*baseline, images, labels, options.steps, group.get()));
    }
    return rates;
  };

  Rates configured;
  nlohmann::json modes = nlohmann::json::array();
  if (options.all_modes) {
    for (const auto precision : {config::Precision::kFp32, config::Precision::kBf16}) {
      for (const auto memory_format :
           {config::MemoryFormat::kContiguous, config::MemoryFormat::kChannelsLast}) {
        const Rates rates = measure(memory_format, precision);
        nlohmann::json row = {{"memory_format", config::to_string(memory_format)},
                              {"precision", config::to_string(precision)},
                              {"images_per_second", analysis::median_of(rates.subject)},
                              {"images_per_second_rounds", rates.subject}};
        if (options.baseline) {
          row["float_images_per_second"] = analysis::median_of(rates.baseline);
          row["float_images_per_second_rounds"] = rates.baseline;
          row["ratio_to_float"] = analysis::median_of(rates.subject) / analysis::median_of(rates.baseline);
        }
        spdlog::info(
            "{:>13} {}: {:.1f} img/s{}", config::to_string(memory_format), config::to_string(precision),
            analysis::median_of(rates.subject),
            options.baseline
                ? fmt::format(", float {:.1f} img/s (ratio {:.3f})", analysis::median_of(rates.baseline),
                              analysis::median_of(rates.subject) / analysis::median_of(rates.baseline))
                : std::string());
        modes.push_back(std::move(row));
        if (memory_format == config.train.memory_format && precision == config.train.precision)
          configured = rates;
      }
    }
  } else {
    configured = measure(config.train.memory_format, config.train.precision);
  }
  const auto& subject_rates = configured.subject;
  const auto& baseline_rates = configured.baseline;
  const auto& comm_per_step = configured.comm_per_step;
  if (group != nullptr && !group->is_main()) return nullptr;
  nlohmann::json result = {{"model", config.model.name},
                           {"stable", config.model.stable},
                           {"transpose", config::to_string(config.model.transpose)},
                           {"dataset", config.data.dataset},
                           {"batch", batch},
                           {"threads", threads},
                           {"device", device.str()},
                           {"weight_bits", config.quant.weight_bits},
                           {"act_bits", config.quant.act_bits},
                           {"memory_format", config::to_string(config.train.memory_format)},
                           {"precision", config::to_string(config.train.precision)},
                           {"steps", options.steps},
                           {"rounds", options.rounds},
                           {"images_per_second", analysis::median_of(subject_rates)},
                           {"images_per_second_rounds", subject_rates}};
  if (group != nullptr) {
    // Wall time inside the allreduce (barrier waits excluded): transfer plus waiting for the slower rank.
    result["world_size"] = group->world_size();
    result["batch_per_rank"] = local_batch;
    result["communication_seconds_per_step"] = analysis::median_of(comm_per_step);
    result["communication_seconds_per_step_rounds"] = comm_per_step;
  }
  if (options.all_modes) result["modes"] = std::move(modes);
  if (options.baseline) {
    result["float_model"] = baseline_name;
    result["float_images_per_second"] = analysis::median_of(baseline_rates);
    result["float_images_per_second_rounds"] = baseline_rates;
    result["ratio_to_float"] = analysis::median_of(subject_rates) / analysis::median_of(baseline_rates);
  }
  return result;
}

}  // namespace

BenchTrainResult bench_train(const BenchTrainOptions& options,
                             const BenchTrainCommandLine& child_command_line) {
  const config::Config config = config::load_config(options.config.string(), options.overrides);
  if (options.distributed.nproc > 1) {
    experiment::validate_config(config);
    experiment::validate_distributed(config, options.distributed.nproc);
    TORCH_CHECK(static_cast<bool>(child_command_line), "bench train --nproc needs a child command line");
    const int code =
        distributed::launch_local(options.distributed.nproc, [&](const distributed::RankAddress& a) {
          BenchTrainOptions rank = options;
          rank.distributed = {1, a.rank, a.world_size, a.master, options.distributed.timeout_seconds};
          return child_command_line(rank);
        });
    return {nullptr, code};
  }
  return {bench_in_process(config, options), 0};
}

}  // namespace pdeq::commands
