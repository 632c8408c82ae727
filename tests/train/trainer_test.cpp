// End-to-end behaviour of the training loop on a tiny on-disk CIFAR-format dataset.
#include <pdeq/commands/bench_train.h>
#include <pdeq/commands/eval.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/loader.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/models/registry.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/run_lock.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/run/tensorboard.h>
#include <pdeq/train/optimizer.h>

#include <torch/nn/functional/loss.h>

#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>

#include "plot_support.h"
#include "train_support.h"

namespace fs = std::filesystem;

namespace {

/// `pdeq eval --run DIR` as a library call.
pdeq::commands::EvalResult eval_run(const std::filesystem::path& run) {
  pdeq::commands::EvalOptions options;
  options.run = run;
  return pdeq::commands::eval(options);
}

struct TrainerTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"trainer"};
  fs::path data = scratch.path() / "data";
  void SetUp() override {
    SeedingFixture::SetUp();
    fs::create_directories(data);
    pdeq::test::write_tiny_cifar10(data, 32);  // 160 train (64 val), 32 test
    pdeq::run::clear_stop_request();
  }
};

std::vector<torch::Tensor> final_parameters(const fs::path& run) {
  const auto config = pdeq::config::load_config((run / "config.json").string());
  const auto& info = pdeq::data::dataset_info(config.data.dataset);
  auto model = pdeq::models::make_model(config.model.name, pdeq::experiment::model_options(config, info));
  pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
  return model->parameters();
}

/// The training state stored in a run's last checkpoint.
pdeq::run::TrainingState last_state(const fs::path& run) {
  const auto config = pdeq::config::load_config((run / "config.json").string());
  const auto& info = pdeq::data::dataset_info(config.data.dataset);
  auto model = pdeq::models::make_model(config.model.name, pdeq::experiment::model_options(config, info));
  return pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
}

/// Every scalar of a run's event files: (tag, step) -> the values written for it, in file order.
std::map<std::pair<std::string, int64_t>, std::vector<float>> event_scalars(const fs::path& run) {
  std::map<std::pair<std::string, int64_t>, std::vector<float>> scalars;
  for (const auto& file : pdeq::run::event_files(run / "tensorboard")) {
    for (const auto& event : pdeq::run::read_event_file(file)) {
      if (event.scalar) scalars[{event.tag, event.step}].push_back(*event.scalar);
    }
  }
  return scalars;
}

}  // namespace

TEST_F(TrainerTest, WritesTheRunFolder) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  const auto result = pdeq::experiment::train_run(config, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  pdeq::run::RunDirectory run(scratch.path() / "run");
  EXPECT_TRUE(run.finished());
  EXPECT_TRUE(fs::exists(run.best_checkpoint()));
  pdeq::test::expect_plot(run.curves_path());
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
  // The summary agrees with the metrics and the checkpoints it came from.
  EXPECT_EQ(rows[0]["epoch"], 1);
  EXPECT_EQ(rows[1]["epoch"], 2);
  EXPECT_EQ(summary["epochs_run"], 2);
  EXPECT_EQ(summary["early_stopped"], false);
  const int best_epoch = summary["best_epoch"].get<int>();
  ASSERT_TRUE(best_epoch == 1 || best_epoch == 2) << best_epoch;
  // best = the first epoch with the highest validation accuracy (both epochs are at the final 4 bits).
  const double val1 = rows[0]["val_acc"].get<double>(), val2 = rows[1]["val_acc"].get<double>();
  EXPECT_EQ(best_epoch, val2 > val1 ? 2 : 1);
  EXPECT_EQ(summary["best_val_accuracy"], rows[best_epoch - 1]["val_acc"]);
  // Test accuracy: the best checkpoint on the 32 test images, a whole number of them.
  EXPECT_EQ(summary["test_samples"], 32);
  const double correct = summary["test_accuracy"].get<double>() * 32;
  EXPECT_DOUBLE_EQ(correct, std::round(correct));
  EXPECT_EQ(summary["test_accuracy"], eval_run(run.root()).report["accuracy"]);
  // resnet20, 10 classes: 272,474 weights + 38 clipping scales at W4A4 (README's table).
  EXPECT_EQ(summary["params"], 272474 + 38);
  EXPECT_EQ(summary["params_quantizer"], 38);
  EXPECT_EQ(summary["weight_bits"], 4);
  EXPECT_EQ(summary["act_bits"], 4);
  EXPECT_EQ(summary["model"], "resnet20");
  // Both checkpoints hold what they claim: last = after epoch 2, best = after the best epoch.
  EXPECT_EQ(last_state(run.root()).epoch, 2);
  pdeq::commands::EvalOptions best;
  best.run = run.root();
  best.checkpoint = "best";
  EXPECT_EQ(pdeq::commands::eval(best).report["epoch"], best_epoch);
  EXPECT_EQ(pdeq::config::to_json(pdeq::config::load_config(run.config_path().string())),
            pdeq::config::to_json(config));
  // A finished run is never overwritten by accident.
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::train_run(config, scratch.path() / "run"), "--force");
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::resume_run(scratch.path() / "run"), "already finished");
}

