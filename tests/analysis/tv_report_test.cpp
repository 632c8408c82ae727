#include <pdeq/analysis/tv_report.h>
#include <pdeq/compat/features.h>
#include <pdeq/models/registry.h>

#include "model_support.h"
#include "test_support.h"

#include <cmath>
#include <filesystem>
#include <fstream>

namespace {

using pdeq::models::make_model;
using pdeq::models::ModelOptions;

struct TVReportTest : pdeq::test::SeedingFixture {};

ModelOptions w4a4(bool tv) {
  ModelOptions options = pdeq::test::w4a4();
  if (tv) options.tv = pdeq::models::TVOptions{};
  return options;
}

TEST_F(TVReportTest, ActivationReportCoversEveryActivationQuantizer) {
  auto net = make_model("resnet20", w4a4(false));
  const auto report = pdeq::analysis::activation_quant_report(*net, torch::randn({6, 3, 16, 16}), 4);
  ASSERT_EQ(report.size(), 18u);  // act_in and act_mid of 9 blocks
  EXPECT_EQ(report[0]["layer"], "layer1.0.act_in");
  EXPECT_EQ(report[1]["layer"], "layer1.0.act_mid");
  for (const auto& row : report) {
    EXPECT_EQ(row["bits"], 4);
    EXPECT_GE(row["min"].get<double>(), 0.0);  // every quantizer reads a ReLU output
    EXPECT_GT(row["quant_mse"].get<double>(), 0.0);
    // Rounding error of a 4-bit grid on [0, alpha] is at most (alpha / 15 / 2)^2 inside the range.
    EXPECT_LE(row["quant_mse"].get<double>(),
              std::pow(row["alpha"].get<double>() / 30, 2) + row["clipped_fraction"].get<double>() * 1e4);
  }
  // The observers are removed afterwards.
  for (const auto& item : net->named_modules()) {
    if (auto* q = item.value()->as<pdeq::quant::FakeQuantize>()) {
      EXPECT_FALSE(static_cast<bool>(q->observer));
    }
  }
}

TEST_F(TVReportTest, LayerReportWritesItsFilesAndTheStatisticsAgree) {
  pdeq::test::TempDir dir("tv_report");
  auto net = make_model("resnet20", w4a4(true));
  const auto image = torch::randn({1, 3, 16, 16});
  if (!pdeq::compat::opencv_built()) {
    // The images are the point of the report: a build without OpenCV refuses it, naming the option.
    PDEQ_ASSERT_THROWS_WITH(pdeq::analysis::tv_layer_report(*net, image, "layer1.1.act_mid", dir.path()),
                            "PDEQ_WITH_OPENCV=OFF");
    return;
  }
  const auto report = pdeq::analysis::tv_layer_report(*net, image, "layer1.1.act_mid", dir.path());
  EXPECT_EQ(report["tv_layer"], "layer1.1.tv_mid");
  EXPECT_EQ(report["bits"], 4);
  for (const char* file : {"tv_before.png", "tv_after.png", "tv_hist.csv", "tv_hist.png"}) {
    EXPECT_TRUE(std::filesystem::exists(dir.path() / file)) << file;
  }
  const auto& before = report["before"];
  const auto& after = report["after"];
  // A stable step creates no new extrema and, with zero-flux borders, keeps every channel's mean.
  EXPECT_LE(after["max"].get<double>(), before["max"].get<double>() + 1e-6);
  EXPECT_GE(after["min"].get<double>(), before["min"].get<double>() - 1e-6);
  EXPECT_NEAR(after["mean"].get<double>(), before["mean"].get<double>(), 1e-5);
  EXPECT_LT(after["std"].get<double>(), before["std"].get<double>());
  // The histogram CSV has a header and 100 bins, each bin's counts summing to the map's size.
  std::ifstream csv(dir.file("tv_hist.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "bin_lo,bin_hi,before,after");
  int64_t rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 100);
}

TEST_F(TVReportTest, LayerReportNamesTheMissingTVLayer) {
  pdeq::test::TempDir dir("tv_report");
  auto net = make_model("resnet20", w4a4(false));
  PDEQ_ASSERT_THROWS_WITH(
      pdeq::analysis::tv_layer_report(*net, torch::randn({1, 3, 8, 8}), "layer1.1.act_mid", dir.path()),
      "no TV layer 'layer1.1.tv_mid' in front of an activation quantizer 'layer1.1.act_mid'; TV layers of "
      "this "
      "model: none");
  PDEQ_ASSERT_THROWS_WITH(pdeq::analysis::tv_layer_report(*net, torch::randn({1, 3, 8, 8}), "fc", dir.path()),
                          "layer must name an activation quantizer");
}

}  // namespace
