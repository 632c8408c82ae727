#include <pdeq/models/registry.h>

#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/resnet.h>
#include <pdeq/models/stablenet.h>

#include <stdexcept>
#include <utility>

namespace pdeq::models {
namespace {

using Factory = Classifier (*)(const ModelOptions&);

/// Every buildable model; kept in natural order so that model_names() and error messages read well.
const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"resnet18", resnet18},       {"resnet20", resnet20},       {"resnet32", resnet32},
      {"resnet34", resnet34},       {"resnet44", resnet44},       {"resnet50", resnet50},
      {"resnet56", resnet56},       {"resnet101", resnet101},     {"resnet110", resnet110},
      {"resnet152", resnet152},     {"stablenet20", stablenet20}, {"stablenet20x2", stablenet20x2},
      {"stablenet34", stablenet34}, {"stablenet56", stablenet56}, {"stablenet56x2", stablenet56x2},
      {"mobilenetv2", mobilenetv2},
  };
  return table;
}

}  // namespace

Classifier make_model(const std::string& name, const ModelOptions& options) {
  for (const auto& [known, factory] : registry()) {
    if (known == name) return factory(options);
  }
  std::string message = "unknown model '" + name + "'; known models: ";
  const auto names = model_names();
  for (size_t i = 0; i < names.size(); ++i) message += (i ? ", " : "") + names[i];
  throw std::invalid_argument(message);
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

}  // namespace pdeq::models
