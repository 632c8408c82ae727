// The custom operations on every device: the fake quantizer, TV smoothing, the CSR product and dropout, each
// computed on the device under test and compared with the fused CPU kernel, values and gradients.
//
// "cpu" runs the device-generic path (ATen operations) that CUDA and every other device take, inside a
// quant::GenericKernels scope, so what a GPU computes is checked on every machine; "cuda" runs the CUDA
// build's kernels and the generic paths on a GPU, and is skipped, visibly, where torch::cuda::is_available()
// is false.
#include "test_support.h"

#include <pdeq/nn/csr_matrix.h>
#include <pdeq/nn/dropout.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>
#include <pdeq/quant/kernel_path.h>

#include <torch/cuda.h>
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace pdeq::test {
namespace {

namespace F = quant::functional;

class DeviceMatrixTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !torch::cuda::is_available()) {
      GTEST_SKIP() << "no CUDA GPU (or no CUDA in this LibTorch): the CUDA cases run where one is";
    }
    torch::manual_seed(0);
  }

  torch::Device device() const { return GetParam() == "cuda" ? torch::Device(torch::kCUDA) : torch::kCPU; }

  /// `fn` on the device under test: CPU tensors inside a GenericKernels scope (the generic path), CUDA ones
  /// as a CUDA run computes them.
  template <typename Fn>
  auto on_device(Fn&& fn) const {
    std::optional<quant::GenericKernels> generic;
    if (device().is_cpu()) generic.emplace();
    return fn(device());
  }

  /// Bitwise where the same IEEE operations run in the same order on every path, else within `tol`.
  static void expect_same(const torch::Tensor& actual, const torch::Tensor& expected, bool bitwise,
                          double tol, const std::string& what) {
    const auto a = actual.to(torch::kCPU);
    ASSERT_EQ(a.sizes(), expected.sizes()) << what;
    ASSERT_EQ(a.scalar_type(), expected.scalar_type()) << what;
    const double diff = (a.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
    if (bitwise) {
      EXPECT_TRUE(torch::equal(a, expected)) << what << ": max difference " << diff;
    } else {
      EXPECT_TRUE(torch::allclose(a, expected, tol, tol)) << what << ": max difference " << diff;
    }
  }

  bool on_cpu() const { return device().is_cpu(); }
};

/// Inputs, their output gradient and what a pass returns: the output and the inputs' gradients.
struct Pass {
  torch::Tensor y;
  std::vector<torch::Tensor> grads;
};

/// Runs `op` on copies of `inputs` on `device` (all requiring gradients), backward with `g`.
template <typename Op>
Pass run_pass(const std::vector<torch::Tensor>& inputs, const torch::Tensor& g, torch::Device device,
              Op&& op) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(t.to(device).detach().requires_grad_(true));
  Pass pass;
  pass.y = op(leaves);
  pass.y.backward(g.to(device).contiguous(pass.y.suggest_memory_format()));
  for (const auto& t : leaves) pass.grads.push_back(t.grad().to(torch::kCPU));
  pass.y = pass.y.detach().to(torch::kCPU);
  return pass;
}

TEST_P(DeviceMatrixTest, FakeQuantizerMatchesTheFusedCpuKernel) {
  struct Grid {
    const char* name;
    quant::FakeQuantizeFuncOptions options;
  };
  const std::vector<Grid> grids{
      {"unsigned 4", quant::FakeQuantizeFuncOptions().bits(4)},
      {"unsigned 4, open lower end", quant::FakeQuantizeFuncOptions().bits(4).open_lower_end(true)},
      {"signed 4", quant::FakeQuantizeFuncOptions().bits(4).is_signed(true)},
      {"ternary, calibrated gradient", quant::FakeQuantizeFuncOptions().bits(2).is_signed(true)},
      {"mid-rise 3", quant::FakeQuantizeFuncOptions().bits(3).midrise(true)},
      {"unsigned 8", quant::FakeQuantizeFuncOptions().bits(8)}};
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const auto& grid : grids) {
      for (const int64_t channels : {0, 6}) {
        for (const bool channels_last : {false, true}) {
          auto x = torch::randn({6, 8, 9, 9}, dtype) * 4;
          // Elements exactly on the clip ends (open or closed) and on a level.
          x[0][0][0][0] = 0.0;
          x[0][0][0][1] = 3.0;
          x[0][0][0][2] = -3.0;
          if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
          const auto alpha =
              channels > 0 ? torch::rand({channels}, dtype) * 3 + 1 : torch::full({}, 3.0, dtype);
          const auto g = torch::randn({6, 8, 9, 9}, dtype);
          const auto op = [&](const std::vector<torch::Tensor>& t) {
            return F::fake_quantize(t[0], t[1], grid.options);
          };
          const Pass fused = run_pass({x, alpha}, g, torch::kCPU, op);
          const Pass other = on_device([&](torch::Device d) { return run_pass({x, alpha}, g, d, op); });
          const std::string where = c10::str(GetParam(), " ", dtype, " ", grid.name, " channels=", channels,
                                             channels_last ? " channels-last" : " NCHW");
          // y and dL/dx: per element the same IEEE operations in the same order (x * (1/a), clip, round half
          // to even, * (a/n)) on every path.
          expect_same(other.y, fused.y, true, 0.0, where + ": y");
          expect_same(other.grads[0], fused.grads[0], true, 0.0, where + ": dL/dx");
          // dL/da sums ~3900 terms per scale: the fused kernel in blocks of dtype partial sums, the generic
          // path in float64; they agree to the rounding of the float partial sums.
          const double tol = dtype == torch::kFloat ? 1e-3 : 1e-10;
          expect_same(other.grads[1], fused.grads[1], false, tol, where + ": dL/da");
        }
      }
    }
  }
}

