#include <pdeq/compat/torch.h>
#include <pdeq/nn/conv2d.h>
#include <pdeq/train/compute_mode.h>

#include "test_support.h"

namespace {

using namespace pdeq;

struct Conv2dTest : test::SeedingFixture {};

struct Grads {
  torch::Tensor y, input, weight, bias;
};

/// One forward/backward of `conv` on channels-last x [4, 8, 10, 10] with a 3x3 weight and bias.
template <typename Conv>
Grads run(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0, const torch::Tensor& g,
          Conv conv) {
  auto x = x0.clone().requires_grad_(true);
  auto w = w0.clone().requires_grad_(true);
  auto b = b0.clone().requires_grad_(true);
  auto y = conv(x, w, b);
  y.backward(g.to(y.scalar_type()));
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

TEST_F(Conv2dTest, OutsideAutocastItIsLibTorchsConv2d) {
  const auto x = torch::randn({2, 3, 6, 6}), w = torch::randn({5, 3, 3, 3});
  EXPECT_TRUE(torch::equal(nn::functional::conv2d(x, w, {}, {1, 1}, {1, 1}, {1, 1}, 1),
                           at::conv2d(x, w, {}, {1, 1}, {1, 1}, {1, 1}, 1)));
}

TEST_F(Conv2dTest, UnderBf16AutocastWeightGradientsAreFp32FromTheBf16Operands) {
  const auto x = torch::randn({4, 8, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({6, 8, 3, 3}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto b = torch::randn({6});
  const auto g = torch::randn({4, 6, 10, 10}).contiguous(at::MemoryFormat::ChannelsLast);

  Grads ours, autocast;
  {
    const train::AutocastScope scope(train::ComputeMode{at::MemoryFormat::ChannelsLast, true});
    ASSERT_TRUE(pdeq::compat::autocast_enabled(at::kCPU));
    ours = run(x, w, b, g, [](auto& x, auto& w, auto& b) {
      return nn::functional::conv2d(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1);
    });
    autocast = run(x, w, b, g, [](auto& x, auto& w, auto& b) {
      return at::conv2d(x, w, b, {1, 1}, {1, 1}, {1, 1}, 1);
    });
  }
  // Forward and input gradient: autocast's own bfloat16 computation.
  EXPECT_EQ(ours.y.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::equal(ours.y, autocast.y));
  EXPECT_EQ(ours.input.scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::allclose(ours.input, autocast.input, 0, 1e-6));

  // Weight and bias gradients: exactly the fp32 gradients of the bfloat16-rounded operands.
  const auto as_bf16 = [](const torch::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); };
  const auto expected =
      at::convolution_backward(as_bf16(g), as_bf16(x), as_bf16(w), at::IntArrayRef{6}, {1, 1}, {1, 1}, {1, 1},
                               false, {0, 0}, 1, {false, true, true});
  EXPECT_EQ(ours.weight.scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::equal(ours.weight, std::get<1>(expected)));
  EXPECT_TRUE(torch::allclose(ours.bias, std::get<2>(expected)));
  // ... which agree with autocast's bfloat16 weight gradient to bfloat16's precision. How oneDNN sums the 400
  // products behind each weight gradient depends on the CPU: with AVX512-BF16 every element agreed within 2%
  // of the largest; on an AVX2 machine, 3% elementwise and 2% in norm. A wrong operand or layout would be off
  // by the whole gradient.
  const double relative =
      ((ours.weight - autocast.weight).norm() / std::get<1>(expected).norm()).item<double>();
  EXPECT_LT(relative, 0.05);
}

}  // namespace
