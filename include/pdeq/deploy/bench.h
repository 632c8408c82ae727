// `pdeq bench infer`: images/s of integer inference against the same network in float LibTorch.
#pragma once

#include <pdeq/deploy/int_model.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

namespace pdeq::deploy {

struct InferBenchOptions {
  std::vector<int64_t> batch_sizes{1, 128};
  std::vector<int64_t> threads{1, 2};
  /// Alternating integer/float measurements; the median is reported.
  int64_t rounds = 3;
  /// Each measurement runs at least this long (whole batches).
  double seconds = 1.0;
  ResidualMode residuals = ResidualMode::kExact;
};

/// For every threads x batch size: images/s of the integer model and of the float model of the same
/// architecture (the file's config at 32 bits: float convolutions and BatchNorm as trained, weights random,
/// eval mode), on random inputs of the file's input shape, and speedup = integer / float; also the exported
/// graph itself run in float32 (BatchNorm folded, weights dequantized: float_folded_images_per_second,
/// speedup_vs_folded), which separates what the int8 kernels buy from what folding buys. Reports the load
/// average at start (other processes make every figure pessimistic).
nlohmann::json bench_infer(const std::filesystem::path& model, const InferBenchOptions& options = {});

}  // namespace pdeq::deploy
