// Models by name, for configs and the CLI.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/quant/fake_quantize.h>

#include <string>
#include <vector>

namespace pdeq::models {

/// What every model factory takes: data shape, classes and the quantizer templates of its layers.
struct ModelOptions {
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  double step_size = 1.0;  ///< h in x <- shortcut - h*branch
  quant::FakeQuantizeOptions weight_quant{quant::QuantTarget::kWeight};
  quant::FakeQuantizeOptions act_quant{quant::QuantTarget::kActivation};
};

/// Builds a model by name; an unknown name throws std::invalid_argument listing the known names.
Classifier make_model(const std::string& name, const ModelOptions& options);

/// Registered names, sorted.
std::vector<std::string> model_names();

}  // namespace pdeq::models
