// End to end on a streamed image folder: a generated two-colour JPEG/PNG tree is learned, unreadable files
// are skipped and counted in the summary, and a run stopped mid-epoch resumes to the same weights.
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/stop_signal.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <random>

#include "train_support.h"

namespace fs = std::filesystem;

namespace {

/// root/{train,val}/{blue,red}/: 32 x 40 noisy images, mostly blue or mostly red (lossy JPEG and PNG mixed).
void write_colour_tree(const fs::path& root, int train_per_class, int val_per_class) {
  std::mt19937 rng(3);
  const auto image = [&](bool red) {
    cv::Mat m(32, 40, CV_8UC3);
    for (int y = 0; y < m.rows; ++y) {
      for (int x = 0; x < m.cols; ++x) {
        const auto noise = [&] { return static_cast<uchar>(rng() % 90); };
        const uchar strong = static_cast<uchar>(150 + rng() % 100);
        m.at<cv::Vec3b>(y, x) =
            red ? cv::Vec3b(noise(), noise(), strong) : cv::Vec3b(strong, noise(), noise());
      }
    }
    return m;
  };
  for (const auto& [split, count] :
       {std::pair<std::string, int>{"train", train_per_class}, {"val", val_per_class}}) {
    for (const bool red : {false, true}) {
      const fs::path folder = root / split / (red ? "red" : "blue");
      fs::create_directories(folder);
      for (int i = 0; i < count; ++i) {
        cv::imwrite((folder / (std::to_string(i) + (i % 2 ? ".jpg" : ".png"))).string(), image(red));
      }
    }
  }
}

pdeq::config::Config colour_config(const fs::path& root) {
  pdeq::config::Config c;
  c.source = "colours";
  c.model.name = "resnet20";
  c.data.dataset = "image_folder";
  c.data.root = root.string();
  c.data.resize = 32;
  c.data.image_size = 28;
  c.data.val_size = 8;
  c.data.batch_size = 8;
  c.data.eval_batch_size = 16;
  c.data.workers = 2;
  c.train.epochs = 2;
  c.train.lr = 0.05;
  c.train.threads = 2;
  c.train.log_every = 1000;
  return c;
}

struct ImageFolderTrainTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"imgfolder_train"};
  void SetUp() override {
    SeedingFixture::SetUp();
    pdeq::run::clear_stop_request();
  }
};

TEST_F(ImageFolderTrainTest, LearnsColoursAndCountsSkippedImages) {
  write_colour_tree(scratch.path() / "data", 24, 6);
  std::ofstream(scratch.path() / "data" / "train" / "red" / "broken.jpg") << "truncated";
  auto config = colour_config(scratch.path() / "data");
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
  write_colour_tree(scratch.path() / "data", 10, 2);
  auto config = colour_config(scratch.path() / "data");
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
