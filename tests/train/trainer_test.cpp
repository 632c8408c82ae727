// End-to-end behaviour of the training loop on a tiny on-disk CIFAR-format dataset.
#include <pdeq/models/registry.h>
#include <pdeq/train/checkpoint.h>
#include <pdeq/train/from_config.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/run.h>
#include <pdeq/train/run_dir.h>
#include <pdeq/train/stop_signal.h>

#include "train_fixtures.h"

namespace fs = std::filesystem;

namespace {

struct TrainerTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"trainer"};
  fs::path data = scratch.path() / "data";
  void SetUp() override {
    SeedingFixture::SetUp();
    fs::create_directories(data);
    pdeq::test::write_tiny_cifar10(data, 32);  // 160 train (64 val), 32 test
    pdeq::train::clear_stop_request();
  }
};

std::vector<torch::Tensor> final_parameters(const fs::path& run) {
  const auto config = pdeq::config::load_config((run / "config.json").string());
  const auto& info = pdeq::data::dataset_info(config.data.dataset);
  auto model = pdeq::models::make_model(config.model.name, pdeq::train::model_options(config, info));
  pdeq::train::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
  return model->parameters();
}

}  // namespace

TEST_F(TrainerTest, WritesTheRunFolder) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  const auto result = pdeq::train::train_run(config, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  pdeq::train::RunDirectory run(scratch.path() / "run");
  EXPECT_TRUE(run.finished());
  EXPECT_TRUE(fs::exists(run.best_checkpoint()));
  EXPECT_TRUE(fs::exists(run.curves_path()));
  const auto rows = run.read_metrics();
  ASSERT_EQ(rows.size(), 2u);
  for (const char* key : {"epoch", "lr", "weight_bits", "act_bits", "train_loss", "train_acc", "val_loss",
                          "val_acc", "images_per_second", "seconds"}) {
    EXPECT_TRUE(rows[0].contains(key)) << key;
  }
  EXPECT_EQ(rows[1]["weight_bits"], 4);
  const auto summary = run.read_json(run.summary_path());
  for (const char* key : {"test_accuracy", "best_epoch", "params", "wall_seconds"}) {
    EXPECT_TRUE(summary.contains(key)) << key;
  }
  EXPECT_GE(summary["test_accuracy"].get<double>(), 0.0);
  EXPECT_LE(summary["test_accuracy"].get<double>(), 1.0);
  EXPECT_EQ(pdeq::config::to_json(pdeq::config::load_config(run.config_path().string())),
            pdeq::config::to_json(config));
  // A finished run is never overwritten by accident.
  PDEQ_ASSERT_THROWS_WITH(pdeq::train::train_run(config, scratch.path() / "run"), "--force");
  PDEQ_ASSERT_THROWS_WITH(pdeq::train::resume_run(scratch.path() / "run"), "already finished");
}

TEST_F(TrainerTest, ResumedRunEqualsUninterruptedRun) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.quant.schedule.enabled = true;  // bits change between the epochs: 5 then 4
  config.quant.schedule.start_bits = 5;
  config.quant.schedule.period_epochs = 1;
  ASSERT_TRUE(pdeq::train::train_run(config, scratch.path() / "whole").finished);

  // Interrupted mid-epoch 1, then again at the end of epoch 1, then finished.
  EXPECT_FALSE(pdeq::train::train_run(config, scratch.path() / "pieces", {false, 2}).finished);
  EXPECT_FALSE(pdeq::train::resume_run(scratch.path() / "pieces", {false, 1}).finished);
  EXPECT_TRUE(pdeq::train::resume_run(scratch.path() / "pieces").finished);

  const auto whole = final_parameters(scratch.path() / "whole");
  const auto pieces = final_parameters(scratch.path() / "pieces");
  ASSERT_EQ(whole.size(), pieces.size());
  for (size_t i = 0; i < whole.size(); ++i)
    EXPECT_TRUE(torch::equal(whole[i], pieces[i])) << "parameter " << i;
  pdeq::train::RunDirectory a(scratch.path() / "whole"), b(scratch.path() / "pieces");
  const auto rows_a = a.read_metrics(), rows_b = b.read_metrics();
  ASSERT_EQ(rows_a.size(), rows_b.size());
  for (size_t i = 0; i < rows_a.size(); ++i) {
    EXPECT_EQ(rows_a[i]["train_loss"], rows_b[i]["train_loss"]);
    EXPECT_EQ(rows_a[i]["val_acc"], rows_b[i]["val_acc"]);
    EXPECT_EQ(rows_a[i]["weight_bits"], rows_b[i]["weight_bits"]);
  }
  EXPECT_EQ(a.read_json(a.summary_path())["test_accuracy"], b.read_json(b.summary_path())["test_accuracy"]);
}

