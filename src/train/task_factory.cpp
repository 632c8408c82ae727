#include <pdeq/train/task_factory.h>

#include <pdeq/data/planetoid.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/registry.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/node_classification.h>

#include <algorithm>
#include <string>
#include <vector>

namespace pdeq::train {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

bool is_graph_dataset(const std::string& dataset) {
  const auto names = data::planetoid_names();
  return std::find(names.begin(), names.end(), dataset) != names.end();
}

void validate_config(const config::Config& config) {
  const bool graph_data = is_graph_dataset(config.data.dataset);
  const auto names = graph_data ? models::graph_model_names() : models::model_names();
  if (std::find(names.begin(), names.end(), config.model.name) == names.end()) {
    throw config::ConfigError(config.source + ": model.name: expected one of " + joined(names) +
                              " for dataset " + config.data.dataset + ", got \"" + config.model.name + "\"");
  }
}

std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device) {
  validate_config(config);
  const bool graph_data = is_graph_dataset(config.data.dataset);
  if (graph_data) return std::make_unique<NodeClassificationTask>(config, device);
  return std::make_unique<ImageClassificationTask>(config, device);
}

}  // namespace pdeq::train
