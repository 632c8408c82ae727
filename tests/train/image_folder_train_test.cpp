// End to end on a streamed image folder: a generated two-colour JPEG/PNG tree is learned, unreadable files
// are skipped and counted in the summary, and a run stopped mid-epoch resumes to the same weights.
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/stop_signal.h>

#include <fstream>

#include "image_folder_support.h"
#include "train_support.h"

namespace fs = std::filesystem;

namespace {

struct ImageFolderTrainTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"imgfolder_train"};
  void SetUp() override {
    SeedingFixture::SetUp();
    pdeq::run::clear_stop_request();
  }
};

TEST_F(ImageFolderTrainTest, LearnsColoursAndCountsSkippedImages) {
  pdeq::test::write_colour_tree(scratch.path() / "data", 24, 6);
  std::ofstream(scratch.path() / "data" / "train" / "red" / "broken.jpg") << "truncated";
  auto config = pdeq::test::colour_config(scratch.path() / "data");
  config.data.skip_bad_images = true;
  config.train.epochs = 6;  // 30 steps: enough for BatchNorm's running statistics, which evaluation uses
  const auto result = pdeq::experiment::train_run(config, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  EXPECT_GE(result.summary["test_accuracy"].get<double>(), 0.9);  // chance is 0.5
  EXPECT_EQ(result.summary["test_samples"].get<int64_t>(), 12);
  EXPECT_EQ(result.summary["skipped_images"].get<int64_t>(), 1);

  config.data.skip_bad_images = false;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::train_run(config, scratch.path() / "strict"),
                          "broken.jpg: not a decodable image");
}

TEST_F(ImageFolderTrainTest, StoppedMidEpochResumesToTheSameWeights) {
  pdeq::test::write_colour_tree(scratch.path() / "data", 10, 2);
  auto config = pdeq::test::colour_config(scratch.path() / "data");
  config.data.val_size = 4;  // 16 training images: 2 batches per epoch
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "whole").finished);
  config.data.workers = 1;  // the worker count changes nothing
  EXPECT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "pieces", {false, 3}).finished);
  EXPECT_TRUE(pdeq::experiment::resume_run(scratch.path() / "pieces").finished);

  const auto weights = [&](const fs::path& run) {
    const auto c = pdeq::config::load_config((run / "config.json").string());
    auto model = pdeq::models::make_model(c.model.name, pdeq::experiment::model_options(c, 2, 3));
    pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
    return model->parameters();
  };
  const auto a = weights(scratch.path() / "whole"), b = weights(scratch.path() / "pieces");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

}  // namespace
