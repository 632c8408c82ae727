// TEMPORARY timing harness (not a test); deleted after measuring.
#include <pdeq/quant/fake_quantize.h>
#include <torch/torch.h>
#include <gtest/gtest.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

namespace {
double median_ms(const std::function<void()>& f, int iters = 30) {
  for (int i = 0; i < 5; ++i) f();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    auto s = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
}  // namespace

TEST(DISABLED_Timing, QuantVsRelu) {
  torch::set_num_threads(2);
  torch::manual_seed(0);
  const auto x0 = torch::randn({128, 16, 32, 32}) * 3;
  const auto g = torch::randn({128, 16, 32, 32});
  auto x = x0.clone().requires_grad_();
  auto alpha = torch::tensor(6.0f).requires_grad_();
  namespace F = pdeq::quant::functional;
  const auto opt = pdeq::quant::FakeQuantizeFuncOptions().bits(4);
  const double relu_fb = median_ms([&] { x.mutable_grad().reset(); torch::relu(x).backward(g); });
  const double q_fb = median_ms([&] { x.mutable_grad().reset(); alpha.mutable_grad().reset(); F::fake_quantize(x, alpha, opt).backward(g); });
  torch::NoGradGuard ng;
  const double relu_f = median_ms([&] { torch::relu(x0); });
  const double q_f = median_ms([&] { F::fake_quantize(x0, alpha, opt); });
  std::printf("relu fwd %.3f ms, fwd+bwd %.3f ms\nquant fwd %.3f ms, fwd+bwd %.3f ms\nratio fwd+bwd %.2f\n", relu_f, relu_fb, q_f, q_fb, q_fb / relu_fb);
}
