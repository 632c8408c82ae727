// BatchLoader (shapes, coverage, determinism, resume, prefetch) and the standalone normalize/augment
// transforms.
#include "data_support.h"
#include "test_support.h"

#include <pdeq/data/loader.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

namespace pdeq::test {
namespace {

using data::Batch;
using data::BatchLoader;
using data::LoaderOptions;

struct LoaderTest : SeedingFixture {};

/// n images C x H x W whose pixels are test_pixel(id, p) (distinct within an image; first pixel = id), label
/// id % 10.
data::ImageSet id_set(int64_t n, int64_t c, int64_t h, int64_t w) {
  data::ImageSet set;
  set.images = torch::empty({n, c, h, w}, torch::kUInt8);
  uint8_t* px = set.images.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < c * h * w; ++p) px[i * c * h * w + p] = test_pixel(i, p);
  }
  set.labels = torch::arange(n, torch::kInt64) % 10;
  set.num_classes = 10;
  set.name = "ids";
  return set;
}

/// Ids of a batch from a loader without mean/std or augmentation: first pixel * 255.
std::vector<int64_t> batch_ids(const Batch& b) {
  const auto first = (b.images.reshape({b.images.size(0), -1}).select(1, 0) * 255).round().to(torch::kInt64);
  return std::vector<int64_t>(first.data_ptr<int64_t>(), first.data_ptr<int64_t>() + first.numel());
}

std::vector<Batch> epoch_batches(BatchLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels)) << "batch " << i;
  }
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i].images, b[i].images) || !torch::equal(a[i].labels, b[i].labels)) return false;
  }
  return true;
}

/// Crop the zero-padded image at (dy, dx), then flip horizontally, with plain torch ops.
torch::Tensor reference_crop_flip(const torch::Tensor& image, int64_t p, int64_t dy, int64_t dx, bool flip) {
  const auto padded = torch::constant_pad_nd(image, {p, p, p, p}, 0);
  const auto crop = padded.slice(1, dy, dy + image.size(1)).slice(2, dx, dx + image.size(2));
  return flip ? crop.flip({2}) : crop;
}

torch::Tensor reference_normalize(const torch::Tensor& images, const std::vector<double>& mean,
                                  const std::vector<double>& std) {
  const auto m = torch::tensor(mean, torch::kFloat64).view({1, -1, 1, 1});
  const auto s = torch::tensor(std, torch::kFloat64).view({1, -1, 1, 1});
  return ((images.to(torch::kFloat64) / 255 - m) / s).to(torch::kFloat32);
}

