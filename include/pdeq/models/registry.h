// Every model by name, image and graph ones, for configs and the CLI: what each takes and how to build it.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/model_options.h>

#include <string>
#include <vector>

namespace pdeq::models {

/// What a registered model reads, and so which factory builds it.
enum class ModelInput {
  kImage,  ///< image batches [N, C, H, W]: a Classifier from make_model
  kGraph,  ///< node features on a graph: a GraphModel from make_graph_model
  /// image batches [N, C, H, W] -> per-pixel logits [N, num_classes, H, W]: a Classifier from
  /// make_segmentation_model (deeplabv3_*)
  kSegmentation,
};

/// The input the model `name` takes; an unknown name throws std::invalid_argument listing every known model.
///
/// Example:
///   if (pdeq::models::model_input(config.model.name) == pdeq::models::ModelInput::kGraph) { ... }
ModelInput model_input(const std::string& name);

/// Registered names of the models that take `input`, in natural order (resnet18, resnet20, ..., resnet110,
/// ..., mobilenetv2; pde_gcn, pde_gcn_nonsym, gcn).
std::vector<std::string> model_names(ModelInput input = ModelInput::kImage);

/// Builds the image model `name`; an unknown name throws std::invalid_argument listing the known image
/// models.
///
/// Example:
///   pdeq::models::ModelOptions options;
///   options.in_channels = 1;  // Fashion-MNIST
///   options.weight_quant.bits(4);
///   options.act_quant.bits(4);
///   auto net = pdeq::models::make_model("resnet20", options);
Classifier make_model(const std::string& name, const ModelOptions& options);

/// Builds the segmentation model `name` (ModelInput::kSegmentation); an unknown name throws
/// std::invalid_argument listing the known segmentation models.
Classifier make_segmentation_model(const std::string& name, const ModelOptions& options);
/// Builds the graph model `name`; an unknown name throws std::invalid_argument listing the known graph
/// models.
GraphModel make_graph_model(const std::string& name, const GraphModelOptions& options);

}  // namespace pdeq::models
