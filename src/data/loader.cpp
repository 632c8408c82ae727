// BatchLoader and the standalone transforms; the per-image work is the shared kernel of kernels.h.
#include <pdeq/data/loader.h>

#include "kernels.h"
#include "random.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>

namespace pdeq::data {
namespace {

// Stream tags: the order and the crops of the same (seed, epoch) come from unrelated streams.
constexpr uint64_t kShuffleStream = 0x73687566666c65ULL;  // "shuffle"
constexpr uint64_t kAugmentStream = 0x6175676d656e74ULL;  // "augment"

void check_images(const torch::Tensor& images, const char* what) {
  TORCH_CHECK(
      images.defined() && images.dim() == 4 && images.device().is_cpu(), what,
      " must be a CPU tensor [B, C, H, W], but got ",
      images.defined() ? c10::str(images.sizes(), " on ", images.device()) : std::string("undefined"));
}

void check_stats(int64_t channels, const std::vector<double>& mean, const std::vector<double>& std) {
  TORCH_CHECK(mean.empty() || static_cast<int64_t>(mean.size()) == channels,
              "mean must have one value per channel (", channels, "), but got ", mean.size(), " values");
  TORCH_CHECK(std.empty() || static_cast<int64_t>(std.size()) == channels,
              "std must have one value per channel (", channels, "), but got ", std.size(), " values");
  for (double s : std) TORCH_CHECK(s > 0, "std must be positive, but got ", s);
}

/// Table lookup of a uint8 pixel of channel c: (v/255 - mean[c]) / std[c].
struct TableMap {
  const float* table;
  float operator()(int64_t c, uint8_t v) const { return table[c * 256 + v]; }
};

struct IdentityMap {
  template <typename T>
  T operator()(int64_t /*channel*/, T v) const {
    return v;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------- standalone
// transforms

torch::Tensor normalize(const torch::Tensor& images, const std::vector<double>& mean,
                        const std::vector<double>& std) {
  check_images(images, "images to normalize");
  TORCH_CHECK(images.scalar_type() == torch::kUInt8, "images to normalize must be uint8, but got ",
              images.scalar_type());
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  check_stats(c, mean, std);
  const auto table = detail::normalization_table(c, mean, std);
  const auto in = images.contiguous();
  auto out = torch::empty(in.sizes(), torch::kFloat32);
  const uint8_t* src = in.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  const int64_t chw = c * h * w;
  for (int64_t i = 0; i < b; ++i) {
    detail::crop_flip_image(src + i * chw, dst + i * chw, c, h, w, 0, detail::CropFlip{},
                            TableMap{table.data()});
  }
  return out;
}

torch::Tensor augment_crop_flip(const torch::Tensor& images, int64_t padding, at::Generator generator) {
  check_images(images, "images to augment");
  TORCH_CHECK(images.scalar_type() == torch::kUInt8 || images.scalar_type() == torch::kFloat32,
              "images to augment must be uint8 or float32, but got ", images.scalar_type());
  TORCH_CHECK(padding >= 0, "padding must be >= 0, but got ", padding);
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);

  std::vector<detail::CropFlip> crops;
  {
    auto* gen =
        at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    auto source = [gen] { return gen->random64(); };
    crops = detail::draw_crop_flips(b, padding, source);
  }

  const auto in = images.contiguous();
  auto out = torch::empty_like(in);
  const int64_t chw = c * h * w;
  auto run = [&](auto* src, auto* dst) {
    for (int64_t i = 0; i < b; ++i) {
      detail::crop_flip_image(src + i * chw, dst + i * chw, c, h, w, padding, crops[static_cast<size_t>(i)],
                              IdentityMap{});
    }
  };
  if (in.scalar_type() == torch::kUInt8) {
    run(in.data_ptr<uint8_t>(), out.data_ptr<uint8_t>());
  } else {
    run(in.data_ptr<float>(), out.data_ptr<float>());
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------
// BatchLoader

/// The background producer of one epoch: a bounded queue of ready batches.
struct BatchLoader::Prefetcher {
  std::mutex mutex;
  std::condition_variable changed;  ///< a batch was queued or taken, or stop/finished was set
  std::deque<Batch> ready;
  std::exception_ptr error;
  bool stop = false;      ///< set by the loader: leave as soon as possible
  bool finished = false;  ///< set by the worker: no more batches will come (done or failed)
  std::thread worker;
};

namespace {

/// An in-memory ImageSet: crop/flip with zero padding (when augmenting) and normalisation in one pass.
class TensorSource : public BatchSource {
 public:
  TensorSource(ImageSet set, const LoaderOptions& options) : set_(std::move(set)) {
    check_images(set_.images, "loader images");
    TORCH_CHECK(set_.images.scalar_type() == torch::kUInt8, "loader images must be uint8, but got ",
                set_.images.scalar_type());
    TORCH_CHECK(set_.labels.defined() && set_.labels.dim() == 1 &&
                    set_.labels.scalar_type() == torch::kInt64 && set_.labels.size(0) == set_.images.size(0),
                "loader labels must be int64 [", set_.images.size(0), "], but got ",
                set_.labels.defined() ? c10::str(set_.labels.scalar_type(), " ", set_.labels.sizes())
                                      : std::string("undefined"));
    TORCH_CHECK(options.crop_padding() >= 0, "crop_padding must be >= 0, but got ", options.crop_padding());
    check_stats(set_.images.size(1), options.mean(), options.std());
    set_.images = set_.images.contiguous();
    set_.labels = set_.labels.contiguous();
    padding_ = options.augment() ? options.crop_padding() : -1;
    table_ = detail::normalization_table(set_.images.size(1), options.mean(), options.std());
  }

  int64_t size() const override { return set_.size(); }

  Batch get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first) override {
    const int64_t c = set_.images.size(1), h = set_.images.size(2), w = set_.images.size(3);
    const int64_t chw = c * h * w;
    // Identity unless augmenting; drawn for positions [0, first + count) of the batch, so that a shard gets
    // the crops the whole batch would.
    std::vector<detail::CropFlip> crops(static_cast<size_t>(first + count));
    const int64_t padding = std::max<int64_t>(padding_, 0);
    if (padding_ >= 0) {
      detail::SplitMix64 rng(key);
      crops = detail::draw_crop_flips(first + count, padding, rng);
    }
    Batch batch;
    batch.images = torch::empty({count, c, h, w}, torch::kFloat32);
    batch.labels = torch::empty({count}, torch::kInt64);
    const uint8_t* src = set_.images.data_ptr<uint8_t>();
    const int64_t* src_labels = set_.labels.data_ptr<int64_t>();
    float* dst = batch.images.data_ptr<float>();
    int64_t* dst_labels = batch.labels.data_ptr<int64_t>();
    const TableMap map{table_.data()};
    for (int64_t i = 0; i < count; ++i) {
      const int64_t row = indices[i];
      detail::crop_flip_image(src + row * chw, dst + i * chw, c, h, w, padding,
                              crops[static_cast<size_t>(first + i)], map);
      dst_labels[i] = src_labels[row];
    }
    return batch;
  }

 private:
  ImageSet set_;
  int64_t padding_;           ///< -1: no augmentation
  std::vector<float> table_;  ///< normalisation lookup, [c * 256 + pixel]
};

}  // namespace

BatchLoader::BatchLoader(ImageSet set, LoaderOptions options, uint64_t seed)
    : BatchLoader(std::make_shared<TensorSource>(std::move(set), options), options, seed) {}

BatchLoader::BatchLoader(std::shared_ptr<BatchSource> source, LoaderOptions options, uint64_t seed)
    : source_(std::move(source)), options_(std::move(options)), seed_(seed) {
  TORCH_CHECK(source_ != nullptr, "loader source must not be null");
  TORCH_CHECK(options_.batch_size() > 0, "batch_size must be positive, but got ", options_.batch_size());
  TORCH_CHECK(options_.prefetch() >= 0, "prefetch must be >= 0, but got ", options_.prefetch());
  const Shard& shard = options_.shard();
  TORCH_CHECK(shard.count >= 1 && shard.rank >= 0 && shard.rank < shard.count,
              "shard rank must be in [0, count), but got rank ", shard.rank, " of ", shard.count);
  TORCH_CHECK(options_.min_batch() >= 1, "min_batch must be positive, but got ", options_.min_batch());
  // Each rank needs at least one sample of every batch (an empty batch has no loss and no BN statistics);
  // a short last batch is merged into the one before (merges_last_batch).
  TORCH_CHECK(options_.batch_size() >= shard.count, "batch_size (", options_.batch_size(),
              ") must be at least the number of data-parallel ranks (", shard.count,
              "): each rank takes a part of every batch");
}

bool BatchLoader::merges_last_batch() const {
  const int64_t n = source_->size(), b = options_.batch_size(), last = n % b;
  if (options_.drop_last() || n <= b || last == 0) return false;
  // The smallest shard of an r-sample batch has floor(r / count) rows.
  return last / options_.shard().count < options_.min_batch();
}

BatchLoader::~BatchLoader() { stop_prefetcher(); }

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t n = source_->size(), b = options_.batch_size();
  return options_.drop_last() || merges_last_batch() ? n / b : (n + b - 1) / b;
}

void BatchLoader::stop_prefetcher() {
  if (!prefetcher_) return;
  {
    std::lock_guard<std::mutex> lock(prefetcher_->mutex);
    prefetcher_->stop = true;
  }
  prefetcher_->changed.notify_all();
  if (prefetcher_->worker.joinable()) prefetcher_->worker.join();
  prefetcher_.reset();
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  const int64_t total = batches_per_epoch();
  TORCH_CHECK(epoch >= 0, "epoch must be >= 0, but got ", epoch);
  TORCH_CHECK(first_batch >= 0 && first_batch <= total, "first_batch must be in [0, ", total, "], but got ",
              first_batch);
  stop_prefetcher();

  std::vector<int64_t> order;
  if (options_.shuffle()) {
    detail::SplitMix64 rng(detail::derive_seed({seed_, kShuffleStream, static_cast<uint64_t>(epoch)}));
    order = detail::permutation(source_->size(), rng);
  } else {
    order.resize(static_cast<size_t>(source_->size()));
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  order_ = std::make_shared<const std::vector<int64_t>>(std::move(order));
  epoch_ = epoch;
  next_batch_ = first_batch;
  if (options_.prefetch() == 0 || first_batch == total) return;

  prefetcher_ = std::make_unique<Prefetcher>();
  Prefetcher* p = prefetcher_.get();
  const auto capacity = static_cast<size_t>(options_.prefetch());
  p->worker = std::thread([this, p, order = order_, epoch, first_batch, total, capacity] {
    try {
      for (int64_t b = first_batch; b < total; ++b) {
        {
          std::unique_lock<std::mutex> lock(p->mutex);
          p->changed.wait(lock, [&] { return p->stop || p->ready.size() < capacity; });
          if (p->stop) return;
        }
        Batch batch =
            make_batch(*order, epoch, b);  // outside the lock: next() can take earlier batches meanwhile
        {
          std::lock_guard<std::mutex> lock(p->mutex);
          p->ready.push_back(std::move(batch));
        }
        p->changed.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(p->mutex);
      p->error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(p->mutex);
      p->finished = true;
    }
    p->changed.notify_all();
  });
}

std::optional<Batch> BatchLoader::next() {
  TORCH_CHECK(epoch_ >= 0, "BatchLoader::next() needs an epoch, but start_epoch() was not called");
  const int64_t total = batches_per_epoch();
  if (next_batch_ >= total) {
    stop_prefetcher();  // joins the finished worker
    return std::nullopt;
  }
  if (!prefetcher_) {
    Batch batch = make_batch(*order_, epoch_, next_batch_);
    ++next_batch_;
    return batch;
  }

  Prefetcher* p = prefetcher_.get();
  std::unique_lock<std::mutex> lock(p->mutex);
  p->changed.wait(lock, [&] { return !p->ready.empty() || p->finished; });
  if (!p->ready.empty()) {
    Batch batch = std::move(p->ready.front());
    p->ready.pop_front();
    lock.unlock();
    p->changed.notify_all();
    ++next_batch_;
    return batch;
  }
  // Finished with nothing queued before all batches came: the worker failed. The epoch ends here.
  std::exception_ptr error = p->error;
  lock.unlock();
  stop_prefetcher();
  next_batch_ = total;
  if (error) std::rethrow_exception(error);
  TORCH_INTERNAL_ASSERT(false, "batch prefetcher finished early without an error");
  return std::nullopt;
}

Batch BatchLoader::make_batch(const std::vector<int64_t>& order, int64_t epoch, int64_t batch_index) const {
  const int64_t begin = batch_index * options_.batch_size();
  const bool last = batch_index + 1 == batches_per_epoch();
  const int64_t count = last && merges_last_batch()
                            ? source_->size() - begin
                            : std::min(options_.batch_size(), source_->size() - begin);
  const uint64_t key = detail::derive_seed(
      {seed_, kAugmentStream, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index)});
  // This process's rows of the batch; the source draws their randomness as for the whole batch, so the
  // shards of all ranks together are the unsharded batch.
  const Shard& shard = options_.shard();
  const int64_t lo = count * shard.rank / shard.count, hi = count * (shard.rank + 1) / shard.count;
  return source_->get_batch(order.data() + begin + lo, hi - lo, key, lo);
}

}  // namespace pdeq::data
