// Mini-batches from an in-memory ImageSet or any BatchSource (streaming image folders): shuffle,
// augmentation, normalisation, background prefetch.
#pragma once

#include <pdeq/data/image_set.h>

#include <ATen/core/Generator.h>
#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace pdeq::data {

struct Batch {
  torch::Tensor images;  ///< float [B, C, H, W], normalised
  torch::Tensor labels;  ///< int64 [B]
};

/// Where a BatchLoader's samples come from. The loader decides which samples form batch k of epoch e and
/// derives one 64-bit `key` from (seed, e, k); a source turns them into a batch and must draw everything
/// random from `key` alone (so that batches do not depend on timing, threads or what was loaded before).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Number of samples; indices passed to get_batch are in [0, size()).
  virtual int64_t size() const = 0;
  /// The batch of samples `indices[0..count)` in that order. `indices[0]` sits at position `first` of its
  /// batch (a data-parallel shard's rows start there): sample j draws its randomness as position first + j,
  /// so shards together equal the whole batch. May return fewer samples than asked when the source skips
  /// unreadable ones (see ImageFolderSource). Called by one thread at a time.
  virtual Batch get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first = 0) = 0;
};

/// The part of every batch that one process of a data-parallel run takes: rows [n·rank/count,
/// n·(rank+1)/count) of each n-sample batch. The batches themselves (order, crops, flips) are those of the
/// unsharded loader, so `count` ranks together see exactly the batches one process would.
struct Shard {
  int64_t rank = 0;
  int64_t count = 1;
};

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(bool, shuffle) = false;    ///< a new order every epoch, from (seed, epoch)
  TORCH_ARG(bool, drop_last) = false;  ///< false: the last, smaller batch is kept
  /// A last batch that would give some rank fewer samples than this joins the batch before it (which then
  /// holds up to batch_size + min_batch * ranks - 1 samples), so that no sample is left out and none is
  /// alone: training batch norm needs 2 values per channel. Ignored with drop_last or a single batch.
  /// (batch_size itself must only be >= the number of ranks.)
  TORCH_ARG(int64_t, min_batch) = 1;
  TORCH_ARG(int64_t, prefetch) = 2;  ///< batches prepared ahead on a background thread (0: inline in next())
  // In-memory ImageSets only (a BatchSource brings its own transforms):
  TORCH_ARG(bool, augment) = false;  ///< random crop with `crop_padding`-pixel zero padding + horizontal flip
  TORCH_ARG(int64_t, crop_padding) = 4;
  TORCH_ARG(std::vector<double>, mean) = {};  ///< per channel; empty: 0
  TORCH_ARG(std::vector<double>, std) = {};   ///< per channel; empty: 1 (pixels just scaled to [0, 1])
  TORCH_ARG(Shard, shard) = {};  ///< data-parallel: this process's rows of each batch (batch_size is global)
};

/// Iterates one epoch at a time over a source: an in-memory `set`, yielding x = (crop_flip(image)/255 -
/// mean)/std per channel, or any BatchSource (ImageFolderSource decodes files on worker threads).
///
/// Everything random about epoch e is a function of (seed, e, batch index) alone: the order comes from a
/// stream seeded by (seed, e), the crops and flips of batch k from one seeded by (seed, e, k). So
/// start_epoch(e, k) yields exactly batches k.. of the uninterrupted epoch (a resumed run sees the same
/// data), two loaders with the same seed yield identical batches, and prefetching changes nothing but timing.
///
/// Batches are prepared with plain loops on raw uint8 data (no intra-op parallel torch ops), in one pass per
/// image: gather, crop, flip, convert, normalise. With prefetch > 0 a background thread keeps up to
/// `prefetch` batches ready; an exception there is re-thrown by next(). One thread drives a loader
/// (start_epoch/next are not meant to be called concurrently).
///
/// Example:
///   BatchLoader loader(splits.train, LoaderOptions().batch_size(128).shuffle(true).augment(true), seed);
///   loader.start_epoch(epoch);
///   while (auto batch = loader.next()) { ... }
class BatchLoader {
 public:
  /// `set`: images uint8 [N, C, H, W], labels int64 [N].
  BatchLoader(ImageSet set, LoaderOptions options, uint64_t seed = 0);
  /// Batches from `source` (its own transforms; options.augment/mean/std are not used).
  BatchLoader(std::shared_ptr<BatchSource> source, LoaderOptions options, uint64_t seed = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// Begins epoch `epoch` (>= 0), skipping its first `first_batch` batches (resume); stops the previous
  /// epoch's prefetching, if any, first.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch, or nullopt at its end. Requires start_epoch().
  std::optional<Batch> next();

  int64_t batches_per_epoch() const;
  /// Whether the short last batch joins the one before (LoaderOptions::min_batch).
  bool merges_last_batch() const;
  int64_t size() const { return source_->size(); }
  const LoaderOptions& options() const { return options_; }

 private:
  struct Prefetcher;
  Batch make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const;
  void stop_prefetcher();

  std::shared_ptr<BatchSource> source_;
  LoaderOptions options_;
  uint64_t seed_;
  std::shared_ptr<const std::vector<int64_t>> order_;  ///< sample order of the current epoch
  int64_t epoch_ = -1;                                 ///< -1: start_epoch not called yet
  int64_t next_batch_ = 0;
  std::unique_ptr<Prefetcher> prefetcher_;
};

/// uint8 [B, C, H, W] -> float [B, C, H, W]: (x/255 - mean[c]) / std[c]; empty mean/std mean 0 and 1.
torch::Tensor normalize(const torch::Tensor& images, const std::vector<double>& mean,
                        const std::vector<double>& std);
/// Random crop with `padding`-pixel zero padding, then a horizontal flip with probability 1/2, independently
/// per image, drawn from `generator` (a CPU generator). uint8 or float [B, C, H, W] in, same dtype and shape
/// out.
torch::Tensor augment_crop_flip(const torch::Tensor& images, int64_t padding, at::Generator generator);

}  // namespace pdeq::data
