// The one place that turns a config into a Task: image classification or node classification by dataset.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/loader.h>
#include <pdeq/distributed/process_group.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/task.h>

#include <torch/types.h>

#include <memory>
#include <string>

namespace pdeq::experiment {

/// The checks config/ cannot make because it sits below the registries: model.name must be a registered
/// model of the kind data.dataset needs (image or graph), and every key set must be one that model and
/// dataset read (check_keys_used). Throws config::ConfigError
/// "<file>: model.name: expected one of <known names> for dataset <d>, got \"<name>\"". Every command runs it
/// once on the config it was given (train_run, the benchmarks, sweeps for each point) or read
/// (read_run_config), before anything is created.
/// With DataUse::kReads (every command that loads data.dataset) it also refuses a dataset this build cannot
/// read: image folders and segmentation datasets without OpenCV. `pdeq params` builds a model only (kNone).
enum class DataUse { kReads, kNone };
void validate_config(const config::Config& config, DataUse data = DataUse::kReads);

/// The checks of a data-parallel run of `world_size` ranks that need no data: graph tasks train on the whole
/// graph in one batch and multi-seed runs are sequential, so both refuse world_size > 1; every rank takes a
/// part of every batch, so data.batch_size and data.eval_batch_size must be >= world_size
/// (config::ConfigError).
void validate_distributed(const config::Config& config, int64_t world_size);

/// The config.json of a run folder, parsed and validated (model.name; not the unread keys, so that a run
/// written before such a key was refused still opens).
config::Config read_run_config(const run::RunDirectory& run);

/// The device a command computes on: `device` when not empty (a `--device` option), else train.device
/// (train::select_device). A device this LibTorch build or machine lacks is a config::ConfigError naming
/// --device or "<file>: train.device". With `rank` (a rank of a data-parallel group), "cuda" and "auto" give
/// each rank its own GPU (rank modulo the GPUs present); "cuda:N" pins every rank to GPU N.
torch::Device run_device(const config::Config& config, const std::string& device = "",
                         const distributed::ProcessGroupOptions* rank = nullptr);

/// Whether data.dataset is a graph.
bool is_graph_dataset(const std::string& dataset);

/// Reads the configured data and builds the configured model and task on `device` (a validated config).
/// Graph datasets (cora, citeseer, pubmed) get a NodeClassificationTask, image datasets an
/// ImageClassificationTask, or with train.distillation.enabled a DistillationTask around it (whose module
/// and evaluate() are the low-precision network's). `shard`: this process's part of every batch in a
/// data-parallel run (images only).
std::unique_ptr<train::Task> make_task(const config::Config& config, torch::Device device,
                                       data::Shard shard = {});

/// make_task for an image dataset, with the image task's own interface (its loaders, data and model); for
/// camvid and cityscapes a train::SegmentationTask (with data.class_weights median_frequency computed from
/// the training labels, cached in data::default_cache_dir()).
std::unique_ptr<train::ImageClassificationTask> make_image_task(const config::Config& config,
                                                                torch::Device device, data::Shard shard = {});

}  // namespace pdeq::experiment
