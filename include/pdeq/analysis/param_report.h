// `pdeq params`: a model's parameter count as the paper's tables give it, from its name.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace pdeq::analysis {

/// {"model", "num_classes", "in_channels", "weight_bits", "act_bits", "params_model", "params_quantizer",
///  "params"}: `params` is the float model's count when both bit widths are >= 32 (quantizers then pass
/// through and hold no meaningful scale), otherwise the float count plus the quantizers' alphas.
nlohmann::json param_report(const std::string& model, int64_t num_classes, int64_t in_channels,
                            int64_t weight_bits, int64_t act_bits);

}  // namespace pdeq::analysis
