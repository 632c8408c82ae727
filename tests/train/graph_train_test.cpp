// Node classification through the one Trainer: optimizer groups, intervals, early stopping, seeds, resume,
// the per-layer trace, and a short real Cora run that must clearly learn.
#include <pdeq/commands/analyze_tv.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/pde_gcn.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/train/lr_schedule.h>
#include <pdeq/train/node_classification.h>
#include <pdeq/train/optimizer.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

#include "plot_support.h"
#include "test_support.h"

#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace pdeq::test {
namespace {

bool has_cora() { return fs::exists(shared_data("planetoid/cora/cora.feat.indptr.i64")); }

#define PDEQ_REQUIRE_CORA() \
  if (!has_cora()) GTEST_SKIP() << "Cora not found at " << shared_data("planetoid/cora")

/// A small, quick PDE-GCN on Cora: 16 channels, 4 layers, 4-bit mid-rise activations, Adam with groups.
config::Config small_cora_config() {
  config::Config c;
  c.source = "small-cora";
  c.data.dataset = "cora";
  c.data.root = shared_data("planetoid");
  c.model.name = "pde_gcn";
  c.model.graph.channels = 16;
  c.model.graph.layers = 4;
  c.model.step_size = 0.5;
  c.quant.act_bits = 4;
  c.quant.midrise_activations = true;
  // Opening outputs of row-normalised features are ~0.01-0.1: a clipping scale of 6 would put every value on
  // the +-6/15 levels of the 4-bit mid-rise grid.
  c.quant.act_alpha_init = 0.1;
  c.train.optimizer = config::Optimizer::kAdam;
  c.train.lr = 0.01;
  c.train.weight_decay = 5e-4;
  c.train.lr_schedule = config::LrSchedule::kConstant;
  c.train.scale_group.enabled = true;
  c.train.scale_group.lr = 1e-4;
  c.train.layer_group.enabled = true;
  c.train.layer_group.prefix = "layers.";
  c.train.layer_group.lr = 1e-3;
  c.train.epochs = 60;
  c.train.threads = 1;  // full-batch graph steps are small: on a shared 2-core machine one thread is fastest
  c.train.log_every = 1000;
  return c;
}

struct GraphTrainTest : SeedingFixture {
  TempDir scratch{"graph_train"};
  void SetUp() override {
    SeedingFixture::SetUp();
    run::clear_stop_request();
  }
};

TEST_F(GraphTrainTest, ScheduleScalesEveryGroupsOwnBaseLr) {
  models::PdeGcn net(models::PdeGcnOptions(10, 3).channels(4).layers(2));
  auto optimizer = train::make_optimizer(*net, experiment::optimizer_options(small_cora_config().train));
  const auto base = train::learning_rates(*optimizer);
  ASSERT_EQ(base.size(), 3u);
  train::scale_learning_rates(*optimizer, base, 0.25);
  const auto scaled = train::learning_rates(*optimizer);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_DOUBLE_EQ(scaled[i], base[i] * 0.25);
  PDEQ_ASSERT_THROWS_WITH(train::scale_learning_rates(*optimizer, {1.0}, 1.0),
                          "base_lrs must have one entry per parameter group (3), but got 1");
}

TEST_F(GraphTrainTest, GraphDatasetNeedsAGraphModel) {
  auto c = small_cora_config();
  c.model.name = "resnet20";
  PDEQ_ASSERT_THROWS_WITH(
      experiment::validate_config(c),
      "small-cora: model.name: expected one of pde_gcn, pde_gcn_nonsym, gcn for dataset cora, "
      "got \"resnet20\"");
  c.data.dataset = "pubmed";
  c.model.name = "pde_gcn";
  if (!fs::exists(shared_data("planetoid/pubmed/pubmed.feat.indptr.i64"))) {
    PDEQ_ASSERT_THROWS_WITH(experiment::make_task(c, torch::kCPU),
                            "pubmed.feat.indptr.i64: feature file not found");
  }
}

TEST_F(GraphTrainTest, SmallPdeGcnLearnsCora) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  c.train.eval_every = 2;
  c.train.metrics_every = 10;
  c.train.checkpoint_every = 20;
  c.train.plot_every = 30;
  c.train.epochs = 120;
  const auto result = experiment::train_run(c, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  // 7 classes, the largest holds 30% of the nodes: a 4-bit 16-channel PDE-GCN after 120 epochs is far above.
  EXPECT_GT(result.summary["test_accuracy"].get<double>(), 0.6) << result.summary.dump(2);
  EXPECT_EQ(result.summary["test_samples"].get<int64_t>(), 1000);
  EXPECT_EQ(result.summary["act_bits"].get<int64_t>(), 4);
  // Evaluated epochs (every 2nd) all have a row; the best epoch is one of them.
  const auto rows = run::RunDirectory(scratch.path() / "run").read_metrics();
  EXPECT_EQ(rows.size(), 60u);
  EXPECT_EQ(result.summary["best_epoch"].get<int64_t>() % 2, 0);
  pdeq::test::expect_plot(scratch.path() / "run" / "train_curves.png");
}

TEST_F(GraphTrainTest, EarlyStoppingOnValidation) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  c.train.lr = 1e-9;  // nothing changes: the first epoch stays the best
  c.train.scale_group.enabled = c.train.layer_group.enabled = false;
  c.train.patience = 5;
  c.model.graph.dropout = c.model.graph.input_dropout = 0.0;
  const auto result = experiment::train_run(c, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  EXPECT_TRUE(result.summary["early_stopped"].get<bool>());
  EXPECT_EQ(result.summary["best_epoch"].get<int64_t>(), 1);
  EXPECT_EQ(result.summary["epochs_run"].get<int64_t>(), 6);
}

TEST_F(GraphTrainTest, SeedsGiveMeanAndStd) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  c.train.epochs = 5;
  experiment::RunOptions options;
  options.seeds = 3;
  const auto result = experiment::train_run(c, scratch.path() / "run", options);
  ASSERT_TRUE(result.finished);
  const auto accs = result.summary["test_accuracies"].get<std::vector<double>>();
  ASSERT_EQ(accs.size(), 3u);
  const double mean = (accs[0] + accs[1] + accs[2]) / 3;
  double var = 0;
  for (double a : accs) var += (a - mean) * (a - mean);
  EXPECT_NEAR(result.summary["test_accuracy"].get<double>(), mean, 1e-12);
  EXPECT_NEAR(result.summary["test_accuracy_std"].get<double>(), std::sqrt(var / 2), 1e-12);
  for (int i = 0; i < 3; ++i) {
    const auto seed_config =
        config::load_config((scratch.path() / "run" / ("seed" + std::to_string(i)) / "config.json").string());
    EXPECT_EQ(seed_config.train.seed, static_cast<uint64_t>(i));
    EXPECT_EQ(seed_config.train.seeds, 1);
  }
  // Different seeds, different initialisation and dropout (5 epochs: the accuracies may still coincide).
  const auto& runs = result.summary["runs"];
  EXPECT_NE(runs[0]["test_loss"].get<double>(), runs[1]["test_loss"].get<double>());
}

