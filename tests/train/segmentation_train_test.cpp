// Segmentation end to end on generated CamVid-layout folders: a few steps learn, a run folder holds the
// segmentation metrics and the per-class IoU, class weights are cached, and a stopped run resumes to the same
// weights.
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/segmentation.h>

#include <cstdlib>
#include <fstream>

#include "segmentation_support.h"
#include "train_support.h"

namespace fs = std::filesystem;

namespace {

pdeq::config::Config camvid_config(const fs::path& root) {
  pdeq::config::Config c;
  c.source = "blocks";
  c.model.name = "deeplabv3_resnet18";
  c.data.dataset = "camvid";
  c.data.root = root.string();
  c.data.resize = 64;
  c.data.image_size = 64;
  c.data.augment = false;
  c.data.batch_size = 4;
  c.data.eval_batch_size = 4;
  c.data.workers = 2;
  c.train.epochs = 2;
  c.train.optimizer = pdeq::config::Optimizer::kAdam;
  c.train.lr = 1e-3;
  c.train.threads = 2;
  c.train.log_every = 1000;
  return c;
}

struct SegmentationTrainTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"seg_train"};
  void SetUp() override {
    SeedingFixture::SetUp();
    pdeq::run::clear_stop_request();
  }
};

// The per-pixel cross-entropy of a full-precision DeepLabV3 falls to well under half its first epoch's in
// 15 epochs of 2 steps on 8 frames whose colour gives their class, in 32-pixel squares (two output-stride-16
// cells each).
TEST_F(SegmentationTrainTest, AFewStepsLearn) {
  pdeq::test::write_camvid(scratch.path() / "data", 8, 64, 96, /*block=*/32);
  const auto config = camvid_config(scratch.path() / "data");
  pdeq::experiment::validate_config(config);
  auto task = pdeq::experiment::make_image_task(config, torch::kCPU);
  ASSERT_NE(dynamic_cast<pdeq::train::SegmentationTask*>(task.get()), nullptr);
  auto optimizer =
      pdeq::train::make_optimizer(task->module(), pdeq::experiment::optimizer_options(config.train));
  std::vector<double> epoch_loss;
  for (int64_t epoch = 0; epoch < 15; ++epoch) {
    task->begin_epoch(epoch, 0);
    double sum = 0.0;
    int64_t samples = 0;
    for (int64_t step = 0; step < task->steps_per_epoch(); ++step) {
      const auto stats = task->train_step(*optimizer);
      sum += stats.loss_sum;
      samples += stats.samples;
    }
    epoch_loss.push_back(sum / static_cast<double>(samples));
  }
  EXPECT_LT(epoch_loss.back(), 0.5 * epoch_loss.front()) << epoch_loss.front() << " -> " << epoch_loss.back();
  const auto stats = task->evaluate(pdeq::train::EvalSplit::kTest);
  EXPECT_EQ(stats.samples, 8);
  EXPECT_GT(stats.accuracy, 0.0);
}

TEST_F(SegmentationTrainTest, RunFolderHoldsSegmentationMetricsAndResumes) {
  pdeq::test::write_camvid(scratch.path() / "data", 6, 48, 64);
  const fs::path cache = scratch.path() / "cache";
  ASSERT_EQ(setenv("XDG_CACHE_HOME", cache.c_str(), 1), 0);
  auto config = camvid_config(scratch.path() / "data");
  config.data.class_weights = pdeq::config::ClassWeights::kMedianFrequency;
  config.data.augment = true;
  config.quant.weight_bits = config.quant.act_bits = 4;
  config.model.tv.enabled = true;
  const auto whole = pdeq::experiment::train_run(config, scratch.path() / "whole");
  ASSERT_TRUE(whole.finished);
  const auto& s = whole.summary;
  ASSERT_TRUE(s.contains("test_segmentation")) << s.dump(2);
  const auto& table = s["test_segmentation"];
  EXPECT_EQ(table["classes"].size(), 11u);
  EXPECT_EQ(table["classes"][3]["name"], "road");
  EXPECT_DOUBLE_EQ(table["miou"].get<double>(), s["test_accuracy"].get<double>());
  EXPECT_EQ(table["pixels"].get<int64_t>() > 0, true);
  // The metrics rows carry the validation mIoU and pixel accuracy.
  std::ifstream rows(scratch.path() / "whole" / "metrics.jsonl");
  std::string line, last;
  while (std::getline(rows, line)) last = line;
  const auto row = nlohmann::json::parse(last);
  EXPECT_TRUE(row.contains("val_miou"));
  EXPECT_TRUE(row.contains("val_pixel_acc"));
  EXPECT_DOUBLE_EQ(row["val_miou"].get<double>(), row["val_acc"].get<double>());
  // Median-frequency weights were computed once and cached.
  int64_t cached = 0;
  for (const auto& entry : fs::directory_iterator(cache / "pdeq")) {
    cached += entry.path().filename().string().rfind("camvid_median_frequency_", 0) == 0 ? 1 : 0;
  }
  EXPECT_EQ(cached, 1);

  // Stopped after 3 of its 4 steps, then resumed: the same weights as the run in one piece.
  EXPECT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "pieces", {false, 3}).finished);
  EXPECT_TRUE(pdeq::experiment::resume_run(scratch.path() / "pieces").finished);
  const auto weights = [&](const fs::path& run) {
    const auto c = pdeq::config::load_config((run / "config.json").string());
    auto model = pdeq::experiment::make_image_model(c, pdeq::experiment::dataset_info(c.data));
    pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
    return model->parameters();
  };
  const auto a = weights(scratch.path() / "whole"), b = weights(scratch.path() / "pieces");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  unsetenv("XDG_CACHE_HOME");
}

TEST_F(SegmentationTrainTest, ConfigChecksNameTheKey) {
  auto config = camvid_config(scratch.path() / "data");
  config.model.name = "resnet20";
  PDEQ_ASSERT_THROWS_WITH(
      pdeq::experiment::validate_config(config),
      "model.name: expected one of deeplabv3_resnet18, deeplabv3_resnet50 for dataset camvid");
  config = camvid_config(scratch.path() / "data");
  config.data.val_size = 10;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(config),
                          "data.val_size: has no effect on data.dataset camvid");
  config = camvid_config(scratch.path() / "data");
  config.model.stable = true;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(config),
                          "model.stable: has no effect on deeplabv3_resnet18");
  config = camvid_config(scratch.path() / "data");
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_distributed(config, 2), "camvid trains in one process");
  auto cifar = pdeq::config::Config{};
  cifar.data.scale_min = 0.25;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(cifar),
                          "data.scale_min: has no effect on data.dataset cifar10");
  cifar = pdeq::config::Config{};
  cifar.model.name = "deeplabv3_resnet50";
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_config(cifar), "model.name: expected one of");
}

}  // namespace
