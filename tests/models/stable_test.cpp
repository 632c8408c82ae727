// Symmetric (forward-stable) blocks and the families built from them: the properties the paper's argument
// rests on (symmetric Jacobian, non-expansiveness, bounded error propagation) and the models' plumbing.
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/registry.h>
#include <pdeq/models/resnet.h>
#include <pdeq/models/stablenet.h>
#include <pdeq/nn/conv_adjoint.h>

#include "model_support.h"
#include "test_support.h"

#include <cmath>
#include <functional>

namespace {

using pdeq::models::BasicBlock;
using pdeq::models::BlockOptions;
using pdeq::models::InvertedResidualOptions;
using pdeq::models::ModelOptions;
using pdeq::models::SymmetricBlock;
using pdeq::models::SymmetricInvertedResidual;
using pdeq::models::Transition;
using pdeq::nn::TransposeImpl;
using pdeq::nn::functional::conv2d_adjoint;
using torch::Tensor;

struct StableTest : pdeq::test::SeedingFixture {};

constexpr auto kDouble = torch::kFloat64;

/// Jacobian of f at x (flattened), column by column with autograd.
Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
  const int64_t n = x.numel();
  std::vector<Tensor> rows;
  const auto input = x.detach().clone().requires_grad_(true);
  const auto y = f(input).reshape({-1});
  for (int64_t i = 0; i < y.numel(); ++i) {
    const auto grad = torch::autograd::grad({y[i]}, {input}, {}, /*retain_graph=*/true)[0];
    rows.push_back(grad.reshape({n}));
  }
  return torch::stack(rows);
}

/// ||K||_2^2 of a stride-1 convolution by power iteration on K^T K.
double squared_norm(const Tensor& weight, int64_t padding, int64_t groups, torch::IntArrayRef input_shape) {
  auto v = torch::randn(input_shape, weight.options());
  double lambda = 0;
  for (int i = 0; i < 200; ++i) {
    v = v / v.norm();
    const auto w = conv2d_adjoint(torch::conv2d(v, weight, {}, {1, 1}, {padding, padding}, {1, 1}, groups),
                                  weight, padding, groups);
    lambda = (w * v).sum().item<double>();
    v = w;
  }
  return lambda;
}

TEST_F(StableTest, SymmetricBlockJacobianIsSymmetricAndOrdinaryIsNot) {
  // Float, BN in eval mode with fresh statistics (identity up to 1/sqrt(1+eps)): the residual map h K^T s(K
  // x).
  SymmetricBlock symmetric(BlockOptions(3, 3).step_size(0.5));
  BasicBlock ordinary(BlockOptions(3, 3).step_size(0.5));
  symmetric->to(kDouble);
  ordinary->to(kDouble);
  symmetric->eval();
  ordinary->eval();
  const auto x = torch::randn({1, 3, 4, 4}, kDouble);
  const auto js = jacobian([&](const Tensor& v) { return symmetric->branch(v); }, x);
  const auto jo = jacobian([&](const Tensor& v) { return ordinary->branch(v); }, x);
  ASSERT_GT(js.abs().max().item<double>(), 1e-2);  // not trivially zero
  EXPECT_LT((js - js.t()).abs().max().item<double>(), 1e-5);
  EXPECT_GT((jo - jo.t()).abs().max().item<double>(), 1e-2);
}

TEST_F(StableTest, SymmetricInvertedResidualJacobianIsSymmetric) {
  SymmetricInvertedResidual block(InvertedResidualOptions(2, 2, 1, 3));
  block->to(kDouble);
  block->eval();
  const auto x = torch::randn({1, 2, 5, 5}, kDouble);
  const auto j = jacobian([&](const Tensor& v) { return block->branch(v); }, x);
  ASSERT_GT(j.abs().max().item<double>(), 1e-2);
  EXPECT_LT((j - j.t()).abs().max().item<double>(), 1e-5);
}

