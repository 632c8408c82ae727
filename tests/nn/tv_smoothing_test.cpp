#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include "test_support.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <sstream>

namespace {

using pdeq::nn::tv_max_step;
using pdeq::nn::TVSmooth;
using pdeq::nn::TVSmoothFuncOptions;
using pdeq::nn::TVSmoothOptions;
using pdeq::nn::TVWeight;
using pdeq::nn::functional::tv_norm;
using pdeq::nn::functional::tv_smooth;

struct TVSmoothTest : pdeq::test::SeedingFixture {};

/// The step written out pixel by pixel in double, straight from the header's formula.
torch::Tensor naive_step(const torch::Tensor& x, const torch::Tensor& tau, double eps, TVWeight weight) {
  const auto a = x.accessor<double, 4>();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor fx = torch::zeros_like(x), fy = torch::zeros_like(x);
  auto ax = fx.accessor<double, 4>();
  auto ay = fy.accessor<double, 4>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const double gx = j + 1 < w ? a[b][k][i][j + 1] - a[b][k][i][j] : 0.0;
          const double gy = i + 1 < h ? a[b][k][i + 1][j] - a[b][k][i][j] : 0.0;
          const double s = gx * gx + gy * gy;
          const double phi =
              weight == TVWeight::kCharbonnier ? 1.0 / std::sqrt(s + eps) : 1.0 / (1.0 + s / eps);
          ax[b][k][i][j] = phi * gx;
          ay[b][k][i][j] = phi * gy;
        }
  torch::Tensor y = x.clone();
  auto ao = y.accessor<double, 4>();
  const auto t = tau.accessor<double, 1>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
          const double div = ax[b][k][i][j] - (j > 0 ? ax[b][k][i][j - 1] : 0.0) + ay[b][k][i][j] -
                             (i > 0 ? ay[b][k][i - 1][j] : 0.0);
          ao[b][k][i][j] += t[k] * div;
        }
  return y;
}

TEST_F(TVSmoothTest, MatchesThePixelFormula) {
  for (const auto weight : {TVWeight::kCharbonnier, TVWeight::kPeronaMalik}) {
    const auto x = torch::randn({2, 3, 5, 7}, torch::kFloat64);
    const auto tau = torch::tensor({0.01, 0.05, 0.07}, torch::kFloat64);
    const auto options = TVSmoothFuncOptions().iters(2).eps(0.1).weight(weight);
    const auto expected = naive_step(naive_step(x, tau, 0.1, weight), tau, 0.1, weight);
    EXPECT_TRUE(torch::allclose(tv_smooth(x, tau, options), expected, /*rtol=*/1e-12, /*atol=*/1e-12));
    // Float: the same kernel in single precision.
    EXPECT_TRUE(torch::allclose(tv_smooth(x.to(torch::kFloat), tau.to(torch::kFloat), options),
                                expected.to(torch::kFloat), /*rtol=*/1e-5, /*atol=*/1e-5));
    // bfloat16 takes the tensor-op path (what CUDA uses): same formula, bfloat16 rounding.
    const auto low = tv_smooth(x.to(torch::kBFloat16), tau.to(torch::kBFloat16), options);
    EXPECT_TRUE(torch::allclose(low.to(torch::kFloat64), expected, /*rtol=*/0.0, /*atol=*/0.1));
  }
}

TEST_F(TVSmoothTest, BatchedEqualsPerSample) {
  const auto x = torch::randn({3, 4, 9, 8});
  const auto tau = torch::full({4}, 0.05);
  const auto y = tv_smooth(x, tau, TVSmoothFuncOptions().iters(3));
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_TRUE(torch::equal(y[b], tv_smooth(x.narrow(0, b, 1), tau, TVSmoothFuncOptions().iters(3))[0]));
  }
}

TEST_F(TVSmoothTest, ConstantMapIsUnchanged) {
  const auto x = torch::arange(6, torch::kFloat).reshape({2, 3, 1, 1}).expand({2, 3, 6, 5}).contiguous();
  EXPECT_TRUE(torch::equal(tv_smooth(x, torch::full({3}, 0.07), TVSmoothFuncOptions().iters(5)), x));
}

TEST_F(TVSmoothTest, ZeroFluxPreservesEachChannelsMean) {
  const auto x = torch::randn({2, 3, 8, 8}, torch::kFloat64);
  const auto y = tv_smooth(x, torch::full({3}, 0.07, torch::kFloat64), TVSmoothFuncOptions().iters(4));
  EXPECT_TRUE(torch::allclose(y.sum({2, 3}), x.sum({2, 3}), /*rtol=*/0.0, /*atol=*/1e-12));
}

