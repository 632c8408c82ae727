#include <pdeq/models/registry.h>

#include <pdeq/models/deeplab.h>
#include <pdeq/models/gcn.h>
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/pde_gcn.h>
#include <pdeq/models/resnet.h>
#include <pdeq/models/stablenet.h>

#include <stdexcept>
#include <variant>

namespace pdeq::models {
namespace {

using ImageFactory = Classifier (*)(const ModelOptions&);
using GraphFactory = GraphModel (*)(const GraphModelOptions&);
/// Builds a Classifier too, but one whose logits are per pixel: a type of its own so that the table says so.
struct SegmentationFactory {
  ImageFactory make;
};

/// One buildable model; what it takes follows from its factory.
struct Entry {
  const char* name;
  std::variant<ImageFactory, GraphFactory, SegmentationFactory> factory;
  ModelInput input() const {
    if (std::holds_alternative<ImageFactory>(factory)) return ModelInput::kImage;
    return std::holds_alternative<GraphFactory>(factory) ? ModelInput::kGraph : ModelInput::kSegmentation;
  }
};

std::string input_name(ModelInput input) {
  switch (input) {
    case ModelInput::kImage:
      return "image";
    case ModelInput::kGraph:
      return "graph";
    case ModelInput::kSegmentation:
      return "segmentation";
  }
  return "";
}

/// Every buildable model, each input's in natural order so that model_names() and error messages read well.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> table = {
      // Image classifiers.
      {"resnet18", resnet18},
      {"resnet20", resnet20},
      {"resnet32", resnet32},
      {"resnet34", resnet34},
      {"resnet44", resnet44},
      {"resnet50", resnet50},
      {"resnet56", resnet56},
      {"resnet101", resnet101},
      {"resnet110", resnet110},
      {"resnet152", resnet152},
      {"stablenet20", stablenet20},
      {"stablenet20x2", stablenet20x2},
      {"stablenet34", stablenet34},
      {"stablenet56", stablenet56},
      {"stablenet56x2", stablenet56x2},
      {"mobilenetv2", mobilenetv2},
      // Per-pixel classifiers (semantic segmentation).
      {"deeplabv3_resnet18", SegmentationFactory{deeplabv3_resnet18}},
      {"deeplabv3_resnet50", SegmentationFactory{deeplabv3_resnet50}},
      // Node classifiers on a graph.
      {"pde_gcn", pde_gcn},
      {"pde_gcn_nonsym", pde_gcn_nonsym},
      {"gcn", gcn},
  };
  return table;
}

const Entry* find(const std::string& name) {
  for (const auto& entry : registry()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

/// The factory of `name` taking `input`; otherwise throws, naming the models that do.
template <typename Factory>
Factory factory_for(const std::string& name, ModelInput input) {
  const Entry* entry = find(name);
  if (entry != nullptr && entry->input() == input) return std::get<Factory>(entry->factory);
  const std::string kind = input == ModelInput::kImage ? "" : input_name(input) + " ";
  const std::string known = "; known " + kind + "models: " + joined(model_names(input));
  if (entry == nullptr) throw std::invalid_argument("unknown " + kind + "model '" + name + "'" + known);
  const std::string what = entry->input() == ModelInput::kSegmentation
                               ? "is a segmentation model (per-pixel logits)"
                               : "takes " + input_name(entry->input()) + " input";
  throw std::invalid_argument("model '" + name + "' " + what + known);
}

}  // namespace

ModelInput model_input(const std::string& name) {
  if (const Entry* entry = find(name)) return entry->input();
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.name);
  throw std::invalid_argument("unknown model '" + name + "'; known models: " + joined(names));
}

std::vector<std::string> model_names(ModelInput input) {
  std::vector<std::string> names;
  for (const auto& entry : registry()) {
    if (entry.input() == input) names.push_back(entry.name);
  }
  return names;
}

Classifier make_model(const std::string& name, const ModelOptions& options) {
  return factory_for<ImageFactory>(name, ModelInput::kImage)(options);
}

Classifier make_segmentation_model(const std::string& name, const ModelOptions& options) {
  return factory_for<SegmentationFactory>(name, ModelInput::kSegmentation).make(options);
}

GraphModel make_graph_model(const std::string& name, const GraphModelOptions& options) {
  return factory_for<GraphFactory>(name, ModelInput::kGraph)(options);
}

}  // namespace pdeq::models
