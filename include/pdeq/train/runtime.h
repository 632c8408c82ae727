// Process-wide LibTorch settings a run depends on: threads, seed, device.
#pragma once

#include <pdeq/config/config.h>

#include <torch/types.h>

namespace pdeq::train {

/// Tunes the allocator for training (see runtime.cpp), sets LibTorch's intra-op threads (Debian's build
/// defaults to one; 0 means all cores) and seeds the global generator. Returns the threads in force.
int64_t configure_threads_and_seed(const config::TrainConfig& config);

/// cpu | cuda | auto (cuda when available). Asking for cuda on a build or machine without it is an error.
torch::Device select_device(const std::string& name);

}  // namespace pdeq::train
