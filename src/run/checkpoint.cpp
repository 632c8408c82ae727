#include <pdeq/run/checkpoint.h>

#include <pdeq/run/run_dir.h>

#include <ATen/Context.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
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

std::string archive_on_host(const std::string& bytes) {
  // The archive is a TorchScript module of attributes: loading it with a map location moves every tensor
  // (model, optimizer state, RNG states) without knowing the archive's layout; saving writes it back.
  std::istringstream in(bytes);
  const torch::jit::Module module = torch::jit::load(in, torch::Device(torch::kCPU));
  std::ostringstream out;
  module.save(out);
  return out.str();
}

torch::Device device_of(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) {
    if (b.defined()) return b.device();
  }
  return torch::kCPU;
}

void save_checkpoint(const fs::path& path, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                     const TrainingState& state) {
  const torch::Device device = device_of(model);
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
  // GPU dropout and augmentation draw from the device's own generator; an exact resume on it needs its state.
  if (device.is_cuda()) archive.write("cuda_rng", at::globalContext().defaultGenerator(device).get_state());

  // Serialised in memory, then written like every run file (temporary, fsync, rename, folder fsync): a kill
  // at any moment leaves the previous checkpoint or the new one, never a torn file under the final name. A
  // model off the CPU is written with CPU tensors, so that the file opens on any machine.
  std::ostringstream bytes;
  archive.save_to(bytes);
  atomic_write_file(path, device.is_cpu() ? bytes.str() : archive_on_host(bytes.str()));
}

TrainingState read_training_state(const fs::path& path) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint not found: " + path.string());
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string(), torch::Device(torch::kCPU));
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
  // Mapped onto the model's device as it is read: Module::load would otherwise give a GPU model the file's
  // CPU tensors (set_data across devices), and the optimizer state would stay on the CPU.
  const torch::Device device = device_of(model);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string(), device);
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
    generator.set_state(rng.to(torch::kCPU));
    // Only a CUDA checkpoint resumed on CUDA restores the GPU generator (another device has its own stream).
    c10::IValue cuda_rng;
    if (device.is_cuda() && archive.try_read("cuda_rng", cuda_rng)) {
      at::Generator cuda_generator = at::globalContext().defaultGenerator(device);
      cuda_generator.set_state(cuda_rng.toTensor().to(torch::kCPU));
    }
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
