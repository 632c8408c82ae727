// The only translation unit that includes c10d: its Gloo headers need Debian's libgloo-dev (and the
// USE_C10D_GLOO that LibTorch's CMake target defines), its NCCL header a CUDA LibTorch built with NCCL (and
// USE_C10D_NCCL, which the build defines with PDEQ_WITH_NCCL); they stay out of pdeq's public headers.
#include <pdeq/distributed/process_group.h>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef PDEQ_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <ATen/ops/cat.h>

#include <signal.h>

#include <chrono>
#include <map>

namespace pdeq::distributed {
namespace {

using Clock = std::chrono::steady_clock;

/// Adds the wall time of its scope to `total`.
struct Timed {
  explicit Timed(double& total) : total(total) {}
  ~Timed() { total += std::chrono::duration<double>(Clock::now() - start).count(); }
  double& total;
  Clock::time_point start = Clock::now();
};

// Gloo and the TCP store write to sockets without MSG_NOSIGNAL, so a peer that dies mid-collective would kill
// this process with SIGPIPE instead of failing the collective with an error (Python ignores SIGPIPE from its
// start, which is why PyTorch never meets this). A handler the program installed itself is kept.
void ignore_sigpipe_unless_handled() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
    ::signal(SIGPIPE, SIG_IGN);
}

}  // namespace

bool nccl_built() {
#ifdef PDEQ_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string backend_for(torch::Device device) {
  if (device.is_cpu()) return "gloo";
  TORCH_CHECK_VALUE(device.is_cuda(), "data-parallel training runs on cpu (Gloo) or cuda (NCCL), not on ",
                    device.str());
  TORCH_CHECK_VALUE(nccl_built(), "data-parallel training on ", device.str(),
                    " needs c10d's NCCL backend, but this pdeq was built without it (PDEQ_WITH_NCCL: a "
                    "CUDA LibTorch with NCCL); train on one GPU, or data-parallel on cpu");
  return "nccl";
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  // One of the two is set. Both classes have the same collectives, but their common base differs between
  // LibTorch 1.13 (ProcessGroup) and 2.x (Backend), so each is kept as itself and `with` calls the one set.
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef PDEQ_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  template <typename Fn>
  void with(Fn&& fn) {
#ifdef PDEQ_WITH_NCCL
    if (nccl) return fn(*nccl);
#endif
    fn(*gloo);
  }

  // Gloo reports a dead peer as "Connection closed by peer" or a timeout; name the group so the message says
  // what failed.
  template <typename Fn>
  void run(const char* what, int64_t rank, int64_t world, Fn&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      throw std::runtime_error(c10::str("data-parallel ", what, " failed on rank ", rank, " of ", world,
                                        " (another rank died or stopped answering): ", e.what()));
    }
  }
};