/// Contrast across a vertical step edge 0 | 1 in the middle of a 16x16 map after `iters` steps.
double edge_contrast(double tau, const TVSmoothFuncOptions& options) {
  auto x = torch::zeros({1, 1, 16, 16}, torch::kFloat64);
  x.narrow(3, 8, 8).fill_(1.0);
  const auto y = tv_smooth(x, torch::full({1}, tau, torch::kFloat64), options);
  return (y.select(3, 8) - y.select(3, 7)).mean().item<double>();
}

TEST_F(TVSmoothTest, StepEdgeStaysSharpUnlikeLinearDiffusion) {
  const auto tv = TVSmoothFuncOptions().iters(5).eps(0.01);
  // Linear diffusion of the same strength: Perona-Malik with a huge threshold has w = 1, and its largest
  // stable step 1/4 gives the same diffusivity tau*w as TV's largest step in flat regions.
  const auto linear = TVSmoothFuncOptions().iters(5).eps(1e12).weight(TVWeight::kPeronaMalik);
  const double tv_contrast = edge_contrast(tv_max_step(tv), tv);
  const double linear_contrast = edge_contrast(tv_max_step(linear), linear);
  EXPECT_GT(tv_contrast, 0.75);
  EXPECT_LT(linear_contrast, 0.35);
  EXPECT_LT(1.0 - tv_contrast, (1.0 - linear_contrast) / 2.5);
}

/// Two flat regions (0 and 2) split down the middle, with Gaussian noise of std `sigma`.
torch::Tensor noisy_regions(double sigma) {
  auto x = torch::zeros({1, 1, 32, 32}, torch::kFloat64);
  x.narrow(3, 16, 16).fill_(2.0);
  return x + sigma * torch::randn_like(x);
}

TEST_F(TVSmoothTest, NoiseInFlatRegionsDrops) {
  const auto x = noisy_regions(0.1);
  const auto options = TVSmoothFuncOptions().iters(10).eps(0.01);
  const auto y = tv_smooth(x, torch::full({1}, tv_max_step(options), torch::kFloat64), options);
  // Interiors away from the edge and the border.
  for (const int64_t left : {2, 20}) {
    const auto before = x.narrow(2, 2, 28).narrow(3, left, 10).var().item<double>();
    const auto after = y.narrow(2, 2, 28).narrow(3, left, 10).var().item<double>();
    EXPECT_LT(after, before / 4) << "region at column " << left;
  }
  // The edge between the regions survives.
  const double contrast = (y.narrow(3, 16, 16).mean() - y.narrow(3, 0, 16).mean()).item<double>();
  EXPECT_GT(contrast, 1.9);
}

TEST_F(TVSmoothTest, StableStepDecreasesTheTVNormAndCreatesNoExtrema) {
  for (const double eps : {0.01, 0.1, 1.0}) {
    const auto options = TVSmoothFuncOptions().eps(eps);
    const auto tau = torch::full({2}, tv_max_step(options), torch::kFloat64);
    auto x = torch::randn({2, 2, 12, 12}, torch::kFloat64);
    x.narrow(3, 6, 6).add_(2.0);
    double norm = tv_norm(x, eps).item<double>();
    for (int k = 0; k < 20; ++k) {
      const auto y = tv_smooth(x, tau, options);
      const double next = tv_norm(y, eps).item<double>();
      EXPECT_LE(next, norm + 1e-9) << "eps " << eps << ", step " << k;
      EXPECT_LE(y.amax().item<double>(), x.amax().item<double>() + 1e-12);
      EXPECT_GE(y.amin().item<double>(), x.amin().item<double>() - 1e-12);
      norm = next;
      x = y;
    }
  }
}

