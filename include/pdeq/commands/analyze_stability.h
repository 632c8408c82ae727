// `pdeq analyze stability`: the paper's stability figure from trained runs. The same weights are evaluated
// with quantized and with full-precision activations, and the per-layer distance between the two passes
// shows whether quantization error grows with depth (ordinary nets) or stays bounded (symmetric ones).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace pdeq::commands {

struct AnalyzeStabilityOptions {
  std::vector<std::filesystem::path> runs;  ///< finished (or checkpointed) run folders, one line each
  std::optional<int64_t> act_bits;          ///< bits of the quantized pass; default: each checkpoint's own
  std::string split = "test";               ///< test | val
  std::string checkpoint = "best";          ///< best | last
  int64_t max_batches = 0;                  ///< > 0: only the first N evaluation batches of the split
  std::filesystem::path out;                ///< folder for stability.csv, .png and .json (created)
  std::string device;                       ///< not empty: instead of each run's train.device (`--device`)
};

/// One run's line of the figure.
struct StabilityRun {
  std::string label;
  double mean_error = 0.0;               ///< mean per-layer error over the layers where the passes differ
  double accuracy = 0.0;                 ///< quantized pass
  double full_precision_accuracy = 0.0;  ///< same weights, full-precision activations
};

struct AnalyzeStabilityResult {
  std::vector<StabilityRun> runs;
  nlohmann::json ratios;  ///< "<first>/<other>": the first run's mean error over each other's
  nlohmann::json report;  ///< stability.json: the above plus the per-layer errors
  std::filesystem::path out;
  /// The comparison (out, ratios, runs) without the per-layer lists, which are in the files.
  nlohmann::json to_json() const;
};

/// For each run: loads its config and checkpoint, then for every evaluation batch traces one pass with the
/// activation quantizers at their bits and one at full precision (clipped at alpha, not rounded; weights as
/// trained), and accumulates e_l = sqrt(sum ||a_l - a_l^FP||^2 / numel) per layer (analysis::
/// LayerErrorAccumulator). Works for every task through Task::for_each_eval_batch.
/// Writes into options.out (created if needed): stability.csv (layer index, layer name, one column per run),
/// stability.png (one line per run over the layer index) and stability.json (per run: label, model,
/// mean error over differing layers, accuracy of the quantized and of the full-precision pass; and the ratio
/// of the first run's mean error to every other's).
///
/// Example:
///   pdeq::commands::AnalyzeStabilityOptions options;
///   options.runs = {"runs/resnet20", "runs/stablenet20"};
///   options.out = "runs/stability";
///   auto result = pdeq::commands::analyze_stability(options);
///   result.ratios;  // {"resnet20/stablenet20": 2.7}
AnalyzeStabilityResult analyze_stability(const AnalyzeStabilityOptions& options);

}  // namespace pdeq::commands
