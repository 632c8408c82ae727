// Readers: CIFAR-10/100 binary and (Fashion-)MNIST IDX on tiny generated files, their errors, and the real
// files.
#include "data_support.h"
#include "test_support.h"

#include <pdeq/data/image_set.h>
#include <pdeq/data/loader.h>

#include <chrono>
#include <filesystem>

namespace pdeq::test {
namespace {

using data::Split;

struct ImageSetTest : SeedingFixture {
  TempDir dir;
};

/// The tensor the readers must produce for images first_id.. of shape [n, c, h, w] (CHW pixel order in
/// files).
torch::Tensor expected_images(int64_t first_id, int64_t n, int64_t c, int64_t h, int64_t w) {
  auto out = torch::empty({n, c, h, w}, torch::kUInt8);
  uint8_t* data = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < c * h * w; ++p) data[i * c * h * w + p] = test_pixel(first_id + i, p);
  }
  return out;
}

TEST_F(ImageSetTest, ReadsCifar10TrainAcrossFiveFilesInOrder) {
  // 2, 1, 3, 1, 2 records: ids 0..8, labels chosen per record.
  const std::vector<std::vector<int>> labels = {{6, 9}, {9}, {4, 1, 1}, {2}, {7, 8}};
  int64_t id = 0;
  for (size_t f = 0; f < labels.size(); ++f) {
    write_file(dir.file("data_batch_" + std::to_string(f + 1) + ".bin"), cifar_records(id, labels[f]));
    id += static_cast<int64_t>(labels[f].size());
  }
  const auto set = data::read_cifar10(dir.str(), Split::kTrain);
  EXPECT_EQ(set.size(), 9);
  EXPECT_EQ(set.num_classes, 10);
  EXPECT_EQ(set.name, "cifar10/train");
  ASSERT_EQ(set.images.sizes(), torch::IntArrayRef({9, 3, 32, 32}));
  EXPECT_EQ(set.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(set.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(set.labels, torch::tensor({6, 9, 9, 4, 1, 1, 2, 7, 8}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(set.images, expected_images(0, 9, 3, 32, 32)));
  // Spot values: image 4, green channel (1024..2047), row 2, column 3 -> flat position 1024 + 67.
  EXPECT_EQ(set.images[4][1][2][3].item<int>(), (4 + 7 * (1024 + 67)) % 256);
}

TEST_F(ImageSetTest, ReadsCifar10TestBatch) {
  write_file(dir.file("test_batch.bin"), cifar_records(20, {3, 8, 0}));
  const auto set = data::read_cifar10(dir.str(), Split::kTest);
  EXPECT_EQ(set.name, "cifar10/test");
  EXPECT_TRUE(torch::equal(set.labels, torch::tensor({3, 8, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(set.images, expected_images(20, 3, 3, 32, 32)));
}

TEST_F(ImageSetTest, ReadsCifar100FineLabels) {
  write_file(dir.file("train.bin"), cifar_records(0, {99, 0, 42}, {19, 0, 7}));
  write_file(dir.file("test.bin"), cifar_records(5, {13}, {2}));
  const auto train = data::read_cifar100(dir.str(), Split::kTrain);
  EXPECT_EQ(train.num_classes, 100);
  EXPECT_EQ(train.name, "cifar100/train");
  EXPECT_TRUE(torch::equal(train.labels, torch::tensor({99, 0, 42}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(train.images, expected_images(0, 3, 3, 32, 32)));
  const auto test = data::read_cifar100(dir.str(), Split::kTest);
  EXPECT_TRUE(torch::equal(test.labels, torch::tensor({13}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(test.images, expected_images(5, 1, 3, 32, 32)));
}

TEST_F(ImageSetTest, Cifar10MissingFileNamesThePathAndTheExpectedFiles) {
  for (int f = 1; f <= 4; ++f)
    write_file(dir.file("data_batch_" + std::to_string(f) + ".bin"), cifar_records(0, {1}));
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar10(dir.str(), Split::kTrain),
                          "CIFAR-10 file not found: " + dir.file("data_batch_5.bin"));
  PDEQ_ASSERT_THROWS_WITH(
      data::read_cifar10(dir.str(), Split::kTrain),
      "(expected data_batch_1.bin ... data_batch_5.bin and test_batch.bin in " + dir.str());
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar10(dir.file("nowhere"), Split::kTest),
                          "CIFAR-10 file not found: " + dir.file("nowhere/test_batch.bin"));
  PDEQ_ASSERT_THROWS_WITH(
      data::read_cifar100(dir.str(), Split::kTrain),
      "CIFAR-100 file not found: " + dir.file("train.bin") + " (expected train.bin and test.bin");
}

TEST_F(ImageSetTest, Cifar10TruncatedFileIsAnErrorNamingTheRecordSize) {
  auto bytes = cifar_records(0, {1, 2});
  bytes.resize(bytes.size() - 5);
  write_file(dir.file("test_batch.bin"), bytes);
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar10(dir.str(), Split::kTest),
                          "CIFAR-10 file " + dir.file("test_batch.bin") +
                              " has 6141 bytes, expected a non-zero multiple of 3073");
  write_file(dir.file("test_batch.bin"), {});
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar10(dir.str(), Split::kTest),
                          "has 0 bytes, expected a non-zero multiple");
  // A CIFAR-10 file read as CIFAR-100 is rejected by size (3073 is not a multiple of 3074).
  write_file(dir.file("test.bin"), cifar_records(0, {1}));
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar100(dir.str(), Split::kTest),
                          "expected a non-zero multiple of 3074");
}

TEST_F(ImageSetTest, LabelOutOfRangeNamesFileAndRecord) {
  write_file(dir.file("test_batch.bin"), cifar_records(0, {1, 10, 2}));
  PDEQ_ASSERT_THROWS_WITH(
      data::read_cifar10(dir.str(), Split::kTest),
      "CIFAR-10 file " + dir.file("test_batch.bin") + ": record 1 has label 10, expected 0..9");
  write_file(dir.file("test.bin"), cifar_records(0, {5, 100}, {1, 2}));
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar100(dir.str(), Split::kTest),
                          "record 1 has label 100 (fine), expected 0..99");
  write_file(dir.file("test.bin"), cifar_records(0, {5}, {20}));
  PDEQ_ASSERT_THROWS_WITH(data::read_cifar100(dir.str(), Split::kTest),
                          "record 0 has label 20 (coarse), expected 0..19");
}

TEST_F(ImageSetTest, ReadsGzippedIdxPair) {
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 4, 5));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({9, 0, 3}));
  const auto set = data::read_mnist_idx(dir.str(), Split::kTrain, "fashion_mnist");
  EXPECT_EQ(set.name, "fashion_mnist/train");
  EXPECT_EQ(set.num_classes, 10);
  ASSERT_EQ(set.images.sizes(), torch::IntArrayRef({3, 1, 4, 5}));
  EXPECT_TRUE(torch::equal(set.labels, torch::tensor({9, 0, 3}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(set.images, expected_images(0, 3, 1, 4, 5)));
  EXPECT_EQ(set.images[2][0][1][3].item<int>(), 2 + 7 * 8);  // row-major: position 1*5 + 3
}

TEST_F(ImageSetTest, ReadsPlainIdxPairWhenNoGzip) {
  write_file(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 3, 3, 40));
  write_file(dir.file("t10k-labels-idx1-ubyte"), idx_labels({7, 1}));
  const auto set = data::read_mnist_idx(dir.str(), Split::kTest);
  EXPECT_EQ(set.name, "mnist/test");
  EXPECT_TRUE(torch::equal(set.labels, torch::tensor({7, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(set.images, expected_images(40, 2, 1, 3, 3)));
}

TEST_F(ImageSetTest, IdxMissingFileNamesPathAndExpectedFiles) {
  write_gz(dir.file("t10k-images-idx3-ubyte.gz"), idx_images(1, 2, 2));
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTest, "fashion_mnist"),
                          "fashion_mnist file not found: " + dir.file("t10k-labels-idx1-ubyte.gz") +
                              " (expected train-images-idx3-ubyte[.gz]");
}

TEST_F(ImageSetTest, IdxWrongMagicNumbersAreErrors) {
  // Images and labels swapped: each file's magic is the other's.
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_labels({1, 2}));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_images(2, 2, 2));
  PDEQ_ASSERT_THROWS_WITH(
      data::read_mnist_idx(dir.str(), Split::kTrain),
      "mnist IDX file " + dir.file("train-labels-idx1-ubyte.gz") + " has magic number 2051, expected 2049");
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({1, 2}));
  PDEQ_ASSERT_THROWS_WITH(
      data::read_mnist_idx(dir.str(), Split::kTrain),
      "mnist IDX file " + dir.file("train-images-idx3-ubyte.gz") + " has magic number 2049, expected 2051");
}