TEST_F(TVSmoothTest, GradientsMatchCentralDifferences) {
  for (const auto weight : {TVWeight::kCharbonnier, TVWeight::kPeronaMalik}) {
    const auto options = TVSmoothFuncOptions().iters(2).eps(0.05).weight(weight);
    const auto x0 = torch::randn({2, 2, 4, 5}, torch::kFloat64);
    const auto tau0 = torch::tensor({0.03, 0.06}, torch::kFloat64);
    const auto r = torch::randn({2, 2, 4, 5}, torch::kFloat64);
    auto loss = [&](const torch::Tensor& x, const torch::Tensor& tau) {
      return (tv_smooth(x, tau, options) * r).sum();
    };
    const auto x = x0.clone().requires_grad_(true);
    const auto tau = tau0.clone().requires_grad_(true);
    loss(x, tau).backward();
    constexpr double h = 1e-6;
    auto numeric = [&](const torch::Tensor& base, bool is_x) {
      auto grad = torch::zeros_like(base);
      auto flat = grad.view({-1});
      for (int64_t i = 0; i < base.numel(); ++i) {
        auto plus = base.clone(), minus = base.clone();
        plus.view({-1})[i] += h;
        minus.view({-1})[i] -= h;
        const double lp = (is_x ? loss(plus, tau0) : loss(x0, plus)).item<double>();
        const double lm = (is_x ? loss(minus, tau0) : loss(x0, minus)).item<double>();
        flat[i] = (lp - lm) / (2 * h);
      }
      return grad;
    };
    EXPECT_TRUE(torch::allclose(x.grad(), numeric(x0, true), /*rtol=*/1e-6, /*atol=*/1e-7));
    EXPECT_TRUE(torch::allclose(tau.grad(), numeric(tau0, false), /*rtol=*/1e-6, /*atol=*/1e-7));
  }
}

// A channels-last input is swept as NHWC images, no copies: y and dL/dx are bitwise the NCHW ones (the same
// IEEE operations per element), dL/dtau equal to rounding (summed in another order), and outputs and input
// gradient stay channels-last. Two steps, so the second one reads the first one's channels-last output.
// Both layouts give bitwise the same with 1 and 3 threads.
TEST_F(TVSmoothTest, ChannelsLastInputGivesTheNchwResultInItsOwnLayout) {
  constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const auto weight : {TVWeight::kCharbonnier, TVWeight::kPeronaMalik}) {
      const auto options = TVSmoothFuncOptions().iters(2).weight(weight);
      const auto x0 = torch::randn({3, 5, 7, 6}, dtype);
      const auto g = torch::randn({3, 5, 7, 6}, dtype);
      const auto tau0 = torch::rand({5}, dtype) * tv_max_step(options);
      const auto pass = [&](torch::MemoryFormat format) {
        const auto x = x0.clone(format).requires_grad_(true);
        const auto tau = tau0.clone().requires_grad_(true);
        const auto y = tv_smooth(x, tau, options);
        y.backward(g.contiguous(format));
        return std::vector<torch::Tensor>{y.detach(), x.grad(), tau.grad()};
      };
      const auto nchw = pass(torch::MemoryFormat::Contiguous);
      const auto cl = pass(kChannelsLast);
      EXPECT_TRUE(cl[0].is_contiguous(kChannelsLast));
      EXPECT_TRUE(cl[1].is_contiguous(kChannelsLast));
      EXPECT_TRUE(torch::equal(cl[0], nchw[0])) << dtype;
      EXPECT_TRUE(torch::equal(cl[1], nchw[1])) << dtype;
      const double tolerance = dtype == torch::kFloat ? 1e-5 : 1e-12;
      EXPECT_TRUE(torch::allclose(cl[2], nchw[2], tolerance, tolerance))
          << dtype << ": " << (cl[2] - nchw[2]).abs().max().item<double>();
      // Each image (plane) is swept and summed on one thread: the thread count changes nothing, bitwise.
      const int saved_threads = at::get_num_threads();
      at::set_num_threads(3);
      for (const auto format : {torch::MemoryFormat::Contiguous, kChannelsLast}) {
        const auto threaded = pass(format);
        const auto& single = format == kChannelsLast ? cl : nchw;
        for (size_t i = 0; i < single.size(); ++i) EXPECT_TRUE(torch::equal(threaded[i], single[i])) << i;
      }
      at::set_num_threads(saved_threads);
    }
  }
}

TEST_F(TVSmoothTest, QuantizationErrorOfANoisyPiecewiseConstantMapDrops) {
  // A post-ReLU-like map: two flat regions, noise, and sparse large outliers that a min-max scale must cover.
  auto x = torch::zeros({1, 1, 32, 32}, torch::kFloat64);
  x.narrow(3, 16, 16).fill_(1.0);
  x = (x + 0.5 + 0.1 * torch::randn_like(x)).relu();
  x = x + 2.0 * (torch::rand_like(x) < 0.01).to(torch::kFloat64);
  const auto options = TVSmoothFuncOptions().iters(3).eps(0.1);
  const auto y = tv_smooth(x, torch::full({1}, tv_max_step(options), torch::kFloat64), options);
  EXPECT_LT(y.amax().item<double>(), x.amax().item<double>() - 0.3);
  EXPECT_LT(y.std().item<double>(), x.std().item<double>());
  for (const int64_t bits : {2, 3, 4}) {
    // The same unsigned activation quantizer reads the map before and after smoothing, as in a network: a
    // clipping scale alpha = 2 covers both regions and clips the outliers.
    auto mse = [bits](const torch::Tensor& v) {
      const auto q = pdeq::quant::functional::fake_quantize(
          v, torch::tensor({2.0}, torch::kFloat64), pdeq::quant::FakeQuantizeFuncOptions().bits(bits));
      return (q - v).pow(2).mean().item<double>();
    };
    EXPECT_LT(mse(y), 0.8 * mse(x)) << bits << " bits: " << mse(y) << " after vs " << mse(x) << " before";
  }
}

