// The graph models (PDE-GCN, GCN); the operators they use are tested in tests/nn/graph_ops_test.cpp.
#include "graph_support.h"
#include "test_support.h"

#include <pdeq/models/gcn.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/pde_gcn.h>
#include <pdeq/nn/graph_ops.h>
#include <pdeq/quant/quantizer_set.h>

#include <torch/torch.h>

namespace pdeq::test {
namespace {

struct GraphTest : SeedingFixture {};

torch::Tensor sparse_features(int64_t n, int64_t f) {
  return (torch::rand({n, f}) * (torch::rand({n, f}) < 0.3)).to_sparse();
}

TEST_F(GraphTest, SymmetricLayerIsADiffusionThatDoesNotGrowTheEnergy) {
  // With K = I and s = tanh (monotone, s(0) = 0), -G^T s(G x) is a descent direction of ||G x||^2: one small
  // step does not increase the Dirichlet energy.
  const auto g = small_graph();
  models::PdeGcnLayer layer(models::PdeGcnLayerOptions(4).step_size(0.2));
  const auto x = torch::randn({7, 4}) * 2;
  const auto y = layer->forward(x, g);
  EXPECT_LE(g.grad(y).square().sum().item<double>(), g.grad(x).square().sum().item<double>() + 1e-6);
  // Mass is conserved (G^T maps into the complement of constants).
  EXPECT_TRUE(torch::allclose(y.sum(0), x.sum(0), 1e-4, 1e-4));
  EXPECT_TRUE(torch::equal(layer->K, torch::eye(4)));
  EXPECT_FALSE(layer->K2.defined());
}

TEST_F(GraphTest, SymmetricLayerJacobianIsSymmetric) {
  // x -> -G^T K^T tanh(K G x) has Jacobian -G^T K^T D K G (D diagonal), a symmetric matrix.
  const auto g = small_graph();
  models::PdeGcnLayer layer(models::PdeGcnLayerOptions(2).step_size(1.0));
  torch::NoGradGuard no_grad;
  layer->K.copy_(torch::randn({2, 2}));
  layer->to(torch::kDouble);
  const auto x0 = torch::randn({7, 2}, torch::kDouble);
  auto jac = torch::zeros({14, 14}, torch::kDouble);
  const double eps = 1e-6;
  for (int64_t i = 0; i < 14; ++i) {
    auto dx = torch::zeros({14}, torch::kDouble);
    dx[i] = eps;
    const auto plus = layer->forward(x0 + dx.reshape({7, 2}), g);
    const auto minus = layer->forward(x0 - dx.reshape({7, 2}), g);
    jac.select(1, i).copy_(((plus - minus) / (2 * eps)).reshape({14}));
  }
  EXPECT_TRUE(torch::allclose(jac, jac.t(), 1e-6, 1e-6)) << jac - jac.t();
}

TEST_F(GraphTest, NonSymmetricLayerHasItsOwnClosingMatrix) {
  models::PdeGcnLayer layer(models::PdeGcnLayerOptions(3).symmetric(false));
  ASSERT_TRUE(layer->K2.defined());
  // K, K2 and the scales of the x, e, K and K2 quantizers.
  EXPECT_EQ(layer->named_parameters().size(), 6u);
  std::ostringstream line;
  layer->pretty_print(line);
  EXPECT_EQ(line.str(), "pdeq::models::PdeGcnLayer(3, step_size=1, symmetric=false)");
}

TEST_F(GraphTest, PdeGcnShapesTraceAndQuantizers) {
  const auto g = small_graph();
  auto act = quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(4).midrise(true);
  models::PdeGcn net(models::PdeGcnOptions(10, 3).channels(8).layers(3).step_size(0.5).act_quant(act));
  net->eval();
  models::ActivationTrace trace;
  const auto logits = net->forward_traced(sparse_features(7, 10), g, &trace);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(trace.names, (std::vector<std::string>{"layer0", "layer1", "layer2"}));
  EXPECT_EQ(trace.activations[2].sizes(), (std::vector<int64_t>{7, 8}));
  quant::QuantizerSet quantizers(*net);
  EXPECT_EQ(quantizers.activations().size(), 6u);  // x and e per layer
  EXPECT_EQ(quantizers.weights().size(), 3u);      // K per layer (full precision here)
  // The last layer's output is the closing layer's input (eval: no dropout).
  const auto expected = torch::addmm(net->close_bias, trace.activations[2], net->close_weight.t());
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-5, 1e-6));
}

TEST_F(GraphTest, QuantizedActivationsChangeTheOutputAndFullPrecisionRestoresIt) {
  const auto g = small_graph();
  const auto x = sparse_features(7, 10);
  models::PdeGcn net(models::PdeGcnOptions(10, 3).channels(8).layers(4).act_quant(
      quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(2).midrise(true).init_alpha(1.0)));
  net->eval();
  torch::NoGradGuard no_grad;
  const auto quantized = net->forward(x, g);
  quant::QuantizerSet(*net).set_activation_bits(32);
  const auto full = net->forward(x, g);
  EXPECT_FALSE(torch::allclose(quantized, full, 1e-4, 1e-4));
  quant::QuantizerSet(*net).set_activation_bits(2);
  EXPECT_TRUE(torch::equal(net->forward(x, g), quantized));
}

TEST_F(GraphTest, GradientsReachEveryParameter) {
  const auto g = small_graph();
  for (const std::string name : {"pde_gcn", "pde_gcn_nonsym", "gcn"}) {
    models::GraphModelOptions o;
    o.in_features = 10;
    o.num_classes = 3;
    o.channels = 6;
    o.layers = 2;
    o.dropout = o.input_dropout = 0.1;
    o.act_quant = quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(4).midrise(true);
    o.weight_quant = quant::FakeQuantizeOptions(quant::QuantTarget::kWeight).bits(4);
    auto net = models::make_graph_model(name, o);
    net->train();
    net->forward(sparse_features(7, 10), g).square().sum().backward();
    for (const auto& p : net->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << name << " " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << name << " " << p.key();
    }
  }
  PDEQ_ASSERT_THROWS_WITH(models::make_graph_model("gat", {}), "must be one of pde_gcn, pde_gcn_nonsym, gcn");
}

TEST_F(GraphTest, GcnMatchesTheDenseFormula) {
  const auto g = small_graph();
  models::Gcn gcn(models::GcnOptions(5, 3).hidden(4));
  gcn->eval();
  const auto x = sparse_features(7, 5);
  models::ActivationTrace trace;
  const auto out = gcn->forward_traced(x, g, &trace);
  const auto a = dense_gcn_matrix().to(torch::kFloat);
  const auto h = torch::relu(torch::mm(a, torch::mm(x.to_dense(), gcn->weights[0])) + gcn->biases[0]);
  const auto expected = torch::mm(a, torch::mm(h, gcn->weights[1])) + gcn->biases[1];
  EXPECT_TRUE(torch::allclose(out, expected, 1e-5, 1e-5));
  EXPECT_EQ(trace.names, (std::vector<std::string>{"layer0", "layer1"}));
}

TEST_F(GraphTest, GcnOnDenseAndSparseFeaturesAgree) {
  const auto g = small_graph();
  models::Gcn gcn(models::GcnOptions(5, 3).hidden(4));
  gcn->eval();
  const auto x = sparse_features(7, 5);
  EXPECT_TRUE(torch::allclose(gcn->forward(x, g), gcn->forward(x.to_dense(), g), 1e-6, 1e-6));
}

}  // namespace
}  // namespace pdeq::test
