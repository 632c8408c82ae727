#include <pdeq/commands/params.h>

#include <pdeq/analysis/params.h>
#include <pdeq/config/config.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/registry.h>

namespace pdeq::commands {

nlohmann::json ParamsResult::to_json() const {
  return {{"model", model},
          {"num_classes", num_classes},
          {"in_channels", in_channels},
          {"stable", stable},
          {"weight_bits", weight_bits},
          {"act_bits", act_bits},
          {"params_model", params_model},
          {"params_quantizer", params_quantizer},
          {"params", params}};
}

ParamsResult params(const ParamsOptions& options) {
  auto config = config::config_from_overrides(options.overrides);
  config.model.name = options.model;
  config.quant.weight_bits = options.weight_bits;
  config.quant.act_bits = options.act_bits;
  ParamsResult result;
  result.model = options.model;
  result.num_classes = options.num_classes;
  result.in_channels = options.in_channels;
  result.weight_bits = config.quant.weight_bits;
  result.act_bits = config.quant.act_bits;
  const auto input = models::model_input(options.model);
  const bool graph = input == models::ModelInput::kGraph;
  if (graph) config.data.dataset = "cora";  // any graph dataset: validation then expects a graph model
  // Any segmentation dataset (validation reads no file): validation then expects a segmentation model.
  if (input == models::ModelInput::kSegmentation) config.data.dataset = "camvid";
  experiment::validate_config(config, experiment::DataUse::kNone);
  analysis::ParamCount count;
  if (graph) {
    // Graph models: --in-channels is the number of node features.
    count = analysis::count_params(*models::make_graph_model(
        options.model, experiment::graph_model_options(config, options.in_channels, options.num_classes)));
  } else {
    const auto model_options = experiment::model_options(config, options.num_classes, options.in_channels);
    result.stable = model_options.stable;
    const auto make =
        input == models::ModelInput::kSegmentation ? models::make_segmentation_model : models::make_model;
    count = analysis::count_params(*make(options.model, model_options));
  }
  result.params_model = count.model();
  result.params_quantizer = count.quantizer;
  const bool quantized =
      result.weight_bits < quant::kFullPrecisionBits || result.act_bits < quant::kFullPrecisionBits;
  result.params = quantized ? count.total : count.model();
  return result;
}

}  // namespace pdeq::commands