TEST_F(LoaderTest, BatchShapesKeepTheLastPartialBatchUnlessDropLast) {
  BatchLoader loader(id_set(10, 3, 4, 5), LoaderOptions().batch_size(4));
  EXPECT_EQ(loader.size(), 10);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  const auto batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].images.sizes(), torch::IntArrayRef({4, 3, 4, 5}));
  EXPECT_EQ(batches[0].images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(batches[0].labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(batches[2].images.sizes(), torch::IntArrayRef({2, 3, 4, 5}));
  EXPECT_EQ(batch_ids(batches[2]), std::vector<int64_t>({8, 9}));
  EXPECT_FALSE(loader.next().has_value());  // stays at the end

  BatchLoader dropping(id_set(10, 3, 4, 5), LoaderOptions().batch_size(4).drop_last(true));
  EXPECT_EQ(dropping.batches_per_epoch(), 2);
  EXPECT_EQ(epoch_batches(dropping, 0).size(), 2u);

  BatchLoader empty(id_set(0, 1, 2, 2), LoaderOptions().batch_size(4));
  EXPECT_EQ(empty.batches_per_epoch(), 0);
  EXPECT_TRUE(epoch_batches(empty, 0).empty());
}

TEST_F(LoaderTest, ShuffledEpochCoversEverySampleExactlyOnce) {
  BatchLoader loader(id_set(37, 1, 3, 3), LoaderOptions().batch_size(8).shuffle(true), 11);
  std::vector<int64_t> seen;
  for (const auto& b : epoch_batches(loader, 0)) {
    const auto ids = batch_ids(b);
    EXPECT_TRUE(torch::equal(b.labels, torch::tensor(ids) % 10));  // labels travel with their images
    seen.insert(seen.end(), ids.begin(), ids.end());
  }
  std::vector<int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(37);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(sorted, all);
  EXPECT_NE(seen, all);  // actually shuffled
}

TEST_F(LoaderTest, EpochsHaveDifferentOrdersAndSeedsDifferentBatches) {
  BatchLoader loader(id_set(40, 1, 3, 3), LoaderOptions().batch_size(40).shuffle(true), 3);
  const auto e0 = batch_ids(epoch_batches(loader, 0)[0]);
  const auto e1 = batch_ids(epoch_batches(loader, 1)[0]);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(batch_ids(epoch_batches(loader, 0)[0]), e0);  // epoch 0 again: the same order

  const auto options = LoaderOptions().batch_size(16).shuffle(true).augment(true).crop_padding(2);
  BatchLoader a(id_set(40, 3, 6, 7), options, 5), b(id_set(40, 3, 6, 7), options, 5),
      c(id_set(40, 3, 6, 7), options, 6);
  const auto batches_a = epoch_batches(a, 2);
  expect_same_batches(batches_a, epoch_batches(b, 2));
  EXPECT_FALSE(same_batches(batches_a, epoch_batches(c, 2)));
}

TEST_F(LoaderTest, NormalisesWithPerChannelMeanAndStd) {
  // Channel 0: pixels 0, 51, 255 with mean 0.5, std 0.25; channel 1: 255, 0, 102 with mean 0.2, std 0.4.
  data::ImageSet set;
  set.images = torch::tensor({0, 51, 255, 255, 0, 102}, torch::kUInt8).view({1, 2, 1, 3});
  set.labels = torch::tensor({4}, torch::kInt64);
  set.num_classes = 10;
  const std::vector<double> mean = {0.5, 0.2}, std = {0.25, 0.4};
  const auto expected = torch::tensor({-2.0f, -1.2f, 2.0f, 2.0f, -0.5f, 0.5f}).view({1, 2, 1, 3});
  BatchLoader loader(set, LoaderOptions().mean(mean).std(std));
  const auto batches = epoch_batches(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_TRUE(torch::allclose(batches[0].images, expected, /*rtol=*/0, /*atol=*/1e-6));
  EXPECT_EQ(batches[0].labels.item<int64_t>(), 4);
  EXPECT_TRUE(torch::allclose(data::normalize(set.images, mean, std), expected, /*rtol=*/0, /*atol=*/1e-6));
  // Without statistics: plain scaling to [0, 1].
  EXPECT_TRUE(torch::allclose(data::normalize(set.images, {}, {}), set.images.to(torch::kFloat32) / 255,
                              /*rtol=*/0, /*atol=*/1e-7));
  // Random images against the formula written with torch ops.
  const auto images = torch::randint(0, 256, {5, 3, 8, 9}, torch::kUInt8);
  const std::vector<double> m3 = {0.4914, 0.4822, 0.4465}, s3 = {0.2470, 0.2435, 0.2616};
  EXPECT_TRUE(torch::allclose(data::normalize(images, m3, s3), reference_normalize(images, m3, s3), 0, 1e-6));
}

TEST_F(LoaderTest, ResumingMidEpochYieldsTheRemainingBatchesOfTheUninterruptedEpoch) {
  const auto options = LoaderOptions().batch_size(6).shuffle(true).augment(true).crop_padding(2);
  BatchLoader full(id_set(32, 3, 6, 7), options, 9);
  const auto all = epoch_batches(full, 3);
  ASSERT_EQ(all.size(), 6u);
  BatchLoader resumed(id_set(32, 3, 6, 7), options, 9);
  expect_same_batches(epoch_batches(resumed, 3, 2), std::vector<Batch>(all.begin() + 2, all.end()));
  EXPECT_TRUE(epoch_batches(resumed, 3, 6).empty());  // resuming at the end: nothing left
  // Restarting an epoch while the prefetcher is mid-way through it.
  resumed.start_epoch(3);
  ASSERT_TRUE(resumed.next().has_value());
  expect_same_batches(epoch_batches(resumed, 3, 4), std::vector<Batch>(all.begin() + 4, all.end()));
}

// Data parallelism: the ranks' shards of batch k, concatenated in rank order, are batch k of the unsharded
// loader (same order, crops and flips), including the last, smaller batch split unevenly (7 = 2 + 2 + 3).
TEST_F(LoaderTest, ShardsOfABatchConcatenateToTheUnshardedBatch) {
  const auto base = LoaderOptions().batch_size(6).shuffle(true).augment(true).crop_padding(2);
  // Fewer samples per batch than ranks: refused at once.
  PDEQ_ASSERT_THROWS_WITH(
      BatchLoader(id_set(25, 3, 6, 7), LoaderOptions(base).batch_size(2).shard({0, 3}), 4),
      "batch_size (2) must be at least the number of data-parallel ranks (3)");
  // 25 = 6 + 6 + 6 + 6 + 1: the last sample cannot give each of 3 ranks a row, so it joins batch 3 (7 rows).
  BatchLoader merged(id_set(25, 3, 6, 7), LoaderOptions(base).shard({2, 3}), 4);
  EXPECT_TRUE(merged.merges_last_batch());
  const auto merged_batches = epoch_batches(merged, 0);
  ASSERT_EQ(merged_batches.size(), 4u);
  EXPECT_EQ(merged_batches[3].labels.size(0), 3);  // rows [4, 7) of 7
  const auto options = LoaderOptions(base).batch_size(8);
  BatchLoader unsharded(id_set(31, 3, 6, 7), options, 4);  // 8 8 8 7
  const auto expected = epoch_batches(unsharded, 2);
  std::vector<std::vector<Batch>> shards;
  for (int64_t r = 0; r < 3; ++r) {
    BatchLoader shard(id_set(31, 3, 6, 7), LoaderOptions(options).shard({r, 3}), 4);
    shards.push_back(epoch_batches(shard, 2));
  }
  ASSERT_EQ(expected.size(), 4u);
  for (size_t k = 0; k < expected.size(); ++k) {
    ASSERT_EQ(shards[0][k].labels.size(0), expected[k].labels.size(0) / 3);  // rows [n*r/3, n*(r+1)/3)
    const auto images = torch::cat({shards[0][k].images, shards[1][k].images, shards[2][k].images});
    const auto labels = torch::cat({shards[0][k].labels, shards[1][k].labels, shards[2][k].labels});
    EXPECT_TRUE(torch::equal(images, expected[k].images)) << "batch " << k;
    EXPECT_TRUE(torch::equal(labels, expected[k].labels)) << "batch " << k;
  }
  EXPECT_EQ(shards[2][3].labels.size(0), 3);  // 7 rows: 2, 2, 3
}

TEST_F(LoaderTest, PrefetchDepthDoesNotChangeTheBatches) {
  auto options =
      LoaderOptions().batch_size(5).shuffle(true).augment(true).mean({0.1, 0.2, 0.3}).std({1, 2, 3});
  BatchLoader inline_loader(id_set(23, 3, 5, 5), options.prefetch(0), 1);
  const auto expected0 = epoch_batches(inline_loader, 0);
  const auto expected1 = epoch_batches(inline_loader, 1);
  for (int64_t depth : {1, 2, 7}) {
    BatchLoader loader(id_set(23, 3, 5, 5), options.prefetch(depth), 1);
    expect_same_batches(epoch_batches(loader, 0), expected0);
    expect_same_batches(epoch_batches(loader, 1), expected1);
  }
}

TEST_F(LoaderTest, AbandoningAnEpochShutsThePrefetcherDown) {
  // Destroying or restarting with batches queued and the worker blocked on a full queue must not hang.
  for (int round = 0; round < 20; ++round) {
    BatchLoader loader(id_set(64, 3, 8, 8), LoaderOptions().batch_size(4).prefetch(3).augment(true), 2);
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
    loader.start_epoch(1);
    if (round % 2 == 0) {
      ASSERT_TRUE(loader.next().has_value());
    }
  }
}

TEST_F(LoaderTest, AugmentedImageIsTheNormalisedCropFlipOfItsSource) {
  const int64_t padding = 2;
  const std::vector<double> mean = {0.3, 0.4, 0.5}, std = {0.2, 0.25, 0.3};
  const auto set = id_set(20, 3, 6, 7);  // non-square, distinct pixels: every crop/flip looks different
  BatchLoader loader(
      set, LoaderOptions().batch_size(8).augment(true).crop_padding(padding).mean(mean).std(std), 4);
  std::set<std::tuple<int64_t, int64_t, bool>> draws;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto batches = epoch_batches(loader, epoch);
    for (size_t b = 0; b < batches.size(); ++b) {
      for (int64_t i = 0; i < batches[b].images.size(0); ++i) {
        const int64_t source = static_cast<int64_t>(b) * 8 + i;  // no shuffle: file order
        const auto image = batches[b].images[i];
        int matches = 0;
        for (int64_t dy = 0; dy <= 2 * padding; ++dy) {
          for (int64_t dx = 0; dx <= 2 * padding; ++dx) {
            for (bool flip : {false, true}) {
              const auto ref = reference_normalize(
                  reference_crop_flip(set.images[source], padding, dy, dx, flip).unsqueeze(0), mean, std)[0];
              if (torch::allclose(image, ref, 0, 1e-6)) {
                ++matches;
                draws.insert({dy, dx, flip});
              }
            }
          }
        }
        EXPECT_EQ(matches, 1) << "epoch " << epoch << " batch " << b << " image " << i;
      }
    }
  }
  // 60 draws over 50 outcomes: both flips and many offsets must have occurred.
  std::set<bool> flips;
  for (const auto& d : draws) flips.insert(std::get<2>(d));
  EXPECT_EQ(flips.size(), 2u);
  EXPECT_GT(draws.size(), 25u);
}

TEST_F(LoaderTest, CropFlipOnAHandMadeImage) {
  // 1 x 3 x 3 image 1..9, padding 1, many copies: exactly the 9 offsets x 2 flips occur, each about equally
  // often.
  const auto image = torch::arange(1, 10, torch::kUInt8).view({1, 1, 3, 3});
  const auto copies = image.expand({1800, 1, 3, 3}).contiguous();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
  const auto out = data::augment_crop_flip(copies, 1, gen);
  ASSERT_EQ(out.sizes(), copies.sizes());
  EXPECT_EQ(out.scalar_type(), torch::kUInt8);
  std::map<std::vector<int64_t>, int> counts;
  const auto flat = out.view({1800, 9}).to(torch::kInt64);
  for (int64_t i = 0; i < 1800; ++i) {
    const auto row = flat[i].contiguous();
    counts[std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + 9)]++;
  }
  EXPECT_EQ(counts.size(), 18u);
  for (const auto& [pattern, count] : counts) {
    EXPECT_GT(count, 60) << c10::IntArrayRef(pattern);  // expected 100 each
    EXPECT_LT(count, 140) << c10::IntArrayRef(pattern);
  }
  // Literal outcomes: the identity, the pure flip, the top-left crop (zeros on the top row and left column),
  // and the bottom-right crop flipped (zeros on the bottom row and, after the flip, the left column).
  for (const std::vector<int64_t>& literal :
       {std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}, std::vector<int64_t>{3, 2, 1, 6, 5, 4, 9, 8, 7},
        std::vector<int64_t>{0, 0, 0, 0, 1, 2, 0, 4, 5}, std::vector<int64_t>{0, 6, 5, 0, 9, 8, 0, 0, 0}}) {
    EXPECT_EQ(counts.count(literal), 1u) << c10::IntArrayRef(literal);
  }
  // Every outcome is one of the reference crops.
  std::set<std::vector<int64_t>> references;
  for (int64_t dy = 0; dy < 3; ++dy) {
    for (int64_t dx = 0; dx < 3; ++dx) {
      for (bool flip : {false, true}) {
        const auto r =
            reference_crop_flip(image[0], 1, dy, dx, flip).reshape({9}).to(torch::kInt64).contiguous();
        references.insert(std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + 9));
      }
    }
  }
  for (const auto& [pattern, count] : counts)
    EXPECT_EQ(references.count(pattern), 1u) << c10::IntArrayRef(pattern);

  // Padding 0: only flips (columns reversed). Float input takes the same draws from the same seed.
  auto gen_a = at::make_generator<at::CPUGeneratorImpl>(7),
       gen_b = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto flips = data::augment_crop_flip(copies.slice(0, 0, 50), 0, gen_a);
  const auto flips_float = data::augment_crop_flip(copies.slice(0, 0, 50).to(torch::kFloat32), 0, gen_b);
  EXPECT_TRUE(torch::equal(flips_float, flips.to(torch::kFloat32)));
  const auto flipped = (flips == image.flip({3})).view({50, -1}).all(1);
  const auto same = (flips == image).view({50, -1}).all(1);
  EXPECT_TRUE((flipped ^ same).all().item<bool>());
  EXPECT_GT(flipped.sum().item<int64_t>(), 10);
  EXPECT_GT(same.sum().item<int64_t>(), 10);
}

