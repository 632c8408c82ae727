// c10d through pdeq::dist: two ranks as two threads of this process on loopback (each its own
// ProcessGroupGloo, as two processes would have).
#include <pdeq/distributed/launch.h>
#include <pdeq/distributed/process_group.h>

#include <torch/nn/modules/linear.h>

#include <signal.h>

#include <functional>
#include <thread>

#include "test_support.h"

namespace pdeq {
namespace {

using distributed::ProcessGroup;
using distributed::ProcessGroupOptions;

/// Runs `body(group)` for ranks 0..world-1 concurrently, one thread each, and rethrows the first failure.
void run_ranks(int64_t world, const std::function<void(ProcessGroup&)>& body,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const int port = distributed::free_loopback_port();
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        ProcessGroup group(ProcessGroupOptions(r, world).master_port(port).timeout(timeout));
        body(group);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

struct ProcessGroupTest : test::SeedingFixture {};

TEST_F(ProcessGroupTest, TheBackendFollowsTheDevice) {
  EXPECT_EQ(distributed::backend_for(torch::kCPU), "gloo");
  if (distributed::nccl_built()) {
    EXPECT_EQ(distributed::backend_for(torch::Device(torch::kCUDA, 0)), "nccl");
  } else {
    PDEQ_ASSERT_THROWS_WITH(distributed::backend_for(torch::Device(torch::kCUDA, 0)), "PDEQ_WITH_NCCL");
  }
  PDEQ_ASSERT_THROWS_WITH(distributed::backend_for(torch::Device(torch::kMeta)), "cpu (Gloo) or cuda (NCCL)");
  // The default group is a CPU one. (The barrier keeps a rank from leaving while the other still connects.)
  run_ranks(2, [](ProcessGroup& group) {
    EXPECT_EQ(group.backend(), "gloo");
    group.barrier();
  });
}

TEST_F(ProcessGroupTest, BroadcastModuleGivesEveryRankRankZerosParametersAndBuffers) {
  std::vector<torch::Tensor> weights(2), counters(2);
  run_ranks(2, [&](ProcessGroup& group) {
    torch::nn::Linear linear(3, 2);
    torch::NoGradGuard no_grad;
    linear->weight.fill_(static_cast<float>(group.rank() + 1));  // rank 0: 1, rank 1: 2
    auto counter = linear->register_buffer("counter", torch::full({1}, 10 * group.rank(), torch::kInt64));
    group.broadcast_module(*linear);
    weights[static_cast<size_t>(group.rank())] = linear->weight.clone();
    counters[static_cast<size_t>(group.rank())] = counter.clone();
  });
  EXPECT_TRUE(torch::equal(weights[1], torch::ones({2, 3})));
  EXPECT_TRUE(torch::equal(counters[1], torch::zeros({1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(weights[0], weights[1]));
}

// The invariant data parallelism rests on: ranks holding unequal parts (4 + 2 rows) of a batch, each with its
// mean loss, end up with the gradient of the mean loss over the whole batch (float64, so exact to rounding).
TEST_F(ProcessGroupTest, AveragedGradientsEqualTheWholeBatchGradient) {
  const auto x = torch::randn({6, 5}, torch::kFloat64), y = torch::randn({6, 3}, torch::kFloat64);
  const auto w0 = torch::randn({3, 5}, torch::kFloat64);
  auto whole_w = w0.clone().requires_grad_();
  torch::mse_loss(torch::matmul(x, whole_w.t()), y).backward();
  const auto expected = whole_w.grad().clone();

  std::vector<torch::Tensor> grads(2);
  std::vector<std::vector<double>> sums(2);
  run_ranks(2, [&](ProcessGroup& group) {
    const int64_t lo = group.rank() == 0 ? 0 : 4, n = group.rank() == 0 ? 4 : 2;
    auto w = w0.clone().requires_grad_();
    torch::mse_loss(torch::matmul(x.narrow(0, lo, n), w.t()), y.narrow(0, lo, n)).backward();
    const auto r = static_cast<size_t>(group.rank());
    sums[r] = distributed::average_gradients(group, {w}, static_cast<double>(n), {1.0 + group.rank(), 0.5});
    grads[r] = w.grad().clone();
  });
  EXPECT_TRUE(torch::allclose(grads[0], expected, /*rtol=*/1e-12, /*atol=*/1e-14));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
  EXPECT_EQ(sums[0], (std::vector<double>{3.0, 1.0}));
  EXPECT_EQ(sums[1], sums[0]);
}

// A rank whose batch was empty (every image skipped) ran no backward pass: it still joins the allreduce with
// weight 0 and ends with the other rank's gradient; a parameter no rank has a gradient for keeps none.
TEST_F(ProcessGroupTest, ARankWithoutGradientsTakesTheAverageOfTheOthers) {
  const auto x = torch::randn({4, 5}, torch::kFloat64), y = torch::randn({4, 3}, torch::kFloat64);
  const auto w0 = torch::randn({3, 5}, torch::kFloat64);
  std::vector<torch::Tensor> grads(2), unused_grads(2);
  std::vector<std::vector<double>> sums(2);
  run_ranks(2, [&](ProcessGroup& group) {
    auto w = w0.clone().requires_grad_();
    auto unused = torch::zeros({2}, torch::kFloat64).requires_grad_();
    const bool has_batch = group.rank() == 0;
    if (has_batch) torch::mse_loss(torch::matmul(x, w.t()), y).backward();
    const auto r = static_cast<size_t>(group.rank());
    sums[r] =
        distributed::average_gradients(group, {w, unused}, has_batch ? 4.0 : 0.0, {has_batch ? 7.0 : 0.0});
    grads[r] = w.grad().defined() ? w.grad().clone() : torch::Tensor();
    unused_grads[r] = unused.grad();
  });
  auto expected = w0.clone().requires_grad_();
  torch::mse_loss(torch::matmul(x, expected.t()), y).backward();
  ASSERT_TRUE(grads[1].defined());
  EXPECT_TRUE(torch::allclose(grads[0], expected.grad(), /*rtol=*/1e-12, /*atol=*/1e-14));
  EXPECT_TRUE(torch::equal(grads[1], grads[0]));
  EXPECT_FALSE(unused_grads[0].defined());
  EXPECT_FALSE(unused_grads[1].defined());
  EXPECT_EQ(sums[0], std::vector<double>{7.0});
  EXPECT_EQ(sums[1], sums[0]);
}

TEST_F(ProcessGroupTest, ADeadRankIsAnErrorNamingTheFailedCollectiveNotAHang) {
  // Rank 1 leaves once both have joined (the barrier: leaving earlier can end rank 0's join instead, a
  // different error); rank 0's next allreduce fails (closed connection, at the latest after the 3 s timeout)
  // instead of waiting for ever.
  PDEQ_ASSERT_THROWS_WITH(run_ranks(
                              2,
                              [](ProcessGroup& group) {
                                group.barrier();
                                if (group.rank() == 1) return;
                                auto t = torch::ones({4});
                                group.allreduce_sum(t);
                              },
                              std::chrono::seconds(3)),
                          "data-parallel");
}

// Found by the sanitizer run (slower ranks): the dead-rank test above died of SIGPIPE, rank 0 writing to the
// closed socket, instead of failing with the error. Joining a group ignores SIGPIPE unless the program
// handles it.
TEST_F(ProcessGroupTest, JoiningIgnoresSigpipeButKeepsTheProgramsOwnHandler) {
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &saved), 0);
  const auto disposition = [] {
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    return now.sa_handler;
  };
  ::signal(SIGPIPE, SIG_DFL);
  run_ranks(1, [](ProcessGroup&) {});
  EXPECT_EQ(disposition(), SIG_IGN);

  using Handler = void (*)(int);
  const Handler own = [](int) {};
  ::signal(SIGPIPE, own);
  run_ranks(1, [](ProcessGroup&) {});
  EXPECT_EQ(disposition(), own);
  ::sigaction(SIGPIPE, &saved, nullptr);
}

}  // namespace
}  // namespace pdeq
