// `pdeq bench data`: the training loader alone (decode, augment, normalise, prefetch), and optionally
// training on it against the same model on one synthetic batch.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace pdeq::commands {

struct BenchDataOptions {
  std::filesystem::path config;
  std::vector<std::string> overrides;
  int64_t batches = 20;     ///< training batches timed (the loader's first batch, warm-up, not counted)
  int64_t train_steps = 0;  ///< > 0: also time this many real training steps against synthetic batches
};

struct BenchDataResult {
  /// images_per_second with workers, batch, image_size; with train_steps: end_to_end_images_per_second,
  /// synthetic_images_per_second and their ratio end_to_end_fraction.
  nlohmann::json figures;
  nlohmann::json to_json() const { return figures; }
};

BenchDataResult bench_data(const BenchDataOptions& options);

}  // namespace pdeq::commands
