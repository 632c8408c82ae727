#include <pdeq/deploy/onednn_conv.h>

#include "test_support.h"

#include <torch/nn/functional/conv.h>

namespace {

using namespace pdeq;

/// A convolution with random codes: uint8 inputs in [0, input_max], int8 weights in [-weight_max,
/// weight_max].
struct Case {
  deploy::Int8ConvSpec spec;
  torch::Tensor input;               // uint8 [N, C, H, W]
  torch::Tensor weight;              // int8 [O, I, k, k]
  torch::Tensor multiplier, offset;  // float [O]
};

/// Input [batch, in, height, width] (default [2, 5, 7, 6]), `out` output channels (default 4).
Case make_case(int64_t input_max, int64_t weight_max, int64_t kernel, int64_t stride,
               std::vector<int64_t> input_shape = {2, 5, 7, 6}, int64_t out = 4) {
  Case c;
  const int64_t in = input_shape[1];
  c.input = torch::randint(0, input_max + 1, input_shape).to(torch::kByte);
  c.weight = torch::randint(-weight_max, weight_max + 1, {out, in, kernel, kernel}).to(torch::kChar);
  c.multiplier = torch::rand({out}) * 0.05 + 0.01;
  c.offset = torch::randn({out}) * 3;
  auto& s = c.spec;
  s.in_channels = in;
  s.out_channels = out;
  s.kernel = kernel;
  s.stride = stride;
  s.padding = kernel / 2;
  s.weight.assign(c.weight.data_ptr<int8_t>(), c.weight.data_ptr<int8_t>() + c.weight.numel());
  s.multiplier.assign(c.multiplier.data_ptr<float>(), c.multiplier.data_ptr<float>() + out);
  s.offset.assign(c.offset.data_ptr<float>(), c.offset.data_ptr<float>() + out);
  return c;
}

/// The exact integer sums (in double) of a case, NCHW.
torch::Tensor exact_sums(const Case& c) {
  return torch::conv2d(c.input.to(torch::kDouble), c.weight.to(torch::kDouble), {}, c.spec.stride,
                       c.spec.padding);
}

torch::Tensor nhwc(const torch::Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous(); }
torch::Tensor nchw(const torch::Tensor& t) { return t.permute({0, 3, 1, 2}); }

struct OnednnConvTest : test::SeedingFixture {
  void SetUp() override {
    test::SeedingFixture::SetUp();
    if (!deploy::onednn_int8_available()) GTEST_SKIP() << "built without oneDNN (PDEQ_WITH_ONEDNN)";
  }
};

/// Float output: multiplier * (exact int32 sum) + offset + what dst held, ReLU; 7-bit codes so that the sums
/// of pairs fit 16 bits on CPUs without VNNI (as the trained networks' codes below 8 bits do).
TEST_F(OnednnConvTest, FloatOutputIsTheScaledExactSumPlusTheAddend) {
  for (const int64_t stride : {1, 2}) {
    auto c = make_case(127, 63, 3, stride);
    c.spec.codes_output = false;
    c.spec.relu = true;
    c.spec.accumulate_scale = 1.0f;
    const deploy::OnednnInt8Conv conv(c.spec);
    const auto sums = exact_sums(c);
    const auto addend = torch::randn(sums.sizes());
    const auto expected = (sums * c.multiplier.to(torch::kDouble).view({1, -1, 1, 1}) +
                           c.offset.to(torch::kDouble).view({1, -1, 1, 1}) + addend.to(torch::kDouble))
                              .relu();
    const auto src = nhwc(c.input);
    auto dst = nhwc(addend);
    conv.run(2, 7, 6, src.data_ptr<uint8_t>(), dst.data_ptr<float>());
    const auto error = (nchw(dst).to(torch::kDouble) - expected).abs().max().item<double>();
    EXPECT_LT(error, 1e-5 * (1.0 + expected.abs().max().item<double>())) << "stride " << stride;
    EXPECT_GT(expected.max().item<double>(), 10.0);  // the sums are not trivially small
  }
}

/// Codes output with the shortcut's codes summed in place: round(clamp(m acc + b + scale * before, 0, qmax)).
TEST_F(OnednnConvTest, CodesOutputAddsTheShortcutCodesClipsAndRoundsOnce) {
  auto c = make_case(15, 7, 3, 1);
  c.spec.codes_output = true;
  c.spec.qmax = 15;
  c.spec.accumulate_scale = 0.75f;
  const deploy::OnednnInt8Conv conv(c.spec);
  const auto sums = exact_sums(c);
  const auto before = torch::randint(0, 16, sums.sizes()).to(torch::kByte);
  const auto value = sums * c.multiplier.to(torch::kDouble).view({1, -1, 1, 1}) +
                     c.offset.to(torch::kDouble).view({1, -1, 1, 1}) + 0.75 * before.to(torch::kDouble);
  const auto expected = value.clamp(0, 15).round();
  const auto src = nhwc(c.input);
  auto dst = nhwc(before);
  conv.run(2, 7, 6, src.data_ptr<uint8_t>(), dst.data_ptr<uint8_t>());
  const auto got = nchw(dst).to(torch::kDouble);
  // Only values within float rounding of a half step may round the other way.
  const auto differs = got.ne(expected);
  const auto near_tie = ((value - value.floor()) - 0.5).abs().lt(1e-4);
  EXPECT_EQ(differs.logical_and(near_tie.logical_not()).sum().item<int64_t>(), 0);
  EXPECT_LE(differs.sum().item<int64_t>(), 2);
  EXPECT_GT(expected.eq(15).sum().item<int64_t>(), 0);  // the clip at qmax is exercised
  EXPECT_GT(expected.eq(0).sum().item<int64_t>(), 0);   // and the one at 0
}

/// Network-sized shapes, on every thread count: the kernels oneDNN picks for them split the work across
/// threads, and every split must give the same codes.
TEST_F(OnednnConvTest, NetworkShapesGiveTheSameCodesOnAnyThreadCount) {
  for (const auto& shape :
       std::vector<std::vector<int64_t>>{{64, 8, 16, 16}, {64, 16, 8, 8}, {3, 16, 8, 8}}) {
    for (const int64_t out : {8, 16}) {
      for (const bool float_sum : {false, true}) {
        // Codes output summing the shortcut's codes, or float output summing a float tensor (a projection's).
        auto c = make_case(15, 7, 3, 1, shape, out);
        c.spec.qmax = 15;
        c.spec.codes_output = !float_sum;
        c.spec.accumulate_scale = float_sum ? 1.0f : 0.5f;
        const deploy::OnednnInt8Conv conv(c.spec);
        const auto sums = exact_sums(c);
        const auto before = torch::randint(0, 16, sums.sizes()).to(torch::kByte);
        const auto addend = torch::rand(sums.sizes()) * 8;
        const auto value = sums * c.multiplier.to(torch::kDouble).view({1, -1, 1, 1}) +
                           c.offset.to(torch::kDouble).view({1, -1, 1, 1}) +
                           (float_sum ? addend.to(torch::kDouble) : 0.5 * before.to(torch::kDouble));
        const auto expected = float_sum ? value : value.clamp(0, 15);
        const auto src = nhwc(c.input);
        for (const int threads : {1, 2}) {
          torch::set_num_threads(threads);
          auto dst = float_sum ? nhwc(addend) : nhwc(before);
          conv.run(shape[0], shape[2], shape[3], src.data_ptr<uint8_t>(), dst.data_ptr());
          const auto error = (nchw(dst).to(torch::kDouble) - expected).abs().max().item<double>();
          EXPECT_LE(error, float_sum ? 1e-4 : 0.5 + 1e-4)
              << "input " << c.input.sizes() << ", " << out << " outputs, " << threads << " threads"
              << (float_sum ? ", float sum" : "");
        }
      }
    }
  }
  // The projection of a widening block: 1x1, stride 2, float output.
  auto c = make_case(15, 7, 1, 2, {64, 8, 16, 16}, 16);
  c.spec.codes_output = false;
  const deploy::OnednnInt8Conv conv(c.spec);
  const auto expected = exact_sums(c) * c.multiplier.to(torch::kDouble).view({1, -1, 1, 1}) +
                        c.offset.to(torch::kDouble).view({1, -1, 1, 1});
  const auto src = nhwc(c.input);
  for (const int threads : {1, 2}) {
    torch::set_num_threads(threads);
    auto dst = torch::empty({64, 8, 8, 16});
    conv.run(64, 16, 16, src.data_ptr<uint8_t>(), dst.data_ptr<float>());
    EXPECT_LT((nchw(dst).to(torch::kDouble) - expected).abs().max().item<double>(), 1e-4)
        << "projection, " << threads << " threads";
  }
  torch::set_num_threads(1);
}

/// A 1x1 stride-2 projection summed into a float tensor (the blocks that widen).
TEST_F(OnednnConvTest, ProjectionShapeSumsIntoAFloatTensor) {
  auto c = make_case(15, 7, 1, 2);
  c.spec.codes_output = false;
  c.spec.accumulate_scale = 1.0f;
  const deploy::OnednnInt8Conv conv(c.spec);
  const auto sums = exact_sums(c);
  ASSERT_EQ(sums.sizes(), (std::vector<int64_t>{2, 4, 4, 3}));
  EXPECT_EQ(conv.output_size(7), 4);
  EXPECT_EQ(conv.output_size(6), 3);
  const auto before = torch::randn(sums.sizes()) * 50;
  const auto value = sums * c.multiplier.to(torch::kDouble).view({1, -1, 1, 1}) +
                     c.offset.to(torch::kDouble).view({1, -1, 1, 1}) + before.to(torch::kDouble);
  const auto src = nhwc(c.input);
  auto dst = nhwc(before);
  conv.run(2, 7, 6, src.data_ptr<uint8_t>(), dst.data_ptr<float>());
  EXPECT_LT((nchw(dst).to(torch::kDouble) - value).abs().max().item<double>(), 1e-4);
}

TEST(OnednnConvSpec, RefusesInconsistentSpecsWithAMessage) {
  deploy::Int8ConvSpec spec;
  spec.in_channels = 2;
  spec.out_channels = 3;
  spec.kernel = 3;
  spec.weight.assign(2 * 3 * 9 - 1, 0);
  spec.multiplier.assign(3, 1.0f);
  spec.offset.assign(3, 0.0f);
  PDEQ_ASSERT_THROWS_WITH(deploy::OnednnInt8Conv{spec}, "weight must have out x in/groups x k x k entries");
  spec.weight.push_back(0);
  spec.multiplier[1] = 0.0f;
  PDEQ_ASSERT_THROWS_WITH(deploy::OnednnInt8Conv{spec}, "multipliers must be > 0");
  spec.multiplier[1] = 1.0f;
  spec.qmax = 256;
  PDEQ_ASSERT_THROWS_WITH(deploy::OnednnInt8Conv{spec}, "qmax must be in [1, 255]");
  if (!deploy::onednn_int8_available()) {
    spec.qmax = 255;
    PDEQ_ASSERT_THROWS_WITH(deploy::OnednnInt8Conv{spec}, "built without oneDNN");
  }
}

}  // namespace