TEST_F(StableTest, SymmetricStepIsNonExpansiveWhenHTimesNormSquaredIsAtMostTwo) {
  SymmetricBlock probe(BlockOptions(4, 4));
  const double norm2 = squared_norm(probe->conv->weight.to(kDouble), 1, 1, {1, 4, 6, 6});
  ASSERT_GT(norm2, 0.0);
  // h ||K||^2 = 1.9; BN in eval mode only shrinks the step further.
  SymmetricBlock block(BlockOptions(4, 4).step_size(1.9 / norm2));
  {
    torch::NoGradGuard no_grad;
    block->conv->weight.copy_(probe->conv->weight);
  }
  block->to(kDouble);
  block->eval();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 20; ++i) {
    const auto x = torch::randn({1, 4, 6, 6}, kDouble) * 3, y = x + torch::randn({1, 4, 6, 6}, kDouble);
    EXPECT_LE((block(x) - block(y)).norm().item<double>(), (x - y).norm().item<double>() * (1 + 1e-9));
  }
  // Far beyond the bound the same block expands some pairs (the condition is not vacuous).
  block->options.step_size(20.0 / norm2);
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto x = torch::randn({1, 4, 6, 6}, kDouble) * 3, d = torch::randn({1, 4, 6, 6}, kDouble) * 1e-3;
    worst = std::max(worst, ((block(x + d) - block(x)).norm() / d.norm()).item<double>());
  }
  EXPECT_GT(worst, 1.0);
}

/// Growth of a perturbation injected after the first block, through `depth` more blocks.
double perturbation_growth(std::vector<std::function<Tensor(const Tensor&)>>& blocks) {
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 4, 8, 8}, kDouble).abs();
  x = blocks.front()(x);
  const auto delta = torch::randn(x.sizes(), kDouble) * 1e-3;
  auto a = x, b = x + delta;
  for (size_t i = 1; i < blocks.size(); ++i) {
    a = blocks[i](a);
    b = blocks[i](b);
  }
  return ((a - b).norm() / delta.norm()).item<double>();
}

TEST_F(StableTest, ErrorStaysBoundedThroughThirtySymmetricBlocksAndGrowsThroughOrdinaryOnes) {
  constexpr int kDepth = 31;
  std::vector<SymmetricBlock> symmetric;
  std::vector<BasicBlock> ordinary;
  std::vector<std::function<Tensor(const Tensor&)>> sym_fns, ord_fns;
  for (int i = 0; i < kDepth; ++i) {
    SymmetricBlock s(BlockOptions(4, 4));
    BasicBlock o(BlockOptions(4, 4));
    s->to(kDouble);
    o->to(kDouble);
    s->eval();
    o->eval();
    // Matched weight norms: the ordinary block's K1 and K2 have the symmetric K's spectral norm, and both use
    // h = 1 / ||K||^2, well inside the symmetric step's stability bound.
    const auto k = s->conv->weight;
    const double norm2 = squared_norm(k, 1, 1, {1, 4, 8, 8});
    {
      torch::NoGradGuard no_grad;
      for (auto* w : {&o->conv1->weight, &o->conv2->weight}) {
        const double own = squared_norm(*w, 1, 1, {1, 4, 8, 8});
        w->mul_(std::sqrt(norm2 / own));
      }
    }
    s->options.step_size(1.0 / norm2);
    o->options.step_size(1.0 / norm2);
    symmetric.push_back(s);
    ordinary.push_back(o);
    sym_fns.push_back([s](const Tensor& v) mutable { return s->forward(v); });
    ord_fns.push_back([o](const Tensor& v) mutable { return o->forward(v); });
  }
  const double sym_growth = perturbation_growth(sym_fns);
  const double ord_growth = perturbation_growth(ord_fns);
  EXPECT_LE(sym_growth, 1.0 + 1e-9);
  EXPECT_GT(ord_growth, 3.0 * sym_growth) << "symmetric " << sym_growth << ", ordinary " << ord_growth;
}

ModelOptions w4a4(int64_t in_channels, bool stable) {
  ModelOptions options = pdeq::test::w4a4(in_channels);
  options.stable = stable;
  options.step_size = 0.1;
  return options;
}

TEST_F(StableTest, EveryNewModelRunsOnOneAndThreeChannelInputs) {
  for (const char* name : {"stablenet20", "mobilenetv2"}) {
    for (bool stable : {false, true}) {
      SCOPED_TRACE(testing::Message() << name << (stable ? " stable" : " plain"));
      auto rgb = pdeq::models::make_model(name, w4a4(3, stable));
      EXPECT_EQ(rgb->forward(torch::randn({2, 3, 32, 32})).sizes(), torch::IntArrayRef({2, 10}));
      auto gray = pdeq::models::make_model(name, w4a4(1, stable));
      EXPECT_EQ(gray->forward(torch::randn({2, 1, 28, 28})).sizes(), torch::IntArrayRef({2, 10}));
    }
  }
  auto resnet = pdeq::models::make_model("resnet20", w4a4(1, true));
  EXPECT_EQ(resnet->forward(torch::randn({2, 1, 28, 28})).sizes(), torch::IntArrayRef({2, 10}));
}

