// The task a config describes, built in one place for training, resuming, evaluation and analyses.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/train/task.h>

#include <torch/types.h>

#include <memory>

namespace pdeq::train {

/// Reads the configured data and builds the configured model on `device` (image classification for the
/// image datasets). Data and model errors throw before anything is trained.
std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device);

}  // namespace pdeq::train
