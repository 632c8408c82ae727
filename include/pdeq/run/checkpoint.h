// Checkpoints: model, optimizer, training counters and RNG state in one file, written atomically.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include <filesystem>

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
void save_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainingState& state);

/// The training counters of a checkpoint alone (no model needed).
TrainingState read_training_state(const std::filesystem::path& path);

/// Restores model (and optimizer when given) and the global CPU generator; returns the counters.
TrainingState load_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer);

}  // namespace pdeq::run