TEST_F(LoaderTest, MisuseIsAnErrorSayingWhatIsExpected) {
  BatchLoader loader(id_set(10, 3, 2, 2), LoaderOptions().batch_size(4));
  PDEQ_ASSERT_THROWS_WITH(loader.next(), "start_epoch() was not called");
  PDEQ_ASSERT_THROWS_WITH(loader.start_epoch(0, 4), "first_batch must be in [0, 3], but got 4");
  PDEQ_ASSERT_THROWS_WITH(loader.start_epoch(-1), "epoch must be >= 0, but got -1");
  PDEQ_ASSERT_THROWS_WITH(BatchLoader(id_set(4, 3, 2, 2), LoaderOptions().batch_size(0)),
                          "batch_size must be positive, but got 0");
  PDEQ_ASSERT_THROWS_WITH(BatchLoader(id_set(4, 3, 2, 2), LoaderOptions().mean({0.5, 0.5})),
                          "mean must have one value per channel (3), but got 2 values");
  PDEQ_ASSERT_THROWS_WITH(BatchLoader(id_set(4, 3, 2, 2), LoaderOptions().std({1, 0, 1})),
                          "std must be positive, but got 0");
  auto bad = id_set(4, 3, 2, 2);
  bad.labels = bad.labels.slice(0, 0, 3);
  PDEQ_ASSERT_THROWS_WITH(BatchLoader(bad, LoaderOptions()), "loader labels must be int64 [4], but got");
  PDEQ_ASSERT_THROWS_WITH(data::normalize(torch::zeros({1, 1, 2, 2}), {}, {}),
                          "images to normalize must be uint8, but got Float");
  PDEQ_ASSERT_THROWS_WITH(data::normalize(torch::zeros({2, 2}, torch::kUInt8), {}, {}),
                          "images to normalize must be a CPU tensor [B, C, H, W], but got [2, 2]");
  PDEQ_ASSERT_THROWS_WITH(
      data::augment_crop_flip(torch::zeros({1, 1, 2, 2}, torch::kUInt8), -1, at::Generator()),
      "padding must be >= 0, but got -1");
}

