// Mini-batches from an in-memory ImageSet: shuffle, tensor augmentation, normalisation, background prefetch.
#pragma once

#include <pdeq/data/image_set.h>

#include <torch/arg.h>

#include <memory>
#include <optional>
#include <vector>

namespace pdeq::data {

struct Batch {
  torch::Tensor images;  ///< float [B, C, H, W], normalised
  torch::Tensor labels;  ///< int64 [B]
};

struct LoaderOptions {
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(bool, shuffle) = false;
  TORCH_ARG(bool, augment) = false;       ///< random crop with 4-pixel zero padding + horizontal flip
  TORCH_ARG(int64_t, crop_padding) = 4;
  TORCH_ARG(bool, drop_last) = false;
  TORCH_ARG(int64_t, prefetch) = 2;       ///< batches prepared ahead on a background thread (0: inline)
  TORCH_ARG(std::vector<double>, mean) = {};
  TORCH_ARG(std::vector<double>, std) = {};
};

/// Iterates one epoch at a time. Everything random about epoch e (order, crops, flips) is a function of
/// (seed, e, batch index) alone, so a run resumed mid-epoch sees exactly the batches it would have seen.
///
/// Example:
///   BatchLoader loader(splits.train, LoaderOptions().batch_size(128).shuffle(true).augment(true), seed);
///   loader.start_epoch(epoch);
///   while (auto batch = loader.next()) { ... }
class BatchLoader {
 public:
  BatchLoader(ImageSet set, LoaderOptions options, uint64_t seed = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  /// Begins epoch `epoch`, skipping its first `first_batch` batches (resume).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  /// The next batch of the current epoch, or nullopt at its end.
  std::optional<Batch> next();

  int64_t batches_per_epoch() const;
  int64_t size() const { return set_.size(); }
  const LoaderOptions& options() const { return options_; }

 private:
  struct Prefetcher;
  Batch make_batch(int64_t epoch, int64_t batch_index) const;

  ImageSet set_;
  LoaderOptions options_;
  uint64_t seed_;
  std::unique_ptr<Prefetcher> prefetcher_;
};

/// uint8 [B,C,H,W] -> float, /255, per-channel (x-mean)/std.
torch::Tensor normalize(const torch::Tensor& images, const std::vector<double>& mean,
                        const std::vector<double>& std);
/// Random crop with zero padding + horizontal flip, per image, drawn from `generator`.
torch::Tensor augment_crop_flip(const torch::Tensor& images, int64_t padding, at::Generator generator);

}  // namespace pdeq::data
