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
  const auto names = models::model_names(is_graph_dataset(config.data.dataset) ? models::ModelInput::kGraph
                                                                               : models::ModelInput::kImage);
  if (std::find(names.begin(), names.end(), config.model.name) == names.end()) {
    throw config::ConfigError(config.source + ": model.name: expected one of " + joined(names) +
                              " for dataset " + config.data.dataset + ", got \"" + config.model.name + "\"");
  }
}

void validate_distributed(const config::Config& config, int64_t world_size) {
  if (world_size <= 1) return;
  if (is_graph_dataset(config.data.dataset)) {
    throw config::ConfigError(config.source + ": data.dataset: " + config.data.dataset +
                              " is a full-batch graph task (one step per epoch on the whole graph) and " +
                              "cannot be split across " + std::to_string(world_size) +
                              " processes; train it with one process (no --nproc / --world-size)");
  }
  if (config.train.seeds > 1) {
    throw config::ConfigError(config.source + ": train.seeds: a data-parallel run trains one seed, got " +
                              std::to_string(config.train.seeds) + "; start one run per seed");
  }
}

std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device, data::Shard shard) {
  validate_config(config);
  validate_distributed(config, shard.count);
  if (models::model_input(config.model.name) == models::ModelInput::kGraph) {
    return std::make_unique<NodeClassificationTask>(config, device);
  }
  return std::make_unique<ImageClassificationTask>(config, device, shard);
}

}  // namespace pdeq::train
