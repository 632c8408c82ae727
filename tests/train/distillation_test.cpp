// Distillation training: two networks of shared weights, the loss of the reference, exact resume.
#include <pdeq/commands/eval.h>
#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/train/distillation.h>

#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <cmath>

#include "train_support.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using pdeq::train::DistillationOptions;
using pdeq::train::DistillationState;

namespace {

constexpr int64_t kHighBits = 8;

/// A W4A4 ResNet-20 of the tiny config (random weights).
pdeq::models::Classifier tiny_model() {
  auto config = pdeq::test::tiny_cifar_config("unused");
  return pdeq::models::make_model(
      config.model.name,
      pdeq::experiment::model_options(config, pdeq::data::dataset_info(config.data.dataset)));
}

/// Copies every parameter and buffer of `from` that `to` has (by name) into `to`.
void copy_state(torch::nn::Module& from, torch::nn::Module& to) {
  const torch::NoGradGuard no_grad;
  const auto params = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(params[item.key()]);
  const auto buffers = from.named_buffers();
  for (auto& item : to.named_buffers()) item.value().copy_(buffers[item.key()]);
}

/// A separate model that is the high-precision network of `model` with `state`: the same weights, the
/// state's activation scales and BN statistics, activations at kHighBits.
pdeq::models::Classifier high_copy(torch::nn::Module& model, pdeq::train::DistillationStateImpl& state) {
  auto copy = tiny_model();
  copy_state(model, *copy);
  const torch::NoGradGuard no_grad;
  auto quantizers = pdeq::train::model_activation_quantizers(*copy);
  for (size_t i = 0; i < quantizers.size(); ++i) {
    quantizers[i]->alpha.copy_(state.activations[i]->alpha);
    quantizers[i]->set_bits(kHighBits);
  }
  auto norms = pdeq::train::model_batch_norms(*copy);
  for (size_t i = 0; i < norms.size(); ++i) {
    norms[i]->running_mean.copy_(state.running_mean[i]);
    norms[i]->running_var.copy_(state.running_var[i]);
  }
  return copy;
}

/// The reference's activation loss written out element by element.
double reference_activation_loss(const std::vector<torch::Tensor>& high,
                                 const std::vector<torch::Tensor>& low, int64_t low_bits) {
  double sum = 0;
  for (size_t l = 0; l < high.size(); ++l) {
    const double lambda = high[l].abs().max().item<double>() / (std::pow(2.0, low_bits) - 1);
    const auto d = (high[l] - low[l]).to(torch::kDouble);
    sum += (d.sign() * (d.abs() - lambda).clamp_min(0)).pow(2).sum().item<double>();
  }
  return sum / static_cast<double>(high.size());
}

struct DistillationTest : pdeq::test::SeedingFixture {
  pdeq::models::Classifier model = tiny_model();
  DistillationState state{nullptr};
  torch::Tensor images, labels;
  void SetUp() override {
    SeedingFixture::SetUp();
    model = tiny_model();
    state = DistillationState(*model);
    model->register_module("distillation_high", state);
    // The two networks start apart, as after some training.
    const torch::NoGradGuard no_grad;
    for (auto& q : state->activations) q->alpha.mul_(1.5);
    images = torch::randn({8, 3, 32, 32});
    labels = torch::randint(0, 10, {8});
  }
};

}  // namespace

