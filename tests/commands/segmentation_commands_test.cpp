// The commands on a segmentation run: analyze segmentation (IoU table and picture), analyze tv and analyze
// stability on DeepLabV3's layers, and the export's refusal.
#include <pdeq/analysis/segmentation_figure.h>
#include <pdeq/commands/analyze_segmentation.h>
#include <pdeq/commands/analyze_stability.h>
#include <pdeq/commands/analyze_tv.h>
#include <pdeq/deploy/export.h>
#include <pdeq/experiment/run.h>
#include <pdeq/run/stop_signal.h>

#include "segmentation_support.h"
#include "test_support.h"

#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <sstream>

namespace pdeq::commands {
namespace {

namespace fs = std::filesystem;

struct SegmentationCommandsTest : test::SeedingFixture {
  test::TempDir scratch{"seg_commands"};
  fs::path run_dir;
  void SetUp() override {
    SeedingFixture::SetUp();
    run::clear_stop_request();
    test::write_camvid(scratch.path() / "data", 4, 48, 64);
    config::Config c;
    c.source = "blocks";
    c.model.name = "deeplabv3_resnet18";
    c.model.tv.enabled = true;
    c.quant.weight_bits = c.quant.act_bits = 4;
    c.data.dataset = "camvid";
    c.data.root = (scratch.path() / "data").string();
    c.data.resize = 48;
    c.data.image_size = 48;
    c.data.batch_size = 4;
    c.data.eval_batch_size = 4;
    c.data.workers = 2;
    c.train.epochs = 1;
    c.train.threads = 2;
    c.train.log_every = 1000;
    run_dir = scratch.path() / "run";
    ASSERT_TRUE(experiment::train_run(c, run_dir).finished);
  }
};

TEST_F(SegmentationCommandsTest, AnalyzeSegmentationWritesTheTableAndThePicture) {
  AnalyzeSegmentationOptions options;
  options.run = run_dir;
  options.out = scratch.path() / "seg";
  options.frames = 3;
  const auto result = analyze_segmentation(options);
  EXPECT_EQ(result.report["classes"].size(), 11u);
  EXPECT_EQ(result.report["frames"], 3);
  // The same mIoU as the run's test evaluation of its best checkpoint.
  std::ifstream summary_file(run_dir / "summary.json");
  const auto summary = nlohmann::json::parse(summary_file);
  EXPECT_DOUBLE_EQ(result.report["miou"].get<double>(), summary["test_segmentation"]["miou"].get<double>());
  std::ifstream csv(options.out / "iou.csv");
  std::string header, line;
  std::getline(csv, header);
  EXPECT_EQ(header, "class,name,iou,pixels");
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 11);
  // Three frames of 48x64 as rows of frame | labels | prediction, 4-pixel gaps.
  const cv::Mat png = cv::imread((options.out / "segmentation.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(png.empty());
  EXPECT_EQ(png.cols, 3 * 64 + 2 * 4);
  EXPECT_EQ(png.rows, 3 * 48 + 2 * 4);
  // The labels panel: every pixel of the first row in SegNet's colour of its class (void black); test
  // frame 0 (test_0.png) is written with seed 100.
  for (int y = 0; y < 48; ++y) {
    for (int x = 0; x < 64; ++x) {
      const auto rgb = analysis::segmentation_colour(test::block_class(y, x, 100, 11, 11), 11, 11);
      ASSERT_EQ(png.at<cv::Vec3b>(y, 64 + 4 + x), cv::Vec3b(rgb[2], rgb[1], rgb[0])) << y << ", " << x;
    }
  }
}

TEST_F(SegmentationCommandsTest, AnalyzeTVAndStabilityReadTheDeepLabLayers) {
  AnalyzeTVOptions tv;
  tv.run = run_dir;
  tv.out = scratch.path() / "tv";
  tv.layer = "act_head";
  tv.images = 2;
  const auto report = analyze_tv(tv).report;
  EXPECT_EQ(report["images"], 2);
  EXPECT_EQ(report["tv"]["tv_layer"], "tv_head");
  EXPECT_TRUE(fs::exists(tv.out / "tv_before.png"));

  AnalyzeStabilityOptions stability;
  stability.runs = {run_dir};
  stability.out = scratch.path() / "stability";
  analyze_stability(stability);
  EXPECT_TRUE(fs::exists(stability.out / "stability.csv"));
}

TEST_F(SegmentationCommandsTest, ExportRefusesAndWritesNothing) {
  const fs::path out = scratch.path() / "model.pdeqint";
  PDEQ_ASSERT_THROWS_WITH(deploy::export_run(run_dir, out, deploy::ExportOptions()),
                          "segmentation networks (deeplabv3_resnet18 on camvid) cannot be exported");
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace pdeq::commands
