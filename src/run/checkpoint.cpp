#include <pdeq/run/checkpoint.h>

#include <pdeq/run/run_dir.h>

#include <ATen/Context.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <sstream>
#include <string>

namespace pdeq::run {
namespace fs = std::filesystem;

nlohmann::json TrainingState::to_json() const {
  return {{"epoch", epoch},
          {"step_in_epoch", step_in_epoch},
          {"global_step", global_step},
          {"best_val_accuracy", best_val_accuracy},
          {"best_epoch", best_epoch},
          {"epoch_loss_sum", epoch_loss_sum},
          {"epoch_correct", epoch_correct},
          {"epoch_samples", epoch_samples},
          {"epoch_seconds", epoch_seconds},
          {"wall_seconds", wall_seconds},
          {"world_size", world_size}};
}

TrainingState TrainingState::from_json(const nlohmann::json& value) {
  TrainingState s;
  s.epoch = value.at("epoch").get<int64_t>();
  s.step_in_epoch = value.at("step_in_epoch").get<int64_t>();
  s.global_step = value.at("global_step").get<int64_t>();
  s.best_val_accuracy = value.at("best_val_accuracy").get<double>();
  s.best_epoch = value.at("best_epoch").get<int64_t>();
  s.epoch_loss_sum = value.at("epoch_loss_sum").get<double>();
  s.epoch_correct = value.at("epoch_correct").get<double>();
  s.epoch_samples = value.at("epoch_samples").get<double>();
  s.epoch_seconds = value.at("epoch_seconds").get<double>();
  s.wall_seconds = value.at("wall_seconds").get<double>();
  s.world_size = value.value("world_size", int64_t{1});  // checkpoints from before data parallelism: 1
  return s;
}

void save_checkpoint(const fs::path& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                     const TrainingState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("state", c10::IValue(state.to_json().dump()));
  archive.write("cpu_rng", at::detail::getDefaultCPUGenerator().get_state());

  // Serialised in memory, then written like every run file (temporary, fsync, rename, folder fsync): a kill
  // at any moment leaves the previous checkpoint or the new one, never a torn file under the final name.
  std::ostringstream bytes;
  archive.save_to(bytes);
  atomic_write_file(path, bytes.str());
}

TrainingState read_training_state(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint not found: " + path.string());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    c10::IValue state;
    archive.read("state", state);
    return TrainingState::from_json(nlohmann::json::parse(state.toStringRef()));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read the training state of checkpoint " + path.string() + ": " +
                             e.what());
  }
}

TrainingState load_checkpoint(const fs::path& path, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint not found: " + path.string());
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string());
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read checkpoint " + path.string() + ": " + e.what_without_backtrace());
  }
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model.load(model_archive);
    if (optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      archive.read("optimizer", optimizer_archive);
      optimizer->load(optimizer_archive);
    }
    c10::IValue state;
    archive.read("state", state);
    torch::Tensor rng;
    archive.read("cpu_rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
    generator.set_state(rng);
    return TrainingState::from_json(nlohmann::json::parse(state.toStringRef()));
  } catch (const c10::Error& e) {
    throw std::runtime_error("checkpoint " + path.string() +
                             " does not match this model/config: " + e.what_without_backtrace());
  } catch (const nlohmann::json::exception& e) {
    // Written by save_checkpoint as a JSON object of numbers; anything else is a damaged or foreign file.
    throw std::runtime_error("checkpoint " + path.string() + ": training state is not readable: " + e.what());
  }
}

}  // namespace pdeq::run
