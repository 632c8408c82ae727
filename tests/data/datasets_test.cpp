// Dataset table, PDEQ_DATA_DIR, load_image_data's split and limits, and real Fashion-MNIST when present.
#include "data_support.h"
#include "test_support.h"

#include <pdeq/data/datasets.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

namespace pdeq::test {
namespace {

struct DatasetsTest : SeedingFixture {
  TempDir dir;
};

/// Restores PDEQ_DATA_DIR when the test ends.
class ScopedDataDir {
 public:
  explicit ScopedDataDir(const char* value) {
    if (const char* old = std::getenv("PDEQ_DATA_DIR")) old_ = old;
    if (value != nullptr)
      setenv("PDEQ_DATA_DIR", value, 1);
    else
      unsetenv("PDEQ_DATA_DIR");
  }
  ~ScopedDataDir() {
    if (old_)
      setenv("PDEQ_DATA_DIR", old_->c_str(), 1);
    else
      unsetenv("PDEQ_DATA_DIR");
  }

 private:
  std::optional<std::string> old_;
};

/// Ids of a split's images: test files put image id's value in its first pixel (ids < 256 here).
std::vector<int64_t> ids(const data::ImageSet& set) {
  const auto first = set.images.reshape({set.size(), -1}).select(1, 0).to(torch::kInt64).contiguous();
  return std::vector<int64_t>(first.data_ptr<int64_t>(), first.data_ptr<int64_t>() + first.numel());
}

data::ImageDataOptions cifar_config(const std::string& root, int64_t val_size, uint64_t split_seed) {
  data::ImageDataOptions c;
  c.dataset = "cifar10";
  c.root = root;
  c.split.val_size = val_size;
  c.split.split_seed = split_seed;
  return c;
}

TEST(DatasetInfoTest, TableHoldsShapesStatisticsAndDefaults) {
  ScopedDataDir unset(nullptr);
  const auto cifar = data::dataset_info("cifar10");
  EXPECT_EQ(cifar.default_root, "../shared/data/cifar-10-batches-bin");
  EXPECT_EQ(std::vector<int64_t>({cifar.channels, cifar.height, cifar.width, cifar.num_classes}),
            std::vector<int64_t>({3, 32, 32, 10}));
  EXPECT_EQ(cifar.mean, std::vector<double>({0.4914, 0.4822, 0.4465}));
  EXPECT_EQ(cifar.std, std::vector<double>({0.2470, 0.2435, 0.2616}));  // measured
  // The reference implementation's constants (the default of configs): CIFAR-10's std differs, the rest not.
  const auto reference = data::with_normalization(cifar, data::Normalization::kReference);
  EXPECT_EQ(reference.std, std::vector<double>({0.2023, 0.1994, 0.2010}));
  EXPECT_EQ(reference.mean, cifar.mean);
  EXPECT_EQ(data::with_normalization(cifar, data::Normalization::kDataset).std, cifar.std);
  EXPECT_EQ(data::with_normalization(data::dataset_info("cifar100"), data::Normalization::kReference).std,
            data::dataset_info("cifar100").std);
  const auto c100 = data::dataset_info("cifar100");
  EXPECT_EQ(c100.default_root, "../shared/data/cifar-100-binary");
  EXPECT_EQ(c100.num_classes, 100);
  EXPECT_EQ(c100.mean, std::vector<double>({0.5071, 0.4865, 0.4409}));
  const auto fashion = data::dataset_info("fashion_mnist");
  EXPECT_EQ(fashion.default_root, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(std::vector<int64_t>({fashion.channels, fashion.height, fashion.width, fashion.num_classes}),
            std::vector<int64_t>({1, 28, 28, 10}));
  EXPECT_EQ(fashion.mean, std::vector<double>({0.2860}));
  EXPECT_EQ(data::dataset_info("mnist").std, std::vector<double>({0.3081}));
  EXPECT_EQ(data::dataset_names(),
            std::vector<std::string>({"cifar10", "cifar100", "fashion_mnist", "mnist"}));
  PDEQ_ASSERT_THROWS_WITH(
      data::dataset_info("cifar"),
      "unknown dataset \"cifar\", expected one of: cifar10, cifar100, fashion_mnist, mnist");
}

TEST(DatasetInfoTest, DataDirEnvironmentVariableMovesTheCifarDefaults) {
  ScopedDataDir set("/data/sets");
  EXPECT_EQ(data::dataset_info("cifar10").default_root, "/data/sets/cifar-10-batches-bin");
  EXPECT_EQ(data::dataset_info("cifar100").default_root, "/data/sets/cifar-100-binary");
  EXPECT_EQ(data::dataset_info("fashion_mnist").default_root, "/usr/share/datasets/fashion-mnist");
}

TEST_F(DatasetsTest, SplitIsCompleteDisjointAndDeterministicBySeed) {
  write_cifar10_folder(dir, 4, 3);  // ids 0..19
  const auto a = data::load_image_data(cifar_config(dir.str(), 5, 7));
  EXPECT_EQ(a.info.name, "cifar10");
  EXPECT_EQ(a.train.size(), 15);
  EXPECT_EQ(a.val.size(), 5);
  EXPECT_EQ(a.test.size(), 3);
  EXPECT_EQ(a.train.name, "cifar10/train");
  EXPECT_EQ(a.val.name, "cifar10/val");
  EXPECT_EQ(a.test.name, "cifar10/test");

  // train + val = the 20 training images, without overlap; labels follow their images.
  std::multiset<int64_t> all;
  for (auto id : ids(a.train)) all.insert(id);
  for (auto id : ids(a.val)) all.insert(id);
  std::multiset<int64_t> expected;
  for (int64_t i = 0; i < 20; ++i) expected.insert(i);
  EXPECT_EQ(all, expected);
  EXPECT_TRUE(torch::equal(a.train.labels, torch::tensor(ids(a.train)) % 10));
  // The test files stay in file order (ids 1000.. have first pixel 1000 % 256 = 232..).
  EXPECT_EQ(ids(a.test), std::vector<int64_t>({232, 233, 234}));

  const auto same = data::load_image_data(cifar_config(dir.str(), 5, 7));
  EXPECT_EQ(ids(same.val), ids(a.val));
  EXPECT_EQ(ids(same.train), ids(a.train));
  EXPECT_TRUE(torch::equal(same.train.images, a.train.images));

  const auto other = data::load_image_data(cifar_config(dir.str(), 5, 8));
  const auto other_val = ids(other.val), a_val = ids(a.val);
  EXPECT_NE(std::set<int64_t>(other_val.begin(), other_val.end()),
            std::set<int64_t>(a_val.begin(), a_val.end()));
}

TEST_F(DatasetsTest, ZeroValSizeGivesEmptyValidationSet) {
  write_cifar10_folder(dir, 2, 1);
  const auto s = data::load_image_data(cifar_config(dir.str(), 0, 0));
  EXPECT_EQ(s.train.size(), 10);
  EXPECT_EQ(s.val.size(), 0);
  EXPECT_EQ(s.val.images.sizes(), torch::IntArrayRef({0, 3, 32, 32}));
}

TEST_F(DatasetsTest, LimitsKeepTheFirstImagesOfEachSplitAndClamp) {
  write_cifar10_folder(dir, 4, 3);
  const auto full = data::load_image_data(cifar_config(dir.str(), 5, 3));
  auto c = cifar_config(dir.str(), 5, 3);
  c.split.limit_train = 4;
  c.split.limit_val = 100;  // more than there are: all 5
  c.split.limit_test = 2;
  const auto limited = data::load_image_data(c);
  auto head = ids(full.train);
  head.resize(4);
  EXPECT_EQ(ids(limited.train), head);
  EXPECT_EQ(ids(limited.val), ids(full.val));
  EXPECT_EQ(ids(limited.test), std::vector<int64_t>({232, 233}));
}

TEST_F(DatasetsTest, BadSizesNameTheConfigKey) {
  write_cifar10_folder(dir, 2, 1);
  PDEQ_ASSERT_THROWS_WITH(
      data::load_image_data(cifar_config(dir.str(), 10, 0)),
      "data.val_size: expected fewer than the 10 training images of cifar10 in " + dir.str() + ", got 10");
  auto c = cifar_config(dir.str(), 1, 0);
  c.split.limit_train = -1;
  PDEQ_ASSERT_THROWS_WITH(data::load_image_data(c), "data.limit_train: expected an integer >= 0, got -1");
  c = cifar_config(dir.str(), -2, 0);
  PDEQ_ASSERT_THROWS_WITH(data::load_image_data(c), "data.val_size: expected an integer >= 0, got -2");
}

TEST_F(DatasetsTest, MissingDatasetAndWrongShapeNameTheRoot) {
  data::ImageDataOptions c;
  c.dataset = "cifar10";
  c.root = dir.file("absent");
  PDEQ_ASSERT_THROWS_WITH(data::load_image_data(c),
                          "CIFAR-10 file not found: " + dir.file("absent/data_batch_1.bin"));
  // 4x5 IDX images where fashion_mnist expects 28x28.
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 4, 5));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({1, 2, 3}));
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(1, 4, 5));
  write_gz(dir.file("t10k-labels-idx1-ubyte.gz"), idx_labels({1}));
  c.dataset = "fashion_mnist";
  c.root = dir.str();
  c.split.val_size = 1;
  PDEQ_ASSERT_THROWS_WITH(
      data::load_image_data(c),
      dir.str() + ": fashion_mnist/train holds 1x4x5 images of 10 classes, expected 1x28x28");
}

