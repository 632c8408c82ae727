// Fake quantization in channels-last layout and under CPU autocast (bf16).
#include "fake_quantize_support.h"

#include <pdeq/compat/torch.h>

namespace pdeq::quant {
namespace {

/// y, dL/dx and dL/da of Q(x) for the output gradient g.
struct QuantizeResult {
  torch::Tensor y, dx, dalpha;
};

QuantizeResult quantize_with_grads(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& g,
                                   const FakeQuantizeFuncOptions& options) {
  const auto xg = x.detach().requires_grad_();
  const auto ag = alpha.detach().clone().requires_grad_();
  const auto y = F::fake_quantize(xg, ag, options);
  y.backward(g);
  return {y.detach(), xg.grad(), ag.grad()};
}

TEST_F(FakeQuantizeTest, ChannelsLastKeepsItsLayoutAndTheBitwiseValues) {
  // An activation (one scale) and a per-channel weight, each in NCHW and channels-last: y and dL/dx are
  // bitwise the same elementwise results, in the input's layout. dL/da sums in memory order, so across
  // layouts it agrees to rounding (here relative 1e-5), not bitwise.
  struct Case {
    torch::Tensor x, alpha;
    FakeQuantizeFuncOptions options;
  };
  const std::vector<Case> cases = {{torch::randn({8, 16, 9, 7}) * 3, scalar(2.5), unsigned_bits(4)},
                                   {torch::randn({16, 8, 3, 3}), torch::rand({16}) + 0.5, signed_bits(4)},
                                   {torch::randn({16, 8, 3, 3}), torch::rand({16}) + 0.5,
                                    FakeQuantizeFuncOptions().bits(2).midrise(true)}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto g = torch::randn(c.x.sizes());
    const auto nchw = quantize_with_grads(c.x, c.alpha, g, c.options);
    const auto cl = quantize_with_grads(c.x.contiguous(torch::MemoryFormat::ChannelsLast), c.alpha,
                                        g.contiguous(torch::MemoryFormat::ChannelsLast), c.options);
    EXPECT_TRUE(cl.y.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "case " << i;
    EXPECT_TRUE(cl.dx.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "case " << i;
    EXPECT_TRUE(nchw.y.is_contiguous()) << "case " << i;
    EXPECT_TRUE(torch::equal(nchw.y, cl.y)) << "case " << i;
    EXPECT_TRUE(torch::equal(nchw.dx, cl.dx)) << "case " << i;
    // dL/dalpha adds the same products in another order; summed in double, both round to the same float.
    EXPECT_TRUE(torch::equal(nchw.dalpha, cl.dalpha)) << "case " << i;
    // An output gradient in the other layout than x is brought to x's.
    const auto mixed =
        quantize_with_grads(c.x.contiguous(torch::MemoryFormat::ChannelsLast), c.alpha, g, c.options);
    EXPECT_TRUE(torch::equal(nchw.dx, mixed.dx)) << "case " << i;
    EXPECT_TRUE(torch::equal(cl.dalpha, mixed.dalpha)) << "case " << i;
  }
  // A per-channel scale on a tensor whose dim 0 is not outermost in memory (a transposed view) is quantized
  // through a contiguous copy: the same values.
  const auto w = torch::randn({8, 16, 3, 3});
  const auto alpha = torch::rand({16}) + 0.5;
  const auto g = torch::randn({16, 8, 3, 3});
  const auto view = quantize_with_grads(w.transpose(0, 1), alpha, g, signed_bits(3));
  const auto copy = quantize_with_grads(w.transpose(0, 1).contiguous(), alpha, g, signed_bits(3));
  EXPECT_TRUE(torch::equal(view.y, copy.y));
  EXPECT_TRUE(torch::equal(view.dx, copy.dx));
  EXPECT_TRUE(torch::equal(view.dalpha, copy.dalpha));
}

/// CPU autocast to bfloat16 for the scope (as train::AutocastScope, which sits above this layer).
struct CpuAutocast {
  CpuAutocast() { pdeq::compat::set_autocast(at::kCPU, true, at::kBFloat16); }
  ~CpuAutocast() {
    pdeq::compat::set_autocast(at::kCPU, false, at::kBFloat16);
    at::autocast::clear_cache();
  }
};

TEST_F(FakeQuantizeTest, AutocastQuantizesInFp32OnTheExactGrid) {
  // A bfloat16 activation (what a convolution gives under autocast) is quantized in fp32: the output is the
  // fp32 quantizer's of the same (exactly representable) values, bit for bit, and every value is a * k / n
  // as fp32 computes it. Gradients: dL/dx comes back in bfloat16 (x's dtype, bitwise the fp32 one rounded),
  // dL/da in fp32.
  const auto x16 = (torch::randn({4, 8, 6, 6}) * 3).to(torch::kBFloat16);
  const auto alpha = scalar(2.7);
  const auto g = torch::randn({4, 8, 6, 6});
  const auto expected = quantize_with_grads(x16.to(torch::kFloat), alpha, g, unsigned_bits(4));
  QuantizeResult got;
  {
    const CpuAutocast autocast;
    got = quantize_with_grads(x16, alpha, g, unsigned_bits(4));
  }
  EXPECT_EQ(got.y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(got.y, expected.y));
  const float step = 2.7f / 15.0f;
  EXPECT_TRUE(torch::equal(got.y, torch::round(got.y / step) * step));
  EXPECT_EQ(got.dx.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(got.dx, expected.dx.to(torch::kBFloat16)));
  EXPECT_EQ(got.dalpha.scalar_type(), torch::kFloat);
  // The bfloat16-reading kernel vectorises its sum differently; summed in double, both round alike.
  EXPECT_TRUE(torch::equal(got.dalpha, expected.dalpha));

  // The weight quantizer module (standardisation included) computes the same under autocast as without.
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(4));
  const auto w = torch::randn({16, 8, 3, 3});
  const auto plain = weight(w);
  torch::Tensor autocast_out;
  {
    const CpuAutocast autocast;
    autocast_out = weight(w);
    // Autocast itself still applies outside the quantizer.
    EXPECT_EQ(torch::conv2d(torch::randn({1, 8, 5, 5}), w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(autocast_out.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(plain, autocast_out));
  // Outside autocast a bfloat16 input keeps its dtype (the tensor-op path, see TensorOpPathForOtherDtypes).
  EXPECT_EQ(F::fake_quantize(x16, alpha, unsigned_bits(4)).scalar_type(), torch::kBFloat16);
}

TEST_F(FakeQuantizeTest, ConvOperandUnderAutocastIsTheCastOfForwardBitForBit) {
  // forward_for_conv under bfloat16 autocast: `conv` is forward(x) cast to bfloat16 (what autocast would
  // hand the convolution), `exact` is forward(x), both in x's layout, and the gradients that come back
  // through both (bfloat16 from the convolution, fp32 from a residual sum) give the same dL/dx and dL/da as
  // the cast's would. Inputs fp32 (a batch-norm output) and bfloat16, NCHW and channels-last.
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
      for (const bool exact : {false, true}) {
        const std::string where = std::string(dtype == torch::kFloat ? "fp32" : "bf16") +
                                  (format == torch::MemoryFormat::ChannelsLast ? " channels-last" : " NCHW") +
                                  (exact ? " with exact" : "");
        FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(2.7));
        const auto x0 = (torch::randn({4, 8, 6, 6}) * 2).to(dtype).contiguous(format);
        const auto g16 = torch::randn({4, 8, 6, 6}).to(torch::kBFloat16);
        const auto g = torch::randn({4, 8, 6, 6});
        const auto run = [&](bool fused) {
          act->zero_grad();
          const auto x = x0.clone().requires_grad_(true);
          torch::Tensor conv, exact_values;
          {
            const CpuAutocast autocast;
            if (fused) {
              const auto operand = act->forward_for_conv(x, exact);
              conv = operand.conv;
              exact_values = operand.exact;
            } else {
              exact_values = act(x);
              conv = exact_values.to(torch::kBFloat16);
            }
          }
          auto loss = (conv * g16).sum().to(torch::kFloat);
          if (exact) loss = loss + (exact_values * g).sum();
          loss.backward();
          return std::vector<torch::Tensor>{conv, exact ? exact_values : torch::Tensor(), x.grad(),
                                            act->alpha.grad().clone()};
        };
        const auto expected = run(false);
        const auto got = run(true);
        EXPECT_EQ(got[0].scalar_type(), torch::kBFloat16) << where;
        EXPECT_TRUE(got[0].is_contiguous(format)) << where;
        EXPECT_TRUE(torch::equal(got[0], expected[0])) << where;
        if (exact) {
          EXPECT_EQ(got[1].scalar_type(), torch::kFloat) << where;
          EXPECT_TRUE(torch::equal(got[1], expected[1])) << where;
        } else {
          EXPECT_FALSE(got[1].defined()) << where;
        }
        EXPECT_EQ(got[2].scalar_type(), dtype) << where;
        EXPECT_TRUE(torch::equal(got[2], expected[2])) << where;
        // dL/dalpha is a sum the two kernels vectorise in different orders, in double: the same float.
        EXPECT_TRUE(torch::equal(got[3], expected[3])) << where;
      }
    }
  }
  // Outside autocast (and for weights) it is forward(x) itself.
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
  const auto x = torch::randn({2, 3, 4, 4});
  const auto operand = act->forward_for_conv(x, /*exact=*/true);
  EXPECT_EQ(operand.conv.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(operand.conv, act(x)));
  EXPECT_TRUE(torch::equal(operand.exact, act(x)));
}

}  // namespace
}  // namespace pdeq::quant
