// Checkpoints: model, optimizer, training counters and RNG state in one file, written atomically. Every
// tensor is saved on the CPU and loaded onto the model's device, so a run checkpointed on a GPU continues on
// the CPU and back.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace pdeq::run {

/// Everything besides the model and optimizer that a resumed run needs to continue exactly.
struct TrainingState {
  int64_t epoch = 0;          ///< epochs completed
  int64_t step_in_epoch = 0;  ///< steps of epoch `epoch` already taken (mid-epoch interruption)
  int64_t global_step = 0;
  double best_val_accuracy = -1.0;
  int64_t best_epoch = 0;  ///< 1-based epoch of the best checkpoint, 0 = none yet
  double epoch_loss_sum = 0.0, epoch_correct = 0.0, epoch_samples = 0.0, epoch_seconds = 0.0;
  double wall_seconds = 0.0;  ///< training time accumulated over all sessions of the run
  int64_t world_size = 1;     ///< data-parallel ranks that trained the run (a resume must use as many)

  nlohmann::json to_json() const;
  static TrainingState from_json(const nlohmann::json& value);
};

/// Saves to `path` through a temporary file and a rename. `optimizer` may be null (best-model checkpoints).
/// The tensors are written as CPU tensors whatever the model's device (with a CUDA model, the state of that
/// GPU's generator is saved too, as "cuda_rng").
void save_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainingState& state);

/// The training counters of a checkpoint alone (no model needed).
TrainingState read_training_state(const std::filesystem::path& path);

/// Restores model (and optimizer when given) onto the device of the model's parameters, and the global CPU
/// generator (and, for a CUDA model from a CUDA checkpoint, that GPU's generator); returns the counters.
TrainingState load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer);

/// A serialized archive (torch::serialize::OutputArchive::save_to) written again with every tensor on the
/// CPU, values, dtypes and shapes unchanged: how save_checkpoint stores a model that is not on the CPU.
std::string archive_on_host(const std::string& bytes);

/// The device of `module`'s first parameter (or buffer); the CPU for a module without tensors.
torch::Device device_of(const torch::nn::Module& module);

}  // namespace pdeq::run
