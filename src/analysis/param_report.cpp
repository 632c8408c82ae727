#include <pdeq/analysis/param_report.h>

#include <pdeq/analysis/params.h>
#include <pdeq/models/registry.h>

namespace pdeq::analysis {

nlohmann::json param_report(const std::string& model, const models::ModelOptions& options) {
  const int64_t weight_bits = options.weight_quant.bits(), act_bits = options.act_quant.bits();
  const ParamCount count = count_params(*models::make_model(model, options));
  const bool quantized = weight_bits < quant::kFullPrecisionBits || act_bits < quant::kFullPrecisionBits;
  return {{"model", model},
          {"num_classes", options.num_classes},
          {"in_channels", options.in_channels},
          {"stable", options.stable},
          {"weight_bits", weight_bits},
          {"act_bits", act_bits},
          {"params_model", count.model()},
          {"params_quantizer", count.quantizer},
          {"params", quantized ? count.total : count.model()}};
}

}  // namespace pdeq::analysis
