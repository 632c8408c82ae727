#include <pdeq/analysis/param_report.h>

#include <pdeq/analysis/params.h>
#include <pdeq/models/registry.h>

namespace pdeq::analysis {

nlohmann::json param_report(const std::string& model, int64_t num_classes, int64_t in_channels,
                            int64_t weight_bits, int64_t act_bits) {
  models::ModelOptions options;
  options.num_classes = num_classes;
  options.in_channels = in_channels;
  options.weight_quant.bits(weight_bits);
  options.act_quant.bits(act_bits);
  const ParamCount count = count_params(*models::make_model(model, options));
  const bool quantized = weight_bits < quant::kFullPrecisionBits || act_bits < quant::kFullPrecisionBits;
  return {{"model", model},
          {"num_classes", num_classes},
          {"in_channels", in_channels},
          {"weight_bits", weight_bits},
          {"act_bits", act_bits},
          {"params_model", count.model()},
          {"params_quantizer", count.quantizer},
          {"params", quantized ? count.total : count.model()}};
}

}  // namespace pdeq::analysis
