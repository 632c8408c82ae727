// What `bench train` and `bench data` share: a classifier with its optimizer, timed over training steps.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/distributed/process_group.h>
#include <pdeq/models/classifier.h>
#include <pdeq/train/compute_mode.h>

#include <torch/optim/optimizer.h>

#include <memory>

namespace pdeq::commands::detail {

struct BenchModel {
  models::Classifier model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  train::ComputeMode mode;  ///< train.memory_format and train.precision of its config
};

BenchModel make_bench_model(const config::Config& config, const data::DatasetInfo& info,
                            torch::Device device);

/// Seconds for `steps` full training steps, the Trainer's own (classifier_step: layout, autocast, loss,
/// backward, SGD update; data-parallel: with its gradient averaging, and all ranks starting together).
double time_steps(BenchModel& b, const torch::Tensor& images, const torch::Tensor& labels, int64_t steps,
                  distributed::ProcessGroup* group = nullptr);

}  // namespace pdeq::commands::detail
