#include <pdeq/train/runtime.h>

#include "denormals.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <cstdlib>
#include <limits>
#include <string>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#if defined(__unix__)
#include <dlfcn.h>
#endif

namespace pdeq::train {

namespace {

// glibc serves each allocation above a (dynamic) threshold with a fresh mmap and returns freed heap tops to
// the kernel, so every training step page-faults its activations in again: measured here, that halves the
// throughput of ResNet-20 on CPU. Keeping freed memory in the process removes the faults.
void keep_freed_memory_in_process() {
#ifdef __GLIBC__
  static const bool done = [] {
    if (mallopt(M_MMAP_THRESHOLD, 1 << 30) == 0) mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    mallopt(M_TOP_PAD, 64 << 20);
    return true;
  }();
  (void)done;
#endif
}

// Debian's LibTorch multiplies small matrices with OpenBLAS (the pthreads build), whose own pool is sized to
// the machine, not to at::set_num_threads: with one LibTorch thread, OpenBLAS's idle workers spun in
// sched_yield and cost a quarter of every PDE-GCN epoch (0.131 -> 0.099 s on Cora). Looked up at run time,
// since the BLAS is whatever libblas.so.3 the system's alternatives point at.
void size_blas_pool(int threads) {
#if defined(__unix__)
  using SetThreads = void (*)(int);
  if (auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
#else
  (void)threads;
#endif
}

}  // namespace

int64_t configure_threads_and_seed(int64_t requested_threads, uint64_t seed) {
  keep_freed_memory_in_process();
  const int64_t threads =
      requested_threads > 0 ? requested_threads : std::max<int64_t>(1, std::thread::hardware_concurrency());
  at::set_num_threads(static_cast<int>(threads));
  size_blas_pool(static_cast<int>(threads));
  // Quantized nets produce tiny gradients, and x86 arithmetic on denormal floats is up to 100x slower.
  detail::flush_denormals_on_all_threads(at::get_num_threads());
  torch::manual_seed(seed);
  return at::get_num_threads();
}

torch::Device select_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  const bool cuda = torch::cuda::is_available();
  if (name == "auto") return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  const bool cuda_name = name == "cuda" || (name.rfind("cuda:", 0) == 0 && name.size() > 5 &&
                                            name.find_first_not_of("0123456789", 5) == std::string::npos);
  TORCH_CHECK_VALUE(cuda_name, "device must be auto, cpu, cuda or cuda:N, but got '", name, "'");
  TORCH_CHECK_VALUE(cuda, "device ", name,
                    " was requested, but this LibTorch build has no CUDA or this machine no CUDA GPU "
                    "(use cpu or auto)");
  // An explicit index: the same GPU whatever the current device is (CUDA_VISIBLE_DEVICES still applies).
  const int64_t index = name == "cuda" ? 0 : std::stoll(name.substr(5));
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  TORCH_CHECK_VALUE(index < count, "device ", name, " was requested, but this machine has ", count,
                    " CUDA GPU(s) (cuda:0 to cuda:", count - 1, ")");
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
}

bool prefer_avx512_kernels() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (std::getenv("ATEN_CPU_CAPABILITY") != nullptr) return false;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl") ||
      !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq")) {
    return false;
  }
  return setenv("ATEN_CPU_CAPABILITY", "avx512", /*overwrite=*/0) == 0;
#else
  return false;
#endif
}

}  // namespace pdeq::train