TEST_F(DistillationTest, WeightsAreSharedAndOnlyActivationScalesAreDuplicated) {
  auto plain = tiny_model();
  const auto quantizers = pdeq::train::model_activation_quantizers(*model);
  ASSERT_FALSE(quantizers.empty());
  EXPECT_EQ(model->parameters().size(), plain->parameters().size() + quantizers.size());
  EXPECT_EQ(state->running_mean.size(), pdeq::train::model_batch_norms(*model).size());

  // One optimizer step on the loss changes the one set of weights both networks compute with: each network
  // still equals a separate model built from those weights and its own scales.
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  const DistillationOptions options{kHighBits, 1e-5};
  const auto before = pdeq::train::distillation_loss(*model, *state, images, labels, options);
  sgd.zero_grad();
  before.total.backward();
  sgd.step();

  model->eval();
  const torch::NoGradGuard no_grad;
  const auto low = model->forward(images);
  torch::Tensor high;
  {
    const pdeq::train::HighPrecisionScope scope(*model, *state, kHighBits);
    high = model->forward(images);
  }
  auto low_copy = tiny_model();
  copy_state(*model, *low_copy);
  low_copy->eval();
  auto high_model = high_copy(*model, *state);
  high_model->eval();
  EXPECT_TRUE(torch::allclose(low, low_copy->forward(images), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(high, high_model->forward(images), 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(low, high, 1e-3, 1e-3));
  // The scope restored the low-precision network: its bits and its own alphas.
  for (const auto& q : quantizers) EXPECT_EQ(q->bits(), 4);
  EXPECT_FALSE(torch::equal(quantizers[0]->alpha, state->activations[0]->alpha));
}

TEST_F(DistillationTest, LossEqualsItsFormula) {
  const double c = 0.01;
  const auto loss = pdeq::train::distillation_loss(*model, *state, images, labels, {kHighBits, c});

  auto low_copy = tiny_model();
  copy_state(*model, *low_copy);
  auto high_model = high_copy(*model, *state);
  const torch::NoGradGuard no_grad;
  pdeq::models::ActivationTrace high_trace, low_trace;
  const auto high_logits = high_model->forward_traced(images, &high_trace);
  const auto low_logits = low_copy->forward_traced(images, &low_trace);
  const double ce_high = F::cross_entropy(high_logits, labels).item<double>();
  const double ce_low = F::cross_entropy(low_logits, labels).item<double>();
  const double act = reference_activation_loss(pdeq::train::stage_outputs(high_trace),
                                               pdeq::train::stage_outputs(low_trace), 4);
  EXPECT_EQ(pdeq::train::stage_outputs(high_trace).size(), 3u);  // ResNet-20's three stages
  EXPECT_GT(act, 0.0);
  EXPECT_NEAR(loss.ce_high.item<double>(), ce_high, 1e-5);
  EXPECT_NEAR(loss.ce_low.item<double>(), ce_low, 1e-5);
  EXPECT_NEAR(loss.activation.item<double>(), act, 1e-4 * act);
  EXPECT_NEAR(loss.total.item<double>(), ce_high + ce_low + c * act, 1e-4);
}

TEST_F(DistillationTest, GradientsReachBothScaleSetsAndTheSharedWeights) {
  const auto loss = pdeq::train::distillation_loss(*model, *state, images, labels, {kHighBits, 1e-5});
  loss.total.backward();
  const auto nonzero = [](const torch::Tensor& p) {
    return p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
  };
  int low_alphas = 0, high_alphas = 0;
  for (const auto& q : pdeq::train::model_activation_quantizers(*model)) low_alphas += nonzero(q->alpha);
  for (const auto& q : state->activations) high_alphas += nonzero(q->alpha);
  EXPECT_GT(low_alphas, 0);
  EXPECT_GT(high_alphas, 0);
  int weights = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.value().dim() == 4) {
      EXPECT_TRUE(nonzero(item.value())) << item.key();
      ++weights;
    }
  }
  EXPECT_GT(weights, 0);

  // The shared weights get the gradient of both passes: the low pass alone gives another one.
  const auto conv = model->parameters().front();
  const auto both = conv.grad().clone();
  model->zero_grad();
  pdeq::train::distillation_loss(*model, *state, images, labels, {kHighBits, 0.0}).ce_low.backward();
  EXPECT_FALSE(torch::allclose(both, conv.grad()));
}

TEST(DistillationConfig, GraphDatasetsAndFloatActivationsAreConfigErrors) {
  pdeq::config::Config config;
  config.train.distillation.enabled = true;
  config.quant.act_bits = 4;
  config.data.dataset = "cora";
  config.model.name = "gcn";
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(config), "image classifiers only");
  config.data.dataset = "cifar10";
  config.model.name = "resnet20";
  pdeq::experiment::validate_config(config);
  config.train.distillation.high_bits = 4;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(config), "train.distillation.high_bits");
  config.train.distillation.high_bits = 32;
  config.quant.act_bits = 32;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(config), "quant.act_bits");
  config.quant.act_bits = 4;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_distributed(config, 2), "one process");
  const auto parsed =
      pdeq::config::load_config(pdeq::test::source_dir() + "/configs/cifar10_resnet20_w4a4.json",
                                {"train.distillation.enabled=true", "train.distillation.high_bits=8",
                                 "train.distillation.activation_loss=0.001"});
  EXPECT_TRUE(parsed.train.distillation.enabled);
  EXPECT_EQ(parsed.train.distillation.high_bits, 8);
  EXPECT_EQ(parsed.train.distillation.activation_loss, 0.001);
}