/// Trains `config` once uninterrupted and once in three sessions (stopped mid-epoch 1, then at the end of
/// epoch 1, then finished); both must end with the same parameters, metrics and test accuracy.
void expect_resume_equals_uninterrupted(pdeq::config::Config config, const fs::path& root) {
  config.quant.schedule.enabled = true;  // bits change between the epochs: 5 then 4
  config.quant.schedule.start_bits = 5;
  config.quant.schedule.period_epochs = 1;
  ASSERT_TRUE(pdeq::experiment::train_run(config, root / "whole").finished);

  EXPECT_FALSE(pdeq::experiment::train_run(config, root / "pieces", {false, 2}).finished);
  EXPECT_FALSE(pdeq::experiment::resume_run(root / "pieces", {false, 1}).finished);
  {
    // As if a session had trained epoch 2 and been killed before its checkpoint.
    pdeq::run::EventFileWriter orphan(root / "pieces" / "tensorboard");
    orphan.add_scalar("loss/train", 2, 123.0);
  }
  EXPECT_TRUE(pdeq::experiment::resume_run(root / "pieces").finished);

  const auto whole = final_parameters(root / "whole");
  const auto pieces = final_parameters(root / "pieces");
  ASSERT_EQ(whole.size(), pieces.size());
  for (size_t i = 0; i < whole.size(); ++i)
    EXPECT_TRUE(torch::equal(whole[i], pieces[i])) << "parameter " << i;
  pdeq::run::RunDirectory a(root / "whole"), b(root / "pieces");
  const auto rows_a = a.read_metrics(), rows_b = b.read_metrics();
  ASSERT_EQ(rows_a.size(), rows_b.size());
  for (size_t i = 0; i < rows_a.size(); ++i) {
    EXPECT_EQ(rows_a[i]["train_loss"], rows_b[i]["train_loss"]);
    EXPECT_EQ(rows_a[i]["val_acc"], rows_b[i]["val_acc"]);
    EXPECT_EQ(rows_a[i]["weight_bits"], rows_b[i]["weight_bits"]);
  }
  EXPECT_EQ(a.read_json(a.summary_path())["test_accuracy"], b.read_json(b.summary_path())["test_accuracy"]);
  // The event files of the three sessions hold each step once, with the uninterrupted run's values (the
  // timings aside), although a killed session left an event of epoch 2 behind before the last resume.
  const auto whole_events = event_scalars(root / "whole"), piece_events = event_scalars(root / "pieces");
  ASSERT_EQ(whole_events.size(), piece_events.size());
  for (const auto& [key, values] : piece_events) {
    ASSERT_EQ(values.size(), 1u) << key.first << " at step " << key.second;
    ASSERT_EQ(whole_events.count(key), 1u) << key.first << " at step " << key.second;
    if (key.first != "images_per_second" && key.first != "seconds") {
      EXPECT_EQ(values, whole_events.at(key)) << key.first << " at step " << key.second;
    }
  }
}

