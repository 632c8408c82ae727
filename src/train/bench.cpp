#include <pdeq/train/run.h>

#include <pdeq/data/datasets.h>
#include <pdeq/models/registry.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/from_config.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>
#include <pdeq/train/task_factory.h>
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

namespace pdeq::train {
namespace {

struct BenchModel {
  models::Classifier model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  ComputeMode mode;  ///< train.memory_format and train.precision of its config
};

BenchModel make_bench_model(const config::Config& config, const data::DatasetInfo& info,
                            torch::Device device) {
  BenchModel b{models::make_model(config.model.name, model_options(config, info)), nullptr,
               compute_mode(config.train)};
  b.model->to(device);
  to_memory_format(*b.model, b.mode.memory_format);
  b.model->train();
  b.optimizer = make_optimizer(*b.model, config.train);
  return b;
}

// Seconds for `steps` full training steps, the Trainer's own (classifier_step: layout, autocast, loss,
// backward, SGD update; data-parallel: with its gradient averaging, and all ranks starting together).
double time_steps(BenchModel& b, const torch::Tensor& images, const torch::Tensor& labels, int64_t steps,
                  dist::ProcessGroup* group = nullptr) {
  std::vector<torch::Tensor> parameters;
  GradientSync sync;
  if (group != nullptr) {
    parameters = b.model->parameters();
    sync = [&](const StepStats& local) {
      dist::average_gradients(*group, parameters, static_cast<double>(local.samples), {local.loss_sum});
      return local;
    };
    group->barrier();
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    classifier_step(*b.model, *b.optimizer, images, labels, /*label_smoothing=*/0.0, b.mode, sync);
  }
  if (images.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct BenchTask {
  std::unique_ptr<Task> task;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

BenchTask make_bench_task(const config::Config& config, torch::Device device) {
  BenchTask b{make_task(config, device), nullptr};
  b.optimizer = make_optimizer(b.task->module(), config.train);
  return b;
}

/// Seconds for `epochs` full-batch epochs: one training step and one validation pass each (as a run with
/// train.eval_every = 1, without its I/O).
double time_epochs(BenchTask& b, int64_t epochs) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < epochs; ++i) {
    b.task->begin_epoch(i, 0);
    b.task->train_step(*b.optimizer);
    b.task->evaluate(EvalSplit::kVal);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Graph datasets: real data (a graph is small), epochs per second with evaluation every epoch.
nlohmann::json bench_graph(const config::Config& config, const BenchOptions& options, int64_t threads,
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
                           {"channels", config.model.channels},
                           {"layers", config.model.layers},
                           {"threads", threads},
                           {"device", device.str()},
                           {"weight_bits", config.quant.weight_bits},
                           {"act_bits", config.quant.act_bits},
                           {"epochs", options.steps},
                           {"rounds", options.rounds},
                           {"seconds_per_epoch", median(subject_seconds)},
                           {"seconds_per_epoch_rounds", subject_seconds},
                           {"seconds_per_1000_epochs", 1000 * median(subject_seconds)}};
  if (baseline) {
    result["float_seconds_per_epoch"] = median(baseline_seconds);
    result["float_seconds_per_epoch_rounds"] = baseline_seconds;
    result["ratio_to_float"] = median(baseline_seconds) / median(subject_seconds);
  }
  return result;
}

}  // namespace

nlohmann::json bench_train(const config::Config& config, const BenchOptions& options) {
  TORCH_CHECK_VALUE(options.steps >= 1, "bench steps must be >= 1, but got ", options.steps);
  TORCH_CHECK_VALUE(options.rounds >= 1, "bench rounds must be >= 1, but got ", options.rounds);
  validate_config(config);
  const int64_t threads = configure_threads_and_seed(config.train);
  if (is_graph_dataset(config.data.dataset)) {
    return bench_graph(config, options, threads, select_device(config.train.device));
  }
  const torch::Device device = select_device(config.train.device);
  const auto info = data::dataset_info(config.data);
  const int64_t batch = config.data.batch_size;  // global: each rank takes its share
  std::unique_ptr<dist::ProcessGroup> group;
  int64_t local_batch = batch;
  if (options.distributed && options.distributed->world_size() > 1) {
    validate_distributed(config, options.distributed->world_size());
    group = std::make_unique<dist::ProcessGroup>(*options.distributed);
    if (!group->is_main()) spdlog::set_level(spdlog::level::warn);
    const int64_t r = group->rank(), n = group->world_size();
    local_batch = batch * (r + 1) / n - batch * r / n;
    TORCH_CHECK_VALUE(local_batch >= 1, "data.batch_size ", batch, " is smaller than the ", n, " ranks");
  }
  const auto images = torch::randn({local_batch, info.channels, info.height, info.width}).to(device);
  const auto labels = torch::randint(info.num_classes, {local_batch}, torch::kLong).to(device);

  // The baseline's config: the same (or --baseline-set's) model in full precision.
  config::Config float_config = config;
  if (options.baseline && !options.baseline_overrides.empty()) {
    // The baseline may be another model (float resnet20 next to a symmetric one), validated like --set.
    auto document = config::to_json(config);
    for (const auto& assignment : options.baseline_overrides)
      config::apply_override(document, assignment, "--baseline-set");
    float_config = config::parse_config(document, "--baseline-set");
    validate_config(float_config);
  }
  float_config.quant.weight_bits = float_config.quant.act_bits = quant::kFullPrecisionBits;
  const std::string baseline_name = float_config.model.name + (float_config.model.stable ? " (stable)" : "");

  struct Rates {
    std::vector<double> subject, baseline, comm_per_step;
  };
  // Model and baseline in one memory format and precision, alternating `rounds` times: alternation spreads
  // machine noise evenly over both figures.
  const auto measure = [&](const std::string& memory_format, const std::string& precision) {
    const auto in_mode = [&](config::Config c) {
      c.train.memory_format = memory_format;
      c.train.precision = precision;
      return c;
    };
    BenchModel subject = make_bench_model(in_mode(config), info, device);
    if (group != nullptr) group->broadcast_module(*subject.model);
    std::optional<BenchModel> baseline;
    if (options.baseline) {
      baseline = make_bench_model(in_mode(float_config), info, device);
      if (group != nullptr) group->broadcast_module(*baseline->model);
    }
    time_steps(subject, images, labels, options.warmup, group.get());
    if (baseline) time_steps(*baseline, images, labels, options.warmup, group.get());
    Rates rates;
    for (int64_t round = 0; round < options.rounds; ++round) {
      const double comm_before = group != nullptr ? group->communication_seconds() : 0.0;
      rates.subject.push_back(batch * options.steps /
                              time_steps(subject, images, labels, options.steps, group.get()));
      if (group != nullptr)
        rates.comm_per_step.push_back((group->communication_seconds() - comm_before) / options.steps);
      if (baseline)
        rates.baseline.push_back(batch * options.steps /
                                 time_steps(*baseline, images, labels, options.steps, group.get()));
    }
    return rates;
  };

  Rates configured;
  nlohmann::json modes = nlohmann::json::array();
  if (options.all_modes) {
    for (const char* precision : {"fp32", "bf16"}) {
      for (const char* memory_format : {"contiguous", "channels_last"}) {
        const Rates rates = measure(memory_format, precision);
        nlohmann::json row = {{"memory_format", memory_format},
                              {"precision", precision},
                              {"images_per_second", median(rates.subject)},
                              {"images_per_second_rounds", rates.subject}};
        if (options.baseline) {
          row["float_images_per_second"] = median(rates.baseline);
          row["float_images_per_second_rounds"] = rates.baseline;
          row["ratio_to_float"] = median(rates.subject) / median(rates.baseline);
        }
        spdlog::info("{:>13} {}: {:.1f} img/s{}", memory_format, precision, median(rates.subject),
                     options.baseline
                         ? fmt::format(", float {:.1f} img/s (ratio {:.3f})", median(rates.baseline),
                                       median(rates.subject) / median(rates.baseline))
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
                           {"transpose", config.model.transpose},
                           {"dataset", config.data.dataset},
                           {"batch", batch},
                           {"threads", threads},
                           {"device", device.str()},
                           {"weight_bits", config.quant.weight_bits},
                           {"act_bits", config.quant.act_bits},
                           {"memory_format", config.train.memory_format},
                           {"precision", config.train.precision},
                           {"steps", options.steps},
                           {"rounds", options.rounds},
                           {"images_per_second", median(subject_rates)},
                           {"images_per_second_rounds", subject_rates}};
  if (group != nullptr) {
    // Wall time inside the allreduce (barrier waits excluded): transfer plus waiting for the slower rank.
    result["world_size"] = group->world_size();
    result["batch_per_rank"] = local_batch;
    result["communication_seconds_per_step"] = median(comm_per_step);
    result["communication_seconds_per_step_rounds"] = comm_per_step;
  }
  if (options.all_modes) result["modes"] = std::move(modes);
  if (options.baseline) {
    result["float_model"] = baseline_name;
    result["float_images_per_second"] = median(baseline_rates);
    result["float_images_per_second_rounds"] = baseline_rates;
    result["ratio_to_float"] = median(subject_rates) / median(baseline_rates);
  }
  return result;
}

nlohmann::json bench_data(const config::Config& config, const DataBenchOptions& options) {
  TORCH_CHECK_VALUE(options.batches >= 1, "bench batches must be >= 1, but got ", options.batches);
  TORCH_CHECK_VALUE(options.train_steps >= 0, "bench train steps must be >= 0, but got ",
                    options.train_steps);
  validate_config(config);
  TORCH_CHECK_VALUE(!is_graph_dataset(config.data.dataset), "bench data needs an image dataset, but got ",
                    config.data.dataset);
  const int64_t threads = configure_threads_and_seed(config.train);
  const torch::Device device = select_device(config.train.device);
  ImageClassificationTask task(config, device);
  data::BatchLoader& loader = task.train_loader();
  const int64_t per_epoch = loader.batches_per_epoch();

  // The loader alone: batches consumed as fast as they come, across epochs when one is too short.
  int64_t images = 0, epoch = 0, in_epoch = 0;
  loader.start_epoch(epoch);
  const auto next = [&] {
    if (in_epoch == per_epoch) {
      loader.start_epoch(++epoch);
      in_epoch = 0;
    }
    ++in_epoch;
    return loader.next().value();
  };
  next();  // warm-up: threads started, first files touched
  const auto start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < options.batches; ++b) images += next().labels.size(0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const auto& info = task.data().info;
  nlohmann::json result = {{"dataset", config.data.dataset},
                           {"batch", config.data.batch_size},
                           {"batches", options.batches},
                           {"images", images},
                           {"seconds", seconds},
                           {"images_per_second", images / seconds},
                           {"image_size", info.height},
                           {"prefetch", config.data.prefetch},
                           {"memory_format", config.train.memory_format},
                           {"precision", config.train.precision},
                           {"threads", threads}};
  if (config.data.dataset == "image_folder") {
    result["workers"] = config.data.workers > 0 ? config.data.workers
                                                : static_cast<int64_t>(std::thread::hardware_concurrency());
    result["resize"] = config.data.resize;
    result["random_resized_crop"] = config.data.random_resized_crop;
  }
  if (options.train_steps == 0) return result;

  // End to end (loader + step, as Trainer runs them) against the same model on one synthetic batch.
  BenchModel synthetic{task.model(), make_optimizer(task.module(), config.train), task.compute_mode()};
  const int64_t batch = config.data.batch_size;
  const auto sample_images = torch::randn({batch, info.channels, info.height, info.width}).to(device);
  const auto sample_labels = torch::randint(info.num_classes, {batch}, torch::kLong).to(device);
  time_steps(synthetic, sample_images, sample_labels, 2);  // warm-up
  const double synthetic_seconds = time_steps(synthetic, sample_images, sample_labels, options.train_steps);
  int64_t trained = 0;
  const auto train_start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < options.train_steps; ++step) {
    if (step % per_epoch == 0) task.begin_epoch(step / per_epoch, 0);
    trained += task.train_step(*synthetic.optimizer).samples;
  }
  if (device.is_cuda()) torch::cuda::synchronize();
  const double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
  result["model"] = config.model.name;
  result["train_steps"] = options.train_steps;
  result["end_to_end_images_per_second"] = trained / train_seconds;
  result["synthetic_images_per_second"] = batch * options.train_steps / synthetic_seconds;
  result["end_to_end_fraction"] = result["end_to_end_images_per_second"].get<double>() /
                                  result["synthetic_images_per_second"].get<double>();
  return result;
}

}  // namespace pdeq::train
