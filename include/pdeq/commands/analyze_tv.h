// `pdeq analyze tv`: a trained run's TV layers and per-layer quantization error.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace pdeq::commands {

struct AnalyzeTVOptions {
  std::filesystem::path run;
  std::filesystem::path out;  ///< folder for tv.json, quant_mse.csv and the images (created)
  /// Activation quantizer whose TV layer is shown (e.g. "layer2.0.act_mid"); unset: per-layer errors only.
  std::optional<std::string> layer;
  int64_t image = 0;      ///< test image index for the feature maps
  int64_t images = 1000;  ///< first test images over which the per-layer quantization error is pooled
  std::string checkpoint = "best";  ///< best | last
};

struct AnalyzeTVResult {
  nlohmann::json report;  ///< tv.json: run, checkpoint, "layers" and, with a layer, "tv"
  nlohmann::json to_json() const { return report; }
};

/// Loads the run's checkpoint and writes into options.out (created): tv.json with "layers" (analysis::
/// activation_quant_report over the first `images` test images; for graph runs, the test pass) and, with a
/// layer, "tv" (analysis:: tv_layer_report on test image `image`, whose files go to `out` too); quant_mse.csv
/// with one row per activation quantizer (layer, bits, alpha, min, max, std, clipped_fraction, quant_mse).
AnalyzeTVResult analyze_tv(const AnalyzeTVOptions& options);

}  // namespace pdeq::commands