// Training batch norm fails on a batch of one sample ("Expected more than 1 value per channel"): with
// min_batch 2 a last batch of one joins the batch before it, so every sample is still seen once.
TEST_F(LoaderTest, ALastBatchTooSmallJoinsTheOneBefore) {
  const auto options = LoaderOptions().batch_size(4).min_batch(2);
  BatchLoader loader(id_set(9, 1, 2, 2), options, 1);  // 4 + 4 + 1 -> 4 + 5
  EXPECT_TRUE(loader.merges_last_batch());
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  loader.start_epoch(0);
  std::vector<int64_t> sizes;
  std::vector<int64_t> ids;
  while (auto batch = loader.next()) {
    sizes.push_back(batch->labels.size(0));
    for (const int64_t id : batch_ids(*batch)) ids.push_back(id);
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 5}));
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));  // every sample once
  // A last batch of two (or none) stays as it is; so does a single batch, and drop_last drops it.
  EXPECT_FALSE(BatchLoader(id_set(10, 1, 2, 2), options, 1).merges_last_batch());
  EXPECT_FALSE(BatchLoader(id_set(8, 1, 2, 2), options, 1).merges_last_batch());
  EXPECT_FALSE(BatchLoader(id_set(1, 1, 2, 2), options, 1).merges_last_batch());
  EXPECT_EQ(BatchLoader(id_set(9, 1, 2, 2), LoaderOptions(options).drop_last(true), 1).batches_per_epoch(),
            2);
  // The default keeps a last batch of one (evaluation: batch norm uses its running statistics).
  EXPECT_EQ(BatchLoader(id_set(9, 1, 2, 2), LoaderOptions().batch_size(4), 1).batches_per_epoch(), 3);
}

}  // namespace
}  // namespace pdeq::test