TEST_P(DeviceMatrixTest, TVSmoothingMatchesTheFusedCpuKernel) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const auto weight : {nn::TVWeight::kCharbonnier, nn::TVWeight::kPeronaMalik}) {
      for (const bool channels_last : {false, true}) {
        auto x = torch::randn({3, 5, 11, 13}, dtype);
        if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        const auto tau = torch::rand({5}, dtype) * 0.05 + 0.01;
        const auto g = torch::randn({3, 5, 11, 13}, dtype);
        const auto options = nn::TVSmoothFuncOptions().iters(2).eps(0.1).weight(weight);
        const auto op = [&](const std::vector<torch::Tensor>& t) {
          return nn::functional::tv_smooth(t[0], t[1], options);
        };
        const Pass fused = run_pass({x, tau}, g, torch::kCPU, op);
        const Pass other = on_device([&](torch::Device d) { return run_pass({x, tau}, g, d, op); });
        const std::string where = c10::str(
            GetParam(), " ", dtype, weight == nn::TVWeight::kCharbonnier ? " Charbonnier" : " Perona-Malik",
            channels_last ? " channels-last" : " NCHW");
        // The fused kernel evaluates each edge's flux once and adds the divergence in its own order, the
        // generic path as tensor expressions (and autograd's backward): equal to rounding, not bitwise.
        const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
        expect_same(other.y, fused.y, false, tol, where + ": y");
        expect_same(other.grads[0], fused.grads[0], false, tol, where + ": dL/dx");
        // dL/dtau sums over 3 x 143 pixels per channel.
        expect_same(other.grads[1], fused.grads[1], false, dtype == torch::kFloat ? 1e-4 : 1e-10,
                    where + ": dL/dtau");
        EXPECT_EQ(other.y.suggest_memory_format(), x.suggest_memory_format()) << where;
      }
    }
  }
}

TEST_P(DeviceMatrixTest, CsrProductMatchesTheFusedCpuKernel) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    // 60 x 45 with ~300 entries, duplicates (summed) and empty rows.
    const auto indices =
        torch::stack({torch::randint(50, {300}, torch::kInt64), torch::randint(45, {300}, torch::kInt64)});
    const auto values = torch::randn({300}, dtype);
    const auto m = nn::CsrMatrix::from_coo(indices, values, 60, 45);
    const auto x = torch::randn({45, 7}, dtype);
    const auto g = torch::randn({60, 7}, dtype);
    const Pass fused =
        run_pass({x}, g, torch::kCPU, [&](const std::vector<torch::Tensor>& t) { return m.matmul(t[0]); });
    const Pass other = on_device([&](torch::Device d) {
      const auto md = m.to(d);
      return run_pass({x}, g, d, [&](const std::vector<torch::Tensor>& t) { return md.matmul(t[0]); });
    });
    const std::string where = c10::str(GetParam(), " ", dtype);
    // On the CPU both paths add each row's (and, backward, each column's) products in entry order from
    // zero: bitwise. CUDA's index_add_ adds with atomics, in no fixed order: equal to rounding.
    const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
    expect_same(other.y, fused.y, on_cpu(), tol, where + ": y");
    expect_same(other.grads[0], fused.grads[0], on_cpu(), tol, where + ": dL/dx");
  }
}

TEST_P(DeviceMatrixTest, DropoutDrawsTheSameMaskAsTheFusedCpuKernel) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const double p : {0.1, 0.5, 0.9}) {
      const auto x = torch::randn({7, 300, 41}, dtype);  // 86k elements: several of the kernel's blocks
      const auto g = torch::randn({7, 300, 41}, dtype);
      const auto op = [&](const std::vector<torch::Tensor>& t) {
        return nn::functional::dropout(t[0], p, true);
      };
      torch::manual_seed(5);
      const Pass fused = run_pass({x}, g, torch::kCPU, op);
      torch::manual_seed(5);  // the mask's key is one draw from the CPU generator on every device
      const Pass other = on_device([&](torch::Device d) { return run_pass({x}, g, d, op); });
      const std::string where = c10::str(GetParam(), " ", dtype, " p=", p);
      // The same 32-bit hash of each index (integer arithmetic), the same scale: bitwise.
      expect_same(other.y, fused.y, true, 0.0, where + ": y");
      expect_same(other.grads[0], fused.grads[0], true, 0.0, where + ": dL/dx");
      const double kept = fused.y.ne(0).to(torch::kDouble).mean().item<double>();
      EXPECT_NEAR(kept, 1.0 - p, 0.01) << where;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, DeviceMatrixTest, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(GenericKernelsTest, ScopesNestAndEndWithTheirLifetime) {
  EXPECT_TRUE(quant::fused_cpu_kernels_enabled());
  {
    quant::GenericKernels outer;
    EXPECT_FALSE(quant::fused_cpu_kernels_enabled());
    {
      quant::GenericKernels inner;
      EXPECT_FALSE(quant::fused_cpu_kernels_enabled());
    }
    EXPECT_FALSE(quant::fused_cpu_kernels_enabled());
  }
  EXPECT_TRUE(quant::fused_cpu_kernels_enabled());
}

}  // namespace
}  // namespace pdeq::test