TEST_F(TrainerTest, StopRequestCheckpointsAndResumes) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.train.epochs = 1;
  pdeq::train::request_stop();  // as if Ctrl-C arrived during the first step
  EXPECT_FALSE(pdeq::train::train_run(config, scratch.path() / "run").finished);
  pdeq::train::clear_stop_request();
  pdeq::train::RunDirectory run(scratch.path() / "run");
  EXPECT_TRUE(run.has_checkpoint());
  EXPECT_FALSE(run.finished());
  EXPECT_TRUE(pdeq::train::resume_run(scratch.path() / "run").finished);
}

TEST_F(TrainerTest, CheckpointRoundTripGivesIdenticalEvaluation) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  const auto& info = pdeq::data::dataset_info("cifar10");
  auto model = pdeq::models::make_model("resnet20", pdeq::train::model_options(config, info));
  auto optimizer = pdeq::train::make_optimizer(*model, config.train);
  const auto x = torch::randn({4, 3, 32, 32});
  // One step so the optimizer has momentum buffers and BN running statistics moved.
  optimizer->zero_grad();
  model->forward(x).sum().backward();
  optimizer->step();
  model->eval();
  const auto expected = model->forward(x);
  pdeq::train::TrainingState state;
  state.epoch = 3;
  state.best_val_accuracy = 0.25;
  pdeq::train::save_checkpoint(scratch.path() / "c.pt", *model, optimizer.get(), state);

  torch::manual_seed(123);
  auto restored = pdeq::models::make_model("resnet20", pdeq::train::model_options(config, info));
  auto restored_optimizer = pdeq::train::make_optimizer(*restored, config.train);
  const auto loaded =
      pdeq::train::load_checkpoint(scratch.path() / "c.pt", *restored, restored_optimizer.get());
  restored->eval();
  EXPECT_TRUE(torch::equal(restored->forward(x), expected));
  EXPECT_EQ(loaded.epoch, 3);
  EXPECT_DOUBLE_EQ(loaded.best_val_accuracy, 0.25);
}

TEST_F(TrainerTest, EvaluateRunAtOtherBitWidths) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  ASSERT_TRUE(pdeq::train::train_run(config, scratch.path() / "run").finished);
  const auto at_4 = pdeq::train::evaluate_run(scratch.path() / "run");
  EXPECT_EQ(at_4["act_bits"], 4);
  EXPECT_EQ(at_4["samples"], 32);
  pdeq::train::RunDirectory run(scratch.path() / "run");
  EXPECT_EQ(at_4["accuracy"], run.read_json(run.summary_path())["test_accuracy"]);
  pdeq::train::EvalOptions full;
  full.act_bits = 32;
  EXPECT_EQ(pdeq::train::evaluate_run(scratch.path() / "run", full)["act_bits"], 32);
}

TEST_F(TrainerTest, MissingDataFailsBeforeTraining) {
  auto config = pdeq::test::tiny_cifar_config(scratch.path() / "nowhere");
  PDEQ_ASSERT_THROWS_WITH(pdeq::train::train_run(config, scratch.path() / "run"), "nowhere");
}