TEST_F(GraphTrainTest, ResumedRunEqualsUninterruptedRun) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  c.train.epochs = 12;
  c.train.checkpoint_every = 1;
  const auto whole = experiment::train_run(c, scratch.path() / "whole");
  experiment::RunOptions stop_early;
  stop_early.max_steps = 5;
  ASSERT_FALSE(experiment::train_run(c, scratch.path() / "parts", stop_early).finished);
  const auto resumed = experiment::resume_run(scratch.path() / "parts");
  ASSERT_TRUE(resumed.finished);
  EXPECT_EQ(whole.summary["test_accuracy"], resumed.summary["test_accuracy"]);
  EXPECT_EQ(whole.summary["best_epoch"], resumed.summary["best_epoch"]);
  EXPECT_EQ(run::RunDirectory(scratch.path() / "whole").read_metrics().size(),
            run::RunDirectory(scratch.path() / "parts").read_metrics().size());
}

TEST_F(GraphTrainTest, TraceComparesQuantizedAndFullPrecisionLayerByLayer) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  const auto task_ptr = experiment::make_task(c, torch::kCPU);
  auto& task = dynamic_cast<train::NodeClassificationTask&>(*task_ptr);
  quant::QuantizerSet quantizers(task.module());
  int batches = 0;
  std::map<int64_t, std::vector<double>> errors;  // by activation bits, per layer
  task.for_each_eval_batch(train::EvalSplit::kTest, [&](const train::Task::TraceFn& run) {
    ++batches;
    models::ActivationTrace full;
    quantizers.set_activation_bits(32);
    run(full);
    ASSERT_EQ(full.names, (std::vector<std::string>{"layer0", "layer1", "layer2", "layer3"}));
    for (const int64_t bits : {2, 4, 8}) {
      models::ActivationTrace quantized;
      quantizers.set_activation_bits(bits);
      run(quantized);
      ASSERT_EQ(quantized.names, full.names);
      for (size_t i = 0; i < full.activations.size(); ++i) {
        EXPECT_EQ(full.activations[i].sizes(), (std::vector<int64_t>{2708, 16}));
        errors[bits].push_back(
            ((quantized.activations[i] - full.activations[i]).norm() / full.activations[i].norm())
                .item<double>());
      }
    }
  });
  EXPECT_EQ(batches, 1);
  // Finer grids, smaller per-layer errors (same weights, eval mode: the passes differ only in the
  // quantizers).
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GT(errors[8][i], 0.0) << "layer " << i;
    EXPECT_LT(errors[8][i], errors[4][i]) << "layer " << i;
    EXPECT_LT(errors[4][i], errors[2][i]) << "layer " << i;
  }
}