TEST_F(ImageSetTest, IdxCountMismatchIsAnError) {
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(3, 2, 2));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({1, 2}));
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          dir.file("train-images-idx3-ubyte.gz") + " holds 3 images but " +
                              dir.file("train-labels-idx1-ubyte.gz") +
                              " holds 2 labels, expected equal counts");
}

TEST_F(ImageSetTest, IdxTruncatedOrOversizedFilesAreErrors) {
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({1, 2, 3}));
  auto images = idx_images(3, 4, 4);
  images.resize(images.size() - 10);
  write_gz(dir.file("train-images-idx3-ubyte.gz"), images);
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          "mnist IDX file " + dir.file("train-images-idx3-ubyte.gz") +
                              " is truncated: expected 48 bytes of pixels (3 images of 4x4), got 38");
  // Only the header's first field.
  write_gz(dir.file("train-images-idx3-ubyte.gz"), Bytes{0, 0, 8, 3});
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          "is truncated: expected 12 bytes of header (count, rows, columns), got 0");
  // A plain file is checked against its size on disk.
  std::filesystem::remove(dir.file("train-images-idx3-ubyte.gz"));
  write_file(dir.file("train-images-idx3-ubyte"), images);
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          dir.file("train-images-idx3-ubyte") + " has 54 bytes, expected 64 (16-byte header");
  // Extra bytes after the declared payload.
  auto longer = idx_images(3, 4, 4);
  longer.push_back(0);
  write_gz(dir.file("train-images-idx3-ubyte.gz"), longer);
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          "holds more data than its header declares (3 images of 4x4)");
  // A corrupt gzip stream.
  Bytes garbage = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  write_file(dir.file("train-images-idx3-ubyte.gz"), garbage);
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          dir.file("train-images-idx3-ubyte.gz"));
}