// The scalars of the event files are the numbers of metrics.jsonl (as float32) at the row's epoch, plus each
// parameter group's learning rate and each clipping scale per row, and the test metrics at the last epoch;
// histograms of the weights and of the activation quantizers' inputs at each evaluated epoch.
TEST_F(TrainerTest, TensorBoardEventsMatchTheMetrics) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "run").finished);
  pdeq::run::RunDirectory run(scratch.path() / "run");
  const auto rows = run.read_metrics();
  const auto summary = run.read_json(run.summary_path());
  const auto scalars = event_scalars(run.root());
  ASSERT_EQ(pdeq::run::event_files(run.tensorboard_path()).size(), 1u);
  size_t from_metrics = 0, groups = 0, scales = 0;
  for (const auto& row : rows) {
    const int64_t step = row["epoch"].get<int64_t>();
    for (const auto& item : row.items()) {
      if (item.key() == "epoch" || !item.value().is_number()) continue;
      const auto found = scalars.find({pdeq::run::scalar_tag(item.key()), step});
      ASSERT_NE(found, scalars.end()) << item.key() << " at epoch " << step;
      EXPECT_EQ(found->second, std::vector<float>{static_cast<float>(item.value().get<double>())})
          << item.key();
      ++from_metrics;
    }
  }
  EXPECT_EQ(from_metrics, 2u * 9u);  // 2 rows of 9 numbers besides the epoch
  EXPECT_EQ(scalars.at({"acc/test", 2}), std::vector<float>{summary["test_accuracy"].get<float>()});
  EXPECT_EQ(scalars.at({"loss/test", 2}), std::vector<float>{summary["test_loss"].get<float>()});
  for (const auto& [key, values] : scalars) {
    if (key.first.rfind("lr/group_", 0) == 0) {
      ++groups;
      // One group by default (everything decayed), at the scheduled rate.
      EXPECT_EQ(values, scalars.at({"lr", key.second}));
    }
    if (key.first.rfind("alpha/", 0) == 0) {
      ++scales;
      EXPECT_GT(values.at(0), 0.0f);
    }
  }
  EXPECT_EQ(groups, 2u * 1u);
  EXPECT_EQ(scales, 2u * 38u);  // every quantizer of resnet20 at W4A4, each epoch
  EXPECT_EQ(scalars.size(), from_metrics + groups + scales + 2);

  std::map<int64_t, size_t> weight_histograms, input_histograms;
  for (const auto& event : pdeq::run::read_event_file(pdeq::run::event_files(run.tensorboard_path())[0])) {
    if (!event.histogram) continue;
    EXPECT_EQ(std::accumulate(event.histogram->bucket.begin(), event.histogram->bucket.end(), 0.0),
              event.histogram->num)
        << event.tag;
    if (event.tag.rfind("weights/", 0) == 0) ++weight_histograms[event.step];
    if (event.tag.rfind("input/", 0) == 0) ++input_histograms[event.step];
  }
  const auto& info = pdeq::data::dataset_info(config.data.dataset);
  auto model = pdeq::models::make_model(config.model.name, pdeq::experiment::model_options(config, info));
  size_t weights = 0, activation_quantizers = 0;
  for (const auto& p : model->parameters()) weights += p.dim() >= 2 ? 1 : 0;
  for (const auto& [name, q] : pdeq::quant::QuantizerSet(*model).activations()) {
    activation_quantizers += q->passes_through() ? 0 : 1;
  }
  EXPECT_GT(activation_quantizers, 0u);
  for (const int64_t epoch : {1, 2}) {
    EXPECT_EQ(weight_histograms[epoch], weights) << "epoch " << epoch;
    EXPECT_EQ(input_histograms[epoch], activation_quantizers) << "epoch " << epoch;
  }
}

TEST_F(TrainerTest, TensorBoardCanBeTurnedOff) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.train.epochs = 1;
  config.train.tensorboard = false;
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "run").finished);
  EXPECT_FALSE(fs::exists(scratch.path() / "run" / "tensorboard"));
}

TEST_F(TrainerTest, ResumedRunEqualsUninterruptedRun) {
  auto config = pdeq::test::tiny_cifar_config(data);
  ASSERT_EQ(config.train.memory_format, pdeq::config::MemoryFormat::kChannelsLast);  // the default
  expect_resume_equals_uninterrupted(config, scratch.path());
}

TEST_F(TrainerTest, ResumedRunEqualsUninterruptedRunInTheOtherModes) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.train.precision = pdeq::config::Precision::kBf16;
  expect_resume_equals_uninterrupted(config, scratch.path() / "channels_last_bf16");
  config.train.memory_format = pdeq::config::MemoryFormat::kContiguous;
  expect_resume_equals_uninterrupted(config, scratch.path() / "contiguous_bf16");
  config.train.precision = pdeq::config::Precision::kFp32;
  expect_resume_equals_uninterrupted(config, scratch.path() / "contiguous");
}

