// The graph models (PDE-GCN, GCN); the operators they use are tested in tests/nn/graph_ops_test.cpp.
#include "graph_support.h"
#include "test_support.h"

#include <pdeq/models/gcn.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/pde_gcn.h>
#include <pdeq/models/registry.h>
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

/// Two 6-channel layers on 10 features, 3 classes, 4-bit weights and mid-rise activations, dropout 0.1.
models::GraphModelOptions small_quantized_options() {
  models::GraphModelOptions o;
  o.in_features = 10;
  o.num_classes = 3;
  o.channels = 6;
  o.layers = 2;
  o.dropout = o.input_dropout = 0.1;
  o.act_quant = quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(4).midrise(true);
  o.weight_quant = quant::FakeQuantizeOptions(quant::QuantTarget::kWeight).bits(4);
  return o;
}

TEST_F(GraphTest, GradientsReachEveryParameter) {
  const auto g = small_graph();
  for (const std::string name : {"pde_gcn", "pde_gcn_nonsym", "gcn"}) {
    auto net = models::make_graph_model(name, small_quantized_options());
    net->train();
    net->forward(sparse_features(7, 10), g).square().sum().backward();
    for (const auto& p : net->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << name << " " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << name << " " << p.key();
    }
  }
  // The authors' placement: x unquantized, G x and e quantized, dropout on G x, no opening/closing biases.
  auto o = small_quantized_options();
  o.act_quant.init_alpha(0.5);
  o.quantize_input = false;
  o.quantize_gradient = true;
  o.dropout_on_edges = true;
  o.bias = false;
  auto net = models::make_graph_model("pde_gcn", o);
  net->train();
  net->forward(sparse_features(7, 10), g).square().sum().backward();
  std::vector<std::string> names;
  for (const auto& p : net->named_parameters()) {
    names.push_back(p.key());
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"open_weight", "close_weight", "layers.0.K",
                                             "layers.0.g_quant.alpha", "layers.0.e_quant.alpha",
                                             "layers.0.k_quant.alpha", "layers.1.K", "layers.1.g_quant.alpha",
                                             "layers.1.e_quant.alpha", "layers.1.k_quant.alpha"}));
  PDEQ_ASSERT_THROWS_WITH(models::make_graph_model("gat", {}),
                          "unknown graph model 'gat'; known graph models: pde_gcn, pde_gcn_nonsym, gcn");
}

/// One edge 0 - 1 (degrees 2 with the self-loops of A + I, so w = 1/2), x = [[1], [0]], K = 1, h = 1:
/// G x = 1/2 and the layer returns x - [[w s], [-w s]], s the edge activation after its quantizers.
nn::GraphOperator one_edge() {
  return nn::GraphOperator(torch::tensor({0, 1}, torch::kInt64).reshape({1, 2}), 2);
}

TEST_F(GraphTest, ReluEdgeActivationByHand) {
  const auto x = torch::tensor({1.0, 0.0}).reshape({2, 1});
  torch::NoGradGuard no_grad;
  for (const auto& [activation, s] : std::vector<std::pair<models::EdgeActivation, double>>{
           {models::EdgeActivation::kTanh, std::tanh(0.5)}, {models::EdgeActivation::kReLU, 0.5}}) {
    models::PdeGcnLayer layer(models::PdeGcnLayerOptions(1).activation(activation));
    const auto y = layer->forward(x, one_edge());
    EXPECT_TRUE(torch::allclose(y, torch::tensor({1 - 0.5 * s, 0.5 * s}).reshape({2, 1}), 1e-6, 1e-7)) << y;
  }
  // The other orientation: G x = -1/2, which the ReLU zeroes (no flux), while tanh(-1/2) diffuses.
  models::PdeGcnLayer relu(models::PdeGcnLayerOptions(1).activation(models::EdgeActivation::kReLU));
  EXPECT_TRUE(torch::equal(relu->forward(x.flip(0), one_edge()), x.flip(0)));
  std::ostringstream line;
  relu->pretty_print(line);
  EXPECT_EQ(line.str(), "pdeq::models::PdeGcnLayer(1, step_size=1, activation=relu)");
}

