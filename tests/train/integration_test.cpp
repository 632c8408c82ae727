// A short real-data run must clearly learn: ResNet-20 at W4A4 on a Fashion-MNIST subset.
#include <pdeq/commands/analyze_stability.h>
#include <pdeq/commands/eval.h>
#include <pdeq/experiment/run.h>

#include "plot_support.h"
#include "train_support.h"

TEST(Integration, FashionMnistResNet20W4A4Learns) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not found at " << root << " (Debian package dataset-fashion-mnist)";
  }
  pdeq::test::TempDir scratch("integration");
  auto config = pdeq::config::load_config(
      pdeq::test::source_dir() + "/configs/fashion_mnist_resnet20_w4a4.json",
      {"train.epochs=1", "data.limit_train=8000", "data.batch_size=64", "data.limit_val=500",
       "data.limit_test=2000", "train.threads=2", "train.log_every=1000",
       // One epoch: the cosine moves every step (per epoch it would stay at its peak all run long).
       "train.lr_step=step"});
  const auto result = pdeq::experiment::train_run(config, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  EXPECT_EQ(result.summary["weight_bits"], 4);
  EXPECT_EQ(result.summary["act_bits"], 4);
  // Chance is 10%; one epoch of 125 steps from scratch at 4 bits reaches about 75%.
  const double w4a4 = result.summary["test_accuracy"].get<double>();
  EXPECT_GT(w4a4, 0.60) << result.summary.dump();

  // Full precision as the paper means it (standardised, clipped weights and activations, no rounding) keeps
  // what the quantized network learned; skipping standardisation would drop it to chance.
  pdeq::commands::EvalOptions full;
  full.run = scratch.path() / "run";
  full.weight_bits = 32;
  full.act_bits = 32;
  const double fp = pdeq::commands::eval(full).accuracy;
  EXPECT_NEAR(fp, w4a4, 0.05) << "W4A4 " << w4a4 << " vs full precision " << fp;

  // The stability analysis on the same run: one error per traced layer, zero for the float stem only.
  pdeq::commands::AnalyzeStabilityOptions stability;
  stability.runs = {scratch.path() / "run"};
  stability.max_batches = 2;
  stability.out = scratch.path() / "stability";
  const auto report = pdeq::commands::analyze_stability(stability).report;
  const auto& run = report["runs"][0];
  ASSERT_EQ(run["errors"].size(), 10u);  // stem + 9 blocks
  EXPECT_EQ(run["errors"][0].get<double>(), 0.0);
  for (size_t l = 1; l < 10; ++l) EXPECT_GT(run["errors"][l].get<double>(), 0.0) << l;
  EXPECT_GT(run["mean_error"].get<double>(), 0.0);
  pdeq::test::expect_plot(scratch.path() / "stability" / "stability.png");
  EXPECT_TRUE(std::filesystem::exists(scratch.path() / "stability" / "stability.csv"));
}