TEST_F(TrainerTest, StopRequestCheckpointsAndResumes) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.train.epochs = 1;
  pdeq::run::request_stop();  // as if Ctrl-C arrived during the first step
  EXPECT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "run").finished);
  pdeq::run::clear_stop_request();
  pdeq::run::RunDirectory run(scratch.path() / "run");
  EXPECT_TRUE(run.has_checkpoint());
  EXPECT_FALSE(run.finished());
  EXPECT_TRUE(pdeq::experiment::resume_run(scratch.path() / "run").finished);
}

TEST_F(TrainerTest, CheckpointRoundTripGivesIdenticalEvaluation) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  const auto info = pdeq::experiment::dataset_info(config.data);  // the run's normalisation
  auto model = pdeq::models::make_model("resnet20", pdeq::experiment::model_options(config, info));
  auto optimizer = pdeq::train::make_optimizer(*model, pdeq::experiment::optimizer_options(config.train));
  const auto x = torch::randn({4, 3, 32, 32});
  // One step so the optimizer has momentum buffers and BN running statistics moved.
  optimizer->zero_grad();
  model->forward(x).sum().backward();
  optimizer->step();
  model->eval();
  const auto expected = model->forward(x);
  pdeq::run::TrainingState state;
  state.epoch = 3;
  state.best_val_accuracy = 0.25;
  pdeq::run::save_checkpoint(scratch.path() / "c.pt", *model, optimizer.get(), state);

  torch::manual_seed(123);
  auto restored = pdeq::models::make_model("resnet20", pdeq::experiment::model_options(config, info));
  auto restored_optimizer =
      pdeq::train::make_optimizer(*restored, pdeq::experiment::optimizer_options(config.train));
  const auto loaded =
      pdeq::run::load_checkpoint(scratch.path() / "c.pt", *restored, restored_optimizer.get());
  restored->eval();
  EXPECT_TRUE(torch::equal(restored->forward(x), expected));
  EXPECT_EQ(loaded.epoch, 3);
  EXPECT_DOUBLE_EQ(loaded.best_val_accuracy, 0.25);
}

TEST_F(TrainerTest, EvaluateRunAtOtherBitWidths) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "run").finished);
  const auto at_4 = eval_run(scratch.path() / "run").report;
  EXPECT_EQ(at_4["act_bits"], 4);
  EXPECT_EQ(at_4["samples"], 32);
  pdeq::run::RunDirectory run(scratch.path() / "run");
  EXPECT_EQ(at_4["accuracy"], run.read_json(run.summary_path())["test_accuracy"]);
  EXPECT_EQ(at_4["weight_bits"], 4);

  // Full-precision activations: the same weights, activations clipped at their alphas but not rounded. The
  // figures must be the ones of that model, computed here independently of commands::eval.
  pdeq::commands::EvalOptions full;
  full.run = scratch.path() / "run";
  full.act_bits = 32;
  const auto at_32 = pdeq::commands::eval(full).report;
  EXPECT_EQ(at_32["act_bits"], 32);
  EXPECT_EQ(at_32["weight_bits"], 4);
  EXPECT_EQ(at_32["samples"], 32);
  EXPECT_NE(at_32["loss"], at_4["loss"]);                         // rounding removed changes the loss
  const auto info = pdeq::experiment::dataset_info(config.data);  // the run's normalisation
  auto model = pdeq::models::make_model("resnet20", pdeq::experiment::model_options(config, info));
  pdeq::run::load_checkpoint(run.best_checkpoint(), *model, nullptr);
  pdeq::quant::QuantizerSet quantizers(*model);
  quantizers.set_activation_bits(32);
  for (const auto& [name, q] : quantizers.activations()) {
    ASSERT_EQ(q->bits(), 32) << name;
    ASSERT_FALSE(q->passes_through()) << name;  // still clips at alpha
  }
  model->eval();
  const auto test = pdeq::data::load_image_data(pdeq::experiment::image_data_options(config.data)).test;
  ASSERT_EQ(test.size(), 32);
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(pdeq::data::normalize(test.images, info.mean, info.std));
  const double accuracy = logits.argmax(1).eq(test.labels).sum().item<double>() / 32.0;
  const double loss = torch::nn::functional::cross_entropy(logits, test.labels).item<double>();
  EXPECT_DOUBLE_EQ(at_32["accuracy"].get<double>(), accuracy);
  EXPECT_NEAR(at_32["loss"].get<double>(), loss, 1e-5);
}

