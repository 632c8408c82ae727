// The one place that turns a config into a Task: image classification or node classification by dataset.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/train/task.h>

#include <torch/types.h>

#include <memory>

namespace pdeq::train {

/// Graph datasets (cora, citeseer, pubmed) need a graph model (pde_gcn, pde_gcn_nonsym, gcn) and image
/// datasets an image model; a mismatch throws config::ConfigError naming the config file and model.name.
std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device);

/// The model/dataset check of make_task without building anything (sweeps validate every point up front):
/// model.name must be a registered model of the dataset's kind, else config::ConfigError naming
/// config.source and model.name.
void check_model_for_dataset(const config::Config& config);

/// Whether data.dataset is a graph.
bool is_graph_dataset(const std::string& dataset);

}  // namespace pdeq::train
