// The optimiser factory: SGD, Adam and AdamW with scale, layer and undecayed parameter groups.
#include <pdeq/models/pde_gcn.h>
#include <pdeq/train/optimizer.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "test_support.h"

namespace pdeq {
namespace {

TEST(OptimizerTest, GroupsInOrderOfPrecedenceWithTheirOwnLrAndDecay) {
  models::PdeGcn net(models::PdeGcnOptions(10, 3).channels(4).layers(2).act_quant(
      quant::FakeQuantizeOptions(quant::QuantTarget::kActivation).bits(4).midrise(true)));
  train::OptimizerOptions c;
  c.kind = train::OptimizerKind::kAdam;
  c.lr = 0.01;
  c.weight_decay = 5e-4;
  c.scale_group = {true, "", 1e-4, 0.0};
  c.layer_group = {true, "layers.", 1e-3, 0.0};
  auto optimizer = train::make_optimizer(*net, c);
  auto* adam = dynamic_cast<torch::optim::Adam*>(optimizer.get());
  ASSERT_NE(adam, nullptr);
  const auto& groups = adam->param_groups();
  ASSERT_EQ(groups.size(), 3u);  // opening/closing, K, scales
  auto options = [&](size_t i) { return static_cast<const torch::optim::AdamOptions&>(groups[i].options()); };
  // open_weight, open_bias, close_weight, close_bias
  EXPECT_EQ(groups[0].params().size(), 4u);
  EXPECT_DOUBLE_EQ(options(0).lr(), 0.01);
  EXPECT_DOUBLE_EQ(options(0).weight_decay(), 5e-4);
  EXPECT_EQ(groups[1].params().size(), 2u);  // K of each layer
  EXPECT_DOUBLE_EQ(options(1).lr(), 1e-3);
  EXPECT_DOUBLE_EQ(options(1).weight_decay(), 0.0);
  EXPECT_EQ(groups[2].params().size(), 6u);  // x, e and K quantizer scales of each layer
  EXPECT_EQ(groups[2].params()[0].dim(), 0);
  EXPECT_DOUBLE_EQ(options(2).lr(), 1e-4);
  // Group lr 0 means the optimiser's lr; AdamW keeps the configured (not its library default) decay.
  c.kind = train::OptimizerKind::kAdamW;
  c.scale_group.lr = 0.0;
  auto adamw = train::make_optimizer(*net, c);
  ASSERT_NE(dynamic_cast<torch::optim::AdamW*>(adamw.get()), nullptr);
  EXPECT_DOUBLE_EQ(adamw->param_groups()[2].options().get_lr(), 0.01);
  EXPECT_DOUBLE_EQ(
      static_cast<const torch::optim::AdamWOptions&>(adamw->param_groups()[0].options()).weight_decay(),
      5e-4);
}

TEST(OptimizerTest, SgdWithoutDecayOnScalesNormsAndBiases) {
  models::PdeGcn net(models::PdeGcnOptions(10, 3).channels(4).layers(2));
  train::OptimizerOptions c;
  c.decay_scales_norms_biases = false;
  c.nesterov = true;
  auto optimizer = train::make_optimizer(*net, c);
  auto* sgd = dynamic_cast<torch::optim::SGD*>(optimizer.get());
  ASSERT_NE(sgd, nullptr);
  ASSERT_EQ(sgd->param_groups().size(), 2u);  // decayed matrices, undecayed vectors and scalars
  const auto& undecayed = static_cast<const torch::optim::SGDOptions&>(sgd->param_groups()[1].options());
  EXPECT_EQ(undecayed.weight_decay(), 0.0);
  EXPECT_TRUE(undecayed.nesterov());
  for (const auto& p : sgd->param_groups()[1].params()) EXPECT_LE(p.dim(), 1);
  for (const auto& p : sgd->param_groups()[0].params()) EXPECT_GE(p.dim(), 2);
}

}  // namespace
}  // namespace pdeq