namespace {

struct DistillationRunTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"distillation"};
  fs::path data = scratch.path() / "data";
  void SetUp() override {
    SeedingFixture::SetUp();
    fs::create_directories(data);
    pdeq::test::write_tiny_cifar10(data, 32);
    pdeq::run::clear_stop_request();
  }
  pdeq::config::Config config() const {
    auto c = pdeq::test::tiny_cifar_config(data);
    c.train.distillation.enabled = true;
    c.train.distillation.high_bits = kHighBits;
    c.train.distillation.activation_loss = 1e-3;
    return c;
  }
};

/// Every parameter and buffer of a run's last checkpoint, loaded into the task a distillation run trains.
std::vector<torch::Tensor> final_state(const fs::path& run) {
  const auto config = pdeq::config::load_config((run / "config.json").string());
  auto task = pdeq::experiment::make_task(config, torch::kCPU);
  pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", task->module(), nullptr);
  auto tensors = task->module().parameters();
  for (const auto& b : task->module().buffers()) tensors.push_back(b);
  return tensors;
}

}  // namespace

TEST_F(DistillationRunTest, ResumedRunEqualsUninterruptedRun) {
  const auto c = config();
  ASSERT_TRUE(pdeq::experiment::train_run(c, scratch.path() / "whole").finished);
  EXPECT_FALSE(pdeq::experiment::train_run(c, scratch.path() / "pieces", {false, 2}).finished);
  EXPECT_FALSE(pdeq::experiment::resume_run(scratch.path() / "pieces", {false, 1}).finished);
  EXPECT_TRUE(pdeq::experiment::resume_run(scratch.path() / "pieces").finished);

  const auto whole = final_state(scratch.path() / "whole");
  const auto pieces = final_state(scratch.path() / "pieces");
  ASSERT_EQ(whole.size(), pieces.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_TRUE(torch::equal(whole[i], pieces[i])) << "tensor " << i;

  pdeq::run::RunDirectory a(scratch.path() / "whole"), b(scratch.path() / "pieces");
  const auto rows_a = a.read_metrics(), rows_b = b.read_metrics();
  ASSERT_EQ(rows_a.size(), 2u);
  ASSERT_EQ(rows_a.size(), rows_b.size());
  for (size_t i = 0; i < rows_a.size(); ++i) {
    for (const char* key : {"train_loss", "train_acc", "val_acc", "train_loss_high", "train_loss_low",
                            "train_activation_loss", "train_acc_high", "val_acc_high", "val_loss_high"}) {
      ASSERT_TRUE(rows_a[i].contains(key)) << key;
      EXPECT_EQ(rows_a[i][key], rows_b[i][key]) << key << " epoch " << i + 1;
    }
    // The total is the sum of its parts.
    const double parts = rows_a[i]["train_loss_high"].get<double>() +
                         rows_a[i]["train_loss_low"].get<double>() +
                         1e-3 * rows_a[i]["train_activation_loss"].get<double>();
    EXPECT_NEAR(rows_a[i]["train_loss"].get<double>(), parts, 1e-6 * parts);
  }
  const auto summary_a = a.read_json(a.summary_path()), summary_b = b.read_json(b.summary_path());
  EXPECT_EQ(summary_a["test_accuracy"], summary_b["test_accuracy"]);
  EXPECT_EQ(summary_a["test_accuracy_high"], summary_b["test_accuracy_high"]);
  EXPECT_EQ(summary_a["distillation"]["high_bits"], kHighBits);
}

TEST_F(DistillationRunTest, EvalOfARunIsTheLowPrecisionNetwork) {
  const auto c = config();
  const auto result = pdeq::experiment::train_run(c, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  ASSERT_TRUE(result.summary.contains("test_accuracy_high"));

  pdeq::commands::EvalOptions options;
  options.run = scratch.path() / "run";
  const auto eval = pdeq::commands::eval(options);
  EXPECT_DOUBLE_EQ(eval.accuracy, result.summary["test_accuracy"].get<double>());

  // A plain image task (what export builds) reads the best checkpoint as the low-precision network.
  auto plain = pdeq::experiment::make_image_task(c, torch::kCPU);
  pdeq::run::load_checkpoint(scratch.path() / "run" / "checkpoints" / "best.pt", plain->module(), nullptr);
  const auto test = plain->evaluate(pdeq::train::EvalSplit::kTest);
  EXPECT_DOUBLE_EQ(test.accuracy, result.summary["test_accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(test.loss, result.summary["test_loss"].get<double>());
}
