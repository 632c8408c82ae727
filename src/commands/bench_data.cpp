#include <pdeq/commands/bench_data.h>

#include "training_bench.h"

#include <pdeq/config/config.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>

#include <torch/cuda.h>

#include <chrono>
#include <thread>

namespace pdeq::commands {

BenchDataResult bench_data(const BenchDataOptions& options) {
  const config::Config config = config::load_config(options.config.string(), options.overrides);
  TORCH_CHECK_VALUE(options.batches >= 1, "bench batches must be >= 1, but got ", options.batches);
  TORCH_CHECK_VALUE(options.train_steps >= 0, "bench train steps must be >= 0, but got ",
                    options.train_steps);
  experiment::validate_config(config);
  TORCH_CHECK_VALUE(!experiment::is_graph_dataset(config.data.dataset),
                    "bench data needs an image dataset, but got ", config.data.dataset);
  const int64_t threads = train::configure_threads_and_seed(config.train.threads, config.train.seed);
  const torch::Device device = experiment::run_device(config);
  const auto task_ptr = experiment::make_image_task(config, device);
  train::ImageClassificationTask& task = *task_ptr;
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
                           {"memory_format", config::to_string(config.train.memory_format)},
                           {"precision", config::to_string(config.train.precision)},
                           {"threads", threads}};
  if (config.data.dataset == "image_folder") {
    result["workers"] = config.data.workers > 0 ? config.data.workers
                                                : static_cast<int64_t>(std::thread::hardware_concurrency());
    result["resize"] = config.data.resize;
    result["random_resized_crop"] = config.data.random_resized_crop;
  }
  if (options.train_steps == 0) return {result};

  // End to end (loader + step, as Trainer runs them) against the same model on one synthetic batch.
  detail::BenchModel synthetic{
      task.model(), train::make_optimizer(task.module(), experiment::optimizer_options(config.train)),
      task.compute_mode()};
  const int64_t batch = config.data.batch_size;
  const auto sample_images = torch::randn({batch, info.channels, info.height, info.width}).to(device);
  const auto sample_labels = torch::randint(info.num_classes, {batch}, torch::kLong).to(device);
  detail::time_steps(synthetic, sample_images, sample_labels, 2);  // warm-up
  const double synthetic_seconds =
      detail::time_steps(synthetic, sample_images, sample_labels, options.train_steps);
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
  return {result};
}

}  // namespace pdeq::commands
