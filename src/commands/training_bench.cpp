#include "training_bench.h"

#include <pdeq/experiment/from_config.h>
#include <pdeq/models/registry.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/train_step.h>

#include <torch/cuda.h>

#include <chrono>
#include <vector>

namespace pdeq::commands::detail {

BenchModel make_bench_model(const config::Config& config, const data::DatasetInfo& info,
                            torch::Device device) {
  BenchModel b{experiment::make_image_model(config, info), nullptr, experiment::compute_mode(config.train)};
  b.model->to(device);
  train::to_memory_format(*b.model, b.mode.memory_format);
  b.model->train();
  b.optimizer = train::make_optimizer(*b.model, experiment::optimizer_options(config.train));
  return b;
}

double time_steps(BenchModel& b, const torch::Tensor& images, const torch::Tensor& labels, int64_t steps,
                  distributed::ProcessGroup* group) {
  std::vector<torch::Tensor> parameters;
  train::GradientSync sync;
  if (group != nullptr) {
    parameters = b.model->parameters();
    sync = [&](const train::StepStats& local) {
      distributed::average_gradients(*group, parameters, static_cast<double>(local.samples),
                                     {local.loss_sum});
      return local;
    };
    group->barrier();
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    train::classifier_step(*b.model, *b.optimizer, images, labels, /*label_smoothing=*/0.0, b.mode, sync);
  }
  if (images.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace pdeq::commands::detail