TEST_F(GraphTrainTest, QuantizerReportOfAGraphRun) {
  PDEQ_REQUIRE_CORA();
  auto c = small_cora_config();
  c.train.epochs = 3;
  ASSERT_TRUE(experiment::train_run(c, scratch.path() / "run").finished);
  commands::AnalyzeTVOptions tv;
  tv.run = scratch.path() / "run";
  tv.out = scratch.path() / "analysis";
  const auto report = commands::analyze_tv(tv).report;
  // Per layer: the state's quantizer and the edge activation's, in module order.
  ASSERT_EQ(report["layers"].size(), 8u) << report.dump(2);
  EXPECT_EQ(report["layers"][0]["layer"], "layers.0.x_quant");
  EXPECT_EQ(report["layers"][1]["layer"], "layers.0.e_quant");
  for (const auto& row : report["layers"]) {
    EXPECT_EQ(row["bits"].get<int64_t>(), 4);
    EXPECT_GT(row["alpha"].get<double>(), 0.0);
    EXPECT_LE(row["min"].get<double>(), row["max"].get<double>());
    // Mid-rise grids clip symmetrically: a value is clipped only outside [-alpha, alpha].
    const double alpha = row["alpha"].get<double>();
    if (row["min"].get<double>() >= -alpha && row["max"].get<double>() <= alpha) {
      EXPECT_EQ(row["clipped_fraction"].get<double>(), 0.0) << row.dump();
    }
    EXPECT_GT(row["quant_mse"].get<double>(), 0.0);
  }
  EXPECT_TRUE(fs::exists(scratch.path() / "analysis" / "quant_mse.csv"));
  tv.layer = "layers.0.x_quant";
  EXPECT_THROW(commands::analyze_tv(tv), c10::ValueError);
}

}  // namespace
}  // namespace pdeq::test