TEST_F(ImageSetTest, IdxLabelOutOfRangeIsAnError) {
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(2, 2, 2));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels({1, 10}));
  PDEQ_ASSERT_THROWS_WITH(data::read_mnist_idx(dir.str(), Split::kTrain),
                          dir.file("train-labels-idx1-ubyte.gz") + ": label 10 at index 1, expected 0..9");
}

TEST_F(ImageSetTest, SubsetSelectsRows) {
  write_file(dir.file("test_batch.bin"), cifar_records(0, {0, 1, 2, 3}));
  const auto set = data::read_cifar10(dir.str(), Split::kTest);
  const auto sub = set.subset(torch::tensor({3, 1}, torch::kInt64));
  EXPECT_EQ(sub.size(), 2);
  EXPECT_EQ(sub.num_classes, 10);
  EXPECT_TRUE(torch::equal(sub.labels, torch::tensor({3, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(sub.images[0], expected_images(3, 1, 3, 32, 32)[0]));
  PDEQ_ASSERT_THROWS_WITH(set.subset(torch::tensor({0, 4}, torch::kInt64)),
                          "subset index must be in [0, 4), but got 4 at position 1");
  PDEQ_ASSERT_THROWS_WITH(set.subset(torch::tensor({0, 1}, torch::kInt32)),
                          "subset indices must be a 1-D int64 tensor");
}

// Real CIFAR-10 (when present): counts, known first record, class balance, and one augmented loader epoch.
TEST(ImageSetRealData, Cifar10BinaryFiles) {
  const std::string root = shared_data("cifar-10-batches-bin");
  if (!std::filesystem::exists(root + "/data_batch_1.bin")) GTEST_SKIP() << "CIFAR-10 not found at " << root;
  const auto start = std::chrono::steady_clock::now();
  const auto train = data::read_cifar10(root, Split::kTrain);
  const auto test = data::read_cifar10(root, Split::kTest);
  const double read_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(train.images.sizes(), torch::IntArrayRef({50000, 3, 32, 32}));
  ASSERT_EQ(test.images.sizes(), torch::IntArrayRef({10000, 3, 32, 32}));
  // README of the shared copy: first labels 6 9 9 4 1 (train) and 3 8 8 0 6 (test); first pixels 59 43 50.
  EXPECT_TRUE(torch::equal(train.labels.slice(0, 0, 5), torch::tensor({6, 9, 9, 4, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(test.labels.slice(0, 0, 5), torch::tensor({3, 8, 8, 0, 6}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(train.images[0][0][0].slice(0, 0, 3), torch::tensor({59, 43, 50}, torch::kUInt8)));
  EXPECT_TRUE(torch::equal(torch::bincount(train.labels), torch::full({10}, 5000, torch::kInt64)));
  EXPECT_TRUE(torch::equal(torch::bincount(test.labels), torch::full({10}, 1000, torch::kInt64)));

  // One augmented, shuffled epoch at batch 128 with prefetch: every label seen exactly as often as in the
  // set.
  data::BatchLoader loader(train,
                           data::LoaderOptions().batch_size(128).shuffle(true).augment(true).prefetch(2), 1);
  EXPECT_EQ(loader.batches_per_epoch(), 391);
  const auto epoch_start = std::chrono::steady_clock::now();
  loader.start_epoch(0);
  auto counts = torch::zeros({10}, torch::kInt64);
  int64_t batches = 0;
  while (auto batch = loader.next()) {
    counts += torch::bincount(batch->labels, {}, 10);
    ++batches;
  }
  const double epoch_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
  EXPECT_EQ(batches, 391);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, 5000, torch::kInt64)));
  std::cout << "[ info ] CIFAR-10 read in " << read_seconds
            << " s; augmented epoch: " << batches / epoch_seconds << " batches/s at batch 128\n";
}

}  // namespace
}  // namespace pdeq::test
