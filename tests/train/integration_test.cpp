// A short real-data run must clearly learn: ResNet-20 at W4A4 on a Fashion-MNIST subset.
#include <pdeq/train/run.h>

#include "train_fixtures.h"

TEST(Integration, FashionMnistResNet20W4A4Learns) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not found at " << root << " (Debian package dataset-fashion-mnist)";
  }
  pdeq::test::TempDir scratch("integration");
  auto config = pdeq::config::load_config(
      std::string(PDEQ_SOURCE_DIR) + "/configs/fashion_mnist_resnet20_w4a4.json",
      {"train.epochs=1", "data.limit_train=8000", "data.batch_size=64", "data.limit_val=500",
       "data.limit_test=2000", "train.threads=2", "train.log_every=1000"});
  const auto result = pdeq::train::train_run(config, scratch.path() / "run");
  ASSERT_TRUE(result.finished);
  EXPECT_EQ(result.summary["weight_bits"], 4);
  EXPECT_EQ(result.summary["act_bits"], 4);
  // Chance is 10%; one epoch of 125 steps from scratch at 4 bits reaches about 75%.
  EXPECT_GT(result.summary["test_accuracy"].get<double>(), 0.60) << result.summary.dump();
}
