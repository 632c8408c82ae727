#include <pdeq/train/runtime.h>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <thread>

namespace pdeq::train {

int64_t configure_threads_and_seed(const config::TrainConfig& config) {
  const int64_t threads = config.threads > 0 ? config.threads
                                             : std::max<int64_t>(1, std::thread::hardware_concurrency());
  at::set_num_threads(static_cast<int>(threads));
  torch::manual_seed(config.seed);
  return at::get_num_threads();
}

torch::Device select_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cuda") {
    TORCH_CHECK_VALUE(torch::cuda::is_available(),
                      "device cuda was requested but this LibTorch build or machine has no CUDA; use cpu or auto");
    return torch::kCUDA;
  }
  TORCH_CHECK_VALUE(false, "device must be one of cpu, cuda, auto, but got '", name, "'");
}

}  // namespace pdeq::train
