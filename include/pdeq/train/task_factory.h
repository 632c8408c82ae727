// The one place that turns a config into a Task: image classification or node classification by dataset.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/loader.h>
#include <pdeq/train/task.h>

#include <torch/types.h>

#include <memory>

namespace pdeq::train {

/// The checks config/ cannot make because it sits below the registries: model.name must be a registered
/// model of the kind data.dataset needs (image or graph). Throws config::ConfigError
/// "<file>: model.name: expected one of <known names> for dataset <d>, got \"<name>\"". Called before
/// anything is created (train_run validates before making the run folder, sweeps every point up front);
/// make_task calls it too.
void validate_config(const config::Config& config);

/// Graph datasets (cora, citeseer, pubmed) need a graph model (pde_gcn, pde_gcn_nonsym, gcn) and image
/// datasets an image model; validate_config's errors otherwise.
/// `shard`: this process's part of the data in a data-parallel run (image tasks only).
std::unique_ptr<Task> make_task(const config::Config& config, torch::Device device, data::Shard shard = {});

/// The checks of a data-parallel run of `world_size` ranks that need no data: graph tasks train on the whole
/// graph in one batch and multi-seed runs are sequential, so both refuse world_size > 1
/// (config::ConfigError).
void validate_distributed(const config::Config& config, int64_t world_size);

/// Whether data.dataset is a graph.
bool is_graph_dataset(const std::string& dataset);

}  // namespace pdeq::train