TEST_F(StableTest, StableResNetOpensEachStageWithAnOrdinaryBlock) {
  auto net = std::dynamic_pointer_cast<pdeq::models::ResNetImpl>(
      pdeq::models::make_model("resnet20", w4a4(3, true)));
  ASSERT_TRUE(net);
  for (const auto& stage : net->layers) {
    auto first = stage->ptr(0)->as<pdeq::models::BasicBlock>();
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->options.step_size(), 1.0);
    for (size_t i = 1; i < stage->size(); ++i) {
      auto block = stage->ptr(i)->as<SymmetricBlock>();
      ASSERT_NE(block, nullptr);
      EXPECT_EQ(block->options.step_size(), 0.1);
    }
  }
}

TEST_F(StableTest, StableNetGrowsByConcatenationAndPools) {
  SymmetricBlock block(BlockOptions(4, 6, 2).transition(Transition::kConcatPool));
  block->eval();
  const auto x = torch::rand({1, 4, 8, 8});
  const auto y = block(x);
  ASSERT_EQ(y.sizes(), torch::IntArrayRef({1, 6, 4, 4}));
  // The two new channels are the pooled first input channels (the float quantizer passes them through).
  EXPECT_TRUE(torch::allclose(y.narrow(1, 4, 2), torch::avg_pool2d(x.narrow(1, 0, 2), 2)));
  EXPECT_THROW((void)SymmetricBlock(BlockOptions(4, 6, 2)), c10::Error);  // a projection cannot be symmetric
}

TEST_F(StableTest, TraceNamesCoverEveryBlock) {
  pdeq::models::ActivationTrace trace;
  pdeq::models::make_model("mobilenetv2", w4a4(3, true))
      ->forward_traced(torch::randn({1, 3, 32, 32}), &trace);
  ASSERT_EQ(trace.names.size(), 1u + 17u + 1u);
  EXPECT_EQ(trace.names.front(), "stem");
  EXPECT_EQ(trace.names[1], "layer1.0");
  EXPECT_EQ(trace.names[17], "layer7.0");
  EXPECT_EQ(trace.names.back(), "head");
  pdeq::models::ActivationTrace stable_trace;
  pdeq::models::make_model("stablenet20", w4a4(3, true))
      ->forward_traced(torch::randn({1, 3, 32, 32}), &stable_trace);
  ASSERT_EQ(stable_trace.names.size(), 10u);
  EXPECT_EQ(stable_trace.names.back(), "layer3.2");
  EXPECT_EQ(stable_trace.activations.back().sizes(), torch::IntArrayRef({1, 64, 8, 8}));
}

TEST_F(StableTest, BothTransposeImplementationsGiveTheSameNetwork) {
  auto options = w4a4(3, true);
  auto fast = pdeq::models::make_model("stablenet20", options);
  options.transpose_impl = TransposeImpl::kConvTranspose;
  auto reference = pdeq::models::make_model("stablenet20", options);
  {
    torch::NoGradGuard no_grad;
    auto target = reference->named_parameters();
    for (const auto& p : fast->named_parameters()) target[p.key()].copy_(p.value());
  }
  const auto x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::allclose(fast->forward(x), reference->forward(x), 1e-4, 1e-4));
}

TEST_F(StableTest, AFewTrainingStepsReduceTheLoss) {
  // One fixed batch, learned for a few steps: every symmetric family trains through K and K^T at W4A4.
  for (const char* name : {"resnet20", "stablenet20", "mobilenetv2"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(1);
    auto net = pdeq::models::make_model(name, w4a4(3, true));
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.02).momentum(0.9));
    const auto x = torch::randn({8, 3, 32, 32});
    const auto labels = torch::randint(0, 10, {8}, torch::kLong);
    std::vector<double> losses;
    for (int step = 0; step < 20; ++step) {
      sgd.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), labels);
      loss.backward();
      sgd.step();
      losses.push_back(loss.item<double>());
    }
    EXPECT_LT(losses.back(), 0.8 * losses.front()) << testing::PrintToString(losses);
  }
}

}  // namespace
