// `pdeq params`: a model's parameter count as the paper's tables give it, from its name.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pdeq::commands {

struct ParamsOptions {
  std::string model;                   ///< a registered model name
  std::vector<std::string> overrides;  ///< config values, e.g. "model.stable=true", validated like train's
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t weight_bits = 32;  ///< < 32: the quantizers' scales count too
  int64_t act_bits = 32;
};

struct ParamsResult {
  std::string model;
  int64_t num_classes = 0, in_channels = 0;
  bool stable = false;
  int64_t weight_bits = 32, act_bits = 32;
  int64_t params_model = 0;      ///< weights, biases, BatchNorm and TV parameters
  int64_t params_quantizer = 0;  ///< the quantizers' learned scales
  /// The float model's count when both bit widths are 32 (quantizers then pass through and hold no
  /// meaningful scale), otherwise params_model + params_quantizer.
  int64_t params = 0;
  nlohmann::json to_json() const;
};

ParamsResult params(const ParamsOptions& options);

}  // namespace pdeq::commands