TEST_F(GraphTest, GradientQuantizerByHand) {
  // Only G x quantized, 2-bit mid-rise with a = 1 (levels +-1/3, +-1): G x = 1/2 -> 1/3, e = tanh(1/3).
  const auto act =
      quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(2).midrise(true).init_alpha(1.0);
  models::PdeGcnLayer layer(models::PdeGcnLayerOptions(1)
                                .act_quant(act)
                                .quantize_input(false)
                                .quantize_gradient(true)
                                .quantize_edges(false));
  EXPECT_FALSE(layer->x_quant);
  EXPECT_FALSE(layer->e_quant);
  ASSERT_TRUE(layer->g_quant);
  torch::NoGradGuard no_grad;
  const auto y = layer->forward(torch::tensor({1.0, 0.0}).reshape({2, 1}), one_edge());
  const double flux = 0.5 * std::tanh(1.0 / 3.0);
  EXPECT_TRUE(torch::allclose(y, torch::tensor({1 - flux, flux}).reshape({2, 1}), 1e-6, 1e-7)) << y;
  // Parameters: K and the scales of the G x and K quantizers.
  EXPECT_EQ(layer->named_parameters().size(), 3u);
  std::ostringstream line;
  layer->pretty_print(line);
  EXPECT_EQ(line.str(),
            "pdeq::models::PdeGcnLayer(1, step_size=1, quantize_input=false, quantize_gradient=true, "
            "quantize_edges=false)");
}

TEST_F(GraphTest, EdgeDropoutDropsEdgesNotNodes) {
  // Equal features at both ends: G x = 0 on the edge, so dropping entries of G x changes nothing, while
  // dropping a node's entry makes a difference on the edge and moves both nodes.
  const auto x = torch::ones({2, 64});
  for (const bool on_edges : {false, true}) {
    models::PdeGcnLayer layer(models::PdeGcnLayerOptions(64).dropout(0.5).dropout_on_edges(on_edges));
    layer->train();
    torch::NoGradGuard no_grad;
    const auto y = layer->forward(x, one_edge());
    if (on_edges) {
      EXPECT_TRUE(torch::equal(y, x));
    } else {
      EXPECT_GT((y - x).abs().max().item<double>(), 0.1);
    }
    layer->eval();
    EXPECT_TRUE(torch::equal(layer->forward(x, one_edge()), x));
  }
}

TEST_F(GraphTest, PdeGcnWithoutBiasesAndWithGlorotInit) {
  models::PdeGcn net(
      models::PdeGcnOptions(30, 4).channels(10).layers(1).bias(false).init(models::GraphInit::kGlorot));
  EXPECT_FALSE(net->open_bias.defined());
  EXPECT_FALSE(net->close_bias.defined());
  // open_weight, close_weight, K and the scales of the x, e and K quantizers.
  EXPECT_EQ(net->named_parameters().size(), 6u);
  // U(-a, a), a = sqrt(6 / (fan_in + fan_out)): 0.3922 for 30 -> 10, 0.6547 for 10 -> 4.
  const double open_bound = std::sqrt(6.0 / 40.0), close_bound = std::sqrt(6.0 / 14.0);
  EXPECT_LE(net->open_weight.abs().max().item<double>(), open_bound);
  EXPECT_GT(net->open_weight.abs().max().item<double>(), 0.9 * open_bound);
  EXPECT_LE(net->close_weight.abs().max().item<double>(), close_bound);
  net->eval();
  const auto features = sparse_features(7, 30);
  models::ActivationTrace trace;
  const auto logits = net->forward_traced(features, small_graph(), &trace);
  EXPECT_TRUE(torch::allclose(logits, torch::mm(trace.activations[0], net->close_weight.t()), 1e-5, 1e-6));
  // With the Linear initialisation and biases, the default draws: weight then bias, opening then closing.
  torch::manual_seed(3);
  models::PdeGcn with_bias(models::PdeGcnOptions(30, 4).channels(10).layers(1));
  torch::manual_seed(3);
  const auto w = torch::empty({10, 30}).uniform_(-1 / std::sqrt(30.0), 1 / std::sqrt(30.0));
  const auto b = torch::empty({10}).uniform_(-1 / std::sqrt(30.0), 1 / std::sqrt(30.0));
  EXPECT_TRUE(torch::equal(with_bias->open_weight, w));
  EXPECT_TRUE(torch::equal(with_bias->open_bias, b));
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
