// Models by name, for configs and the CLI.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>

#include <string>
#include <vector>

namespace pdeq::models {

/// Builds a model by name; an unknown name throws std::invalid_argument listing the known names.
///
/// Example:
///   pdeq::models::ModelOptions options;
///   options.in_channels = 1;  // Fashion-MNIST
///   options.weight_quant.bits(4);
///   options.act_quant.bits(4);
///   auto net = pdeq::models::make_model("resnet20", options);
Classifier make_model(const std::string& name, const ModelOptions& options);

/// Registered names in natural order (resnet18, resnet20, ..., resnet110).
std::vector<std::string> model_names();

}  // namespace pdeq::models