TEST_F(TVSmoothTest, ModuleStepIsBoundedAndLearnable) {
  TVSmooth tv(TVSmoothOptions(3).gamma_init(0.1).eps(0.04));
  const double tau_max = 0.05;  // sqrt(0.04) / 4
  EXPECT_DOUBLE_EQ(tv_max_step(tv->func_options()), tau_max);
  EXPECT_NEAR(tv->step_sizes()[0].item<double>(), tau_max * std::tanh(0.01 / tau_max), 1e-7);
  {
    torch::NoGradGuard no_grad;
    tv->gamma.copy_(torch::tensor({0.0f, -0.1f, 100.0f}));
  }
  const auto tau = tv->step_sizes();
  EXPECT_EQ(tau[0].item<double>(), 0.0);
  EXPECT_NEAR(tau[1].item<double>(), tau_max * std::tanh(0.01 / tau_max), 1e-7);  // the sign does not matter
  EXPECT_LE(tau[2].item<double>(), tau_max * (1 + 1e-6));  // float rounding of tau_max itself
  // gamma is trained through the layer.
  {
    torch::NoGradGuard no_grad;
    tv->gamma.fill_(0.1);
  }
  const auto x = torch::randn({2, 3, 6, 6});
  (tv(x) * torch::randn_like(x)).sum().backward();
  EXPECT_TRUE(tv->gamma.grad().defined());
  EXPECT_GT(tv->gamma.grad().abs().sum().item<double>(), 0.0);
}

TEST_F(TVSmoothTest, ModuleChecksAndPrints) {
  PDEQ_ASSERT_THROWS_WITH(TVSmooth(TVSmoothOptions(0)), "channels must be positive, but got 0");
  PDEQ_ASSERT_THROWS_WITH(TVSmooth(TVSmoothOptions(2).iters(0)), "iters must be at least 1, but got 0");
  PDEQ_ASSERT_THROWS_WITH(TVSmooth(TVSmoothOptions(2).eps(-1)),
                          "eps must be positive and finite, but got -1");
  PDEQ_ASSERT_THROWS_WITH(TVSmooth(TVSmoothOptions(2).gamma_init(-1)),
                          "gamma_init must be non-negative and finite, but got -1");
  TVSmooth tv(TVSmoothOptions(2));
  PDEQ_ASSERT_THROWS_WITH(tv(torch::zeros({1, 3, 4, 4})),
                          "x must be [N, 2, H, W], but got shape [1, 3, 4, 4]");
  PDEQ_ASSERT_THROWS_WITH(tv_smooth(torch::zeros({1, 3, 4, 4}), torch::zeros({2})),
                          "tau must have one element or one per channel (3), but got shape [2]");
  EXPECT_EQ(c10::str(*tv), "pdeq::nn::TVSmooth(2)");
  EXPECT_EQ(c10::str(TVSmooth(TVSmoothOptions(16).iters(3).eps(0.001).weight(TVWeight::kPeronaMalik))),
            "pdeq::nn::TVSmooth(16, iters=3, eps=0.001, weight=perona_malik)");
}

TEST_F(TVSmoothTest, CheckpointRoundTripGivesIdenticalOutput) {
  pdeq::test::TempDir dir("tv");
  TVSmooth a(TVSmoothOptions(3).iters(2));
  {
    torch::NoGradGuard no_grad;
    a->gamma.copy_(torch::tensor({0.1f, 0.2f, 0.3f}));
  }
  torch::save(a, dir.file("tv.pt"));
  TVSmooth b(TVSmoothOptions(3).iters(2));
  torch::load(b, dir.file("tv.pt"));
  const auto x = torch::randn({2, 3, 5, 5});
  EXPECT_TRUE(torch::equal(a(x), b(x)));
}

}  // namespace