ProcessGroup::ProcessGroup(ProcessGroupOptions options) : options_(std::move(options)) {
  TORCH_CHECK_VALUE(options_.world_size() >= 1, "world_size must be >= 1, but got ", options_.world_size());
  TORCH_CHECK_VALUE(options_.rank() >= 0 && options_.rank() < options_.world_size(), "rank must be in [0, ",
                    options_.world_size(), "), but got ", options_.rank());
  TORCH_CHECK_VALUE(options_.master_port() > 0 && options_.master_port() < 65536,
                    "master port must be in [1, 65535], but got ", options_.master_port());
  backend_ = backend_for(options_.device());
  ignore_sigpipe_unless_handled();
  impl_ = std::make_unique<Impl>();
  const int rank = static_cast<int>(options_.rank()), world = static_cast<int>(options_.world_size());
  try {
    if (!options_.file_store().empty()) {
      impl_->store = c10::make_intrusive<c10d::FileStore>(options_.file_store(), world);
      impl_->store->setTimeout(options_.timeout());
    } else {
      c10d::TCPStoreOptions store_options;
      store_options.port = static_cast<uint16_t>(options_.master_port());
      store_options.isServer = rank == 0;
      store_options.numWorkers = world;
      store_options.waitWorkers = true;
      store_options.timeout = options_.timeout();
      impl_->store = c10::make_intrusive<c10d::TCPStore>(options_.master_addr(), store_options);
    }
    // A prefix keeps Gloo's rendezvous keys apart from anything else a launcher keeps in the store.
    auto store = c10::make_intrusive<c10d::PrefixStore>("pdeq", impl_->store);
#ifdef PDEQ_WITH_NCCL
    if (backend_ == "nccl") {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = options_.timeout();
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, nccl_options);
      return;
    }
#endif
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(options_.timeout());
    // The interface that reaches the master (loopback on one machine) carries the traffic.
    gloo_options->devices.push_back(
        options_.file_store().empty()
            ? c10d::ProcessGroupGloo::createDeviceForHostname(options_.master_addr())
            : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo_options);
  } catch (const std::exception& e) {
    const std::string where = options_.file_store().empty()
                                  ? c10::str("tcp://", options_.master_addr(), ":", options_.master_port())
                                  : "file " + options_.file_store();
    throw std::runtime_error(c10::str("rank ", rank, " of ", world, " could not join the process group at ",
                                      where, " within ", options_.timeout().count(), " ms: ", e.what()));
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::allreduce_sum(torch::Tensor& tensor) {
  const Timed timed(comm_seconds_);
  impl_->run("allreduce", rank(), world_size(), [&] {
    std::vector<torch::Tensor> tensors{tensor};
    impl_->with([&](auto& group) { group.allreduce(tensors)->wait(); });
  });
}

void ProcessGroup::broadcast(torch::Tensor& tensor, int64_t root) {
  const Timed timed(comm_seconds_);
  impl_->run("broadcast", rank(), world_size(), [&] {
    std::vector<torch::Tensor> tensors{tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    impl_->with([&](auto& group) { group.broadcast(tensors, options)->wait(); });
  });
}

std::vector<double> ProcessGroup::sum(const std::vector<double>& values) {
  auto flat = torch::tensor(values, torch::kFloat64).to(options_.device());
  allreduce_sum(flat);
  const auto host = flat.to(torch::kCPU);
  const double* data = host.data_ptr<double>();
  return {data, data + host.numel()};
}

void ProcessGroup::barrier() {
  impl_->run("barrier", rank(), world_size(),
             [&] { impl_->with([](auto& group) { group.barrier()->wait(); }); });
}

void ProcessGroup::broadcast_module(torch::nn::Module& module) {
  if (world_size() == 1) return;
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_dtype;
  for (const auto& t : module.parameters()) by_dtype[t.scalar_type()].push_back(t);
  for (const auto& t : module.buffers()) {
    if (t.defined()) by_dtype[t.scalar_type()].push_back(t);
  }
  for (auto& [dtype, tensors] : by_dtype) {
    std::vector<torch::Tensor> flat_parts;
    flat_parts.reserve(tensors.size());
    for (const auto& t : tensors) flat_parts.push_back(t.reshape(-1));
    auto flat = at::cat(flat_parts);
    broadcast(flat, 0);
    int64_t offset = 0;
    for (auto& t : tensors) {
      t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

std::vector<double> average_gradients(ProcessGroup& group, const std::vector<torch::Tensor>& parameters,
                                      double weight, const std::vector<double>& sums) {
  torch::NoGradGuard no_grad;
  // Every trainable parameter has a slot, so the buffers of all ranks line up even when a rank has no
  // gradient for some of them (an empty batch: no backward pass at all); a flag per parameter says which
  // ranks had one.
  std::vector<torch::Tensor> trainable;
  int64_t numel = 0;
  for (const auto& p : parameters) {
    if (p.requires_grad()) {
      trainable.push_back(p);
      numel += p.numel();
    }
  }
  const auto count = static_cast<int64_t>(trainable.size());
  // [w·g_1 ... w·g_k, w, defined_1 ... defined_k, sums...] in the parameters' dtype (float64 sums exact).
  const auto dtype = trainable.empty() ? torch::kFloat32 : trainable.front().scalar_type();
  // On the parameters' device: the backend's (NCCL reduces CUDA tensors, Gloo CPU ones).
  const auto device = trainable.empty() ? group.options().device() : trainable.front().device();
  auto flat = torch::zeros({numel + 1 + count + static_cast<int64_t>(sums.size())},
                           torch::TensorOptions().dtype(dtype).device(device));
  // The tail [w, defined..., sums...] is assembled on the host and copied in once (not one indexing op per
  // parameter per step).
  std::vector<double> tail(static_cast<size_t>(1 + count), 0.0);
  tail[0] = weight;
  tail.insert(tail.end(), sums.begin(), sums.end());
  int64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto& g = trainable[static_cast<size_t>(i)].grad();
    const int64_t n = trainable[static_cast<size_t>(i)].numel();
    if (g.defined()) {
      flat.narrow(0, offset, n).copy_(g.reshape(-1)).mul_(weight);
      tail[static_cast<size_t>(1 + i)] = 1.0;
    }
    offset += n;
  }
  flat.narrow(0, numel, static_cast<int64_t>(tail.size())).copy_(torch::tensor(tail, torch::kFloat64));
  group.allreduce_sum(flat);
  const double total_weight = flat[numel].item<double>();
  const auto defined = flat.narrow(0, numel + 1, count).to(torch::kCPU, torch::kFloat64).contiguous();
  offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    auto& p = trainable[static_cast<size_t>(i)];
    const int64_t n = p.numel();
    // No rank with samples means nothing to average: the gradients stay as they are (the caller skips the
    // update when the summed sample count is 0).
    if (total_weight > 0 && defined.data_ptr<double>()[i] > 0) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(flat.narrow(0, offset, n).view_as(p)).div_(total_weight);
    }
    offset += n;
  }
  const auto reduced = flat.narrow(0, numel + 1 + count, static_cast<int64_t>(sums.size()))
                           .to(torch::kCPU, torch::kFloat64)
                           .contiguous();
  const double* data = reduced.data_ptr<double>();
  return {data, data + reduced.numel()};
}

}  // namespace pdeq::distributed