// --max-steps N stops after exactly N steps, also when N ends an epoch (the end-of-epoch stop path), and a
// resumed session counts its own steps.
TEST_F(TrainerTest, MaxStepsStopsAfterExactlyNStepsAtAnEpochBoundary) {
  auto config = pdeq::test::tiny_cifar_config(data);  // 96 training images, batch 32: 3 steps per epoch
  config.train.epochs = 3;
  const fs::path dir = scratch.path() / "run";
  EXPECT_FALSE(pdeq::experiment::train_run(config, dir, {false, 3}).finished);
  auto state = last_state(dir);
  EXPECT_EQ(state.global_step, 3);
  EXPECT_EQ(state.epoch, 1);
  EXPECT_EQ(state.step_in_epoch, 0);
  EXPECT_EQ(pdeq::run::RunDirectory(dir).read_metrics().size(), 1u);
  // 4 more: the rest of epoch 2 (3 steps, through its end) and one step into epoch 3.
  EXPECT_FALSE(pdeq::experiment::resume_run(dir, {false, 4}).finished);
  state = last_state(dir);
  EXPECT_EQ(state.global_step, 7);
  EXPECT_EQ(state.epoch, 2);
  EXPECT_EQ(state.step_in_epoch, 1);
  EXPECT_EQ(pdeq::run::RunDirectory(dir).read_metrics().size(), 2u);
  // 2 more end the run exactly: the last epoch always finishes the run.
  EXPECT_TRUE(pdeq::experiment::resume_run(dir, {false, 2}).finished);
  EXPECT_EQ(last_state(dir).global_step, 9);
}

// Review defect: an unknown model name was found only after the run folder had been created.
TEST_F(TrainerTest, UnknownModelIsAConfigErrorBeforeTheRunFolderExists) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.model.name = "resnet21";
  try {
    pdeq::experiment::train_run(config, scratch.path() / "run");
    FAIL() << "expected a config error";
  } catch (const pdeq::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny: model.name: expected one of resnet18, resnet20"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("got \"resnet21\""), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(scratch.path() / "run"));
  config.model.name = "gcn";  // a graph model on an image dataset
  EXPECT_THROW(pdeq::experiment::train_run(config, scratch.path() / "run"), pdeq::config::ConfigError);
  EXPECT_FALSE(fs::exists(scratch.path() / "run"));
  config.model.name = "resnet21";
  pdeq::commands::BenchTrainOptions bench;
  bench.config = scratch.path() / "resnet21.json";
  std::ofstream(bench.config) << pdeq::config::to_json(config).dump();
  EXPECT_THROW(pdeq::commands::bench_train(bench), pdeq::config::ConfigError);
}

TEST_F(TrainerTest, MissingDataFailsBeforeTraining) {
  auto config = pdeq::test::tiny_cifar_config(scratch.path() / "nowhere");
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::train_run(config, scratch.path() / "run"), "nowhere");
  EXPECT_FALSE(fs::exists(scratch.path() / "run"));
}

TEST_F(TrainerTest, WhatOnlyTheDataCanRefuseLeavesNoFolderBehind) {
  auto config = pdeq::test::tiny_cifar_config(data);
  config.data.val_size = 1000000;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::train_run(config, scratch.path() / "run"),
                          "data.val_size: expected fewer");
  EXPECT_FALSE(fs::exists(scratch.path() / "run"));
}

TEST_F(TrainerTest, ASecondWriterOfARunFolderIsRefused) {
  const auto config = pdeq::test::tiny_cifar_config(data);
  ASSERT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "run", {false, 1}).finished);
  {
    // As another process training into or resuming the folder would hold it.
    pdeq::run::RunLock other(scratch.path() / "run");
    PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::resume_run(scratch.path() / "run"),
                            "is being written by another");
    PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::train_run(config, scratch.path() / "run", {true}),
                            "is being written by another");
  }
  EXPECT_TRUE(pdeq::experiment::resume_run(scratch.path() / "run").finished);
}
