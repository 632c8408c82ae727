// `pdeq analyze stability`: the paper's stability figure from trained runs. The same weights are evaluated
// with quantized and with full-precision activations, and the per-layer distance between the two passes
// shows whether quantization error grows with depth (ordinary nets) or stays bounded (symmetric ones).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::train {

struct StabilityOptions {
  std::vector<std::filesystem::path> runs;  ///< finished (or checkpointed) run folders, one line each
  std::optional<int64_t> act_bits;          ///< bits of the quantized pass; default: each checkpoint's own
  std::string split = "test";               ///< test | val
  std::string checkpoint = "best";          ///< best | last
  int64_t max_batches = 0;                  ///< > 0: only the first N evaluation batches of the split
};

/// For each run: loads its config and checkpoint, then for every evaluation batch traces one pass with the
/// activation quantizers at their bits and one at full precision (clipped at alpha, not rounded; weights as
/// trained), and accumulates e_l = sqrt(sum ||a_l - a_l^FP||^2 / numel) per layer (analysis::
/// LayerErrorAccumulator). Works for every task through Task::for_each_eval_batch.
/// Writes into `out` (created if needed): stability.csv (layer index, layer name, one column per run),
/// stability.png (one line per run over the layer index) and stability.json (per run: label, model,
/// mean error over differing layers, accuracy of the quantized and of the full-precision pass; and the ratio
/// of the first run's mean error to every other's). Returns the JSON.
///
/// Example:
///   pdeq::train::StabilityOptions options;
///   options.runs = {"runs/resnet20", "runs/stablenet20"};
///   auto report = pdeq::train::analyze_stability(options, "runs/stability");
///   report["ratios"];  // {"resnet20/stablenet20": 2.7}
nlohmann::json analyze_stability(const StabilityOptions& options, const std::filesystem::path& out);

}  // namespace pdeq::train