// Real Fashion-MNIST (when present) through load_image_data: gzip IDX reading, split sizes, class balance.
TEST(DatasetsRealData, FashionMnistGzipFiles) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not found at " << root;
  }
  data::ImageDataOptions c;
  c.dataset = "fashion_mnist";  // default root
  c.split.val_size = 5000;
  const auto s = data::load_image_data(c);
  ASSERT_EQ(s.train.images.sizes(), torch::IntArrayRef({55000, 1, 28, 28}));
  ASSERT_EQ(s.val.images.sizes(), torch::IntArrayRef({5000, 1, 28, 28}));
  ASSERT_EQ(s.test.images.sizes(), torch::IntArrayRef({10000, 1, 28, 28}));
  EXPECT_TRUE(torch::equal(torch::bincount(torch::cat({s.train.labels, s.val.labels})),
                           torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(torch::equal(torch::bincount(s.test.labels), torch::full({10}, 1000, torch::kInt64)));
  // First test image: label 9 (ankle boot); row 10, columns 15..19 hold 53 129 120 147 175.
  EXPECT_TRUE(torch::equal(s.test.labels.slice(0, 0, 5), torch::tensor({9, 2, 1, 1, 6}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(s.test.images[0][0][10].slice(0, 15, 20),
                           torch::tensor({53, 129, 120, 147, 175}, torch::kUInt8)));
}

}  // namespace
}  // namespace pdeq::test
