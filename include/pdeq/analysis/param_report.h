// `pdeq params`: a model's parameter count as the paper's tables give it, from its name.
#pragma once

#include <pdeq/models/registry.h>

#include <nlohmann/json.hpp>

#include <string>

namespace pdeq::analysis {

/// {"model", "num_classes", "in_channels", "stable", "weight_bits", "act_bits", "params_model",
///  "params_quantizer", "params"}: `params` is the float model's count when both bit widths are >= 32
/// (quantizers then pass through and hold no meaningful scale), otherwise the float count plus the
/// quantizers' alphas. Bit widths come from the options' quantizer templates.
nlohmann::json param_report(const std::string& model, const models::ModelOptions& options);

}  // namespace pdeq::analysis
