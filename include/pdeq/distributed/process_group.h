// Data-parallel training over PyTorch's c10d (compiled into LibTorch): one process group per process, Gloo
// for CPU tensors and NCCL for CUDA tensors (when pdeq is built with NCCL), rendezvous through a TCPStore
// served by rank 0 or a FileStore. pdeq adds no transport of its own; this is
// the handful of collectives the Trainer needs, each one c10d call.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pdeq::distributed {

struct ProcessGroupOptions {
  ProcessGroupOptions(int64_t rank, int64_t world_size) : rank_(rank), world_size_(world_size) {}
  TORCH_ARG(int64_t, rank);
  TORCH_ARG(int64_t, world_size);
  /// TCPStore rendezvous: rank 0 listens on master_port; every rank (rank 0 too) connects to master_addr.
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  TORCH_ARG(int64_t, master_port) = 29500;
  /// Non-empty: rendezvous through this file instead (every rank must see it: one machine or a shared FS).
  TORCH_ARG(std::string, file_store) = "";
  /// The rendezvous and every collective fail after this long instead of waiting forever for a dead rank
  /// (a peer whose process ended is usually detected at once, as a closed connection).
  TORCH_ARG(std::chrono::milliseconds, timeout) = std::chrono::seconds(120);
  /// Where the tensors of the collectives live: the CPU (Gloo) or a CUDA GPU (NCCL; each rank its own GPU).
  TORCH_ARG(torch::Device, device) = torch::kCPU;
};

/// The c10d backend for tensors on `device`: "gloo" on the CPU, "nccl" on CUDA. Throws c10::ValueError for a
/// device whose backend this build lacks (NCCL needs a pdeq built with PDEQ_WITH_NCCL) or any other device.
std::string backend_for(torch::Device device);

/// Whether this pdeq was built with c10d's NCCL backend.
bool nccl_built();

/// One rank's membership of the process group: construct it on every rank (it blocks until all ranks have
/// joined or `timeout` passed), then call the same collectives in the same order on every rank.
///
/// Example (2 ranks, the same code on both):
///   pdeq::distributed::ProcessGroup group(ProcessGroupOptions(rank, 2).master_port(29512));
///   group.broadcast_module(*model);                       // identical start
///   ... loss.backward(); average_gradients(group, model->parameters(), n, {loss_sum}); optimizer.step();
class ProcessGroup {
 public:
  explicit ProcessGroup(ProcessGroupOptions options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const { return options_.rank(); }
  int64_t world_size() const { return options_.world_size(); }
  bool is_main() const { return options_.rank() == 0; }
  const ProcessGroupOptions& options() const { return options_; }

  /// In place, one c10d call each: `tensor` summed over the ranks / replaced by rank `root`'s.
  void allreduce_sum(torch::Tensor& tensor);
  void broadcast(torch::Tensor& tensor, int64_t root = 0);
  /// "gloo" or "nccl" (backend_for(options().device())).
  const std::string& backend() const { return backend_; }

  /// `values` summed over the ranks (float64, one allreduce).
  std::vector<double> sum(const std::vector<double>& values);
  void barrier();

  /// Copies every parameter and buffer of `module` from rank 0 to the other ranks: one broadcast of a flat
  /// buffer per dtype. Every rank must hold the same architecture.
  void broadcast_module(torch::nn::Module& module);

  /// Wall seconds spent inside allreduce and broadcast since construction (transfer plus waiting for slower
  /// ranks; barriers are not counted).
  double communication_seconds() const { return comm_seconds_; }

 private:
  struct Impl;
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
  double comm_seconds_ = 0.0;
  std::string backend_;
};

/// Data-parallel gradient averaging in one allreduce of one flat buffer: sets the gradient of every trainable
/// parameter that has one on some rank to Σ_r w_r g_r / Σ_r w_r over the ranks r (w_r = `weight`, this rank's
/// sample count, so ranks with unequal shares of a batch still give the gradient of the mean loss over the
/// whole batch; a rank without a gradient, e.g. one whose batch was empty, counts as g_r = 0 and takes the
/// average too), and returns `sums` summed over the ranks; they ride in the same buffer (step statistics, a
/// stop flag). When the weights sum to 0 the gradients are left alone.
std::vector<double> average_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                                      double weight, const std::vector<double>& sums);

}  // namespace pdeq::distributed
