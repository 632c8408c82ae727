#include <pdeq/experiment/task_factory.h>

#include <pdeq/compat/features.h>
#include <pdeq/data/planetoid.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/key_use.h>
#include <pdeq/models/graph_model.h>
#include <pdeq/models/registry.h>
#include <pdeq/train/node_classification.h>
#include <pdeq/train/runtime.h>

#include <c10/util/StringUtil.h>
#include <torch/cuda.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::experiment {
bool is_graph_dataset(const std::string& dataset) {
  const auto names = data::planetoid_names();
  return std::find(names.begin(), names.end(), dataset) != names.end();
}

torch::Device run_device(const config::Config& config, const std::string& device,
                         const distributed::ProcessGroupOptions* rank) {
  const std::string& name = device.empty() ? config.train.device : device;
  torch::Device selected = torch::kCPU;
  try {
    selected = train::select_device(name);
  } catch (const c10::ValueError& e) {
    const std::string where =
        device.empty() ? config::source_of(config, "train.device") + ": train.device" : "--device";
    throw config::ConfigError(where + ": " + e.what_without_backtrace());
  }
  if (rank == nullptr || !selected.is_cuda() || name.find(':') != std::string::npos) return selected;
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  return {torch::kCUDA, static_cast<torch::DeviceIndex>(rank->rank() % count)};
}

namespace {

void check_model_name(const config::Config& config) {
  const auto input = is_graph_dataset(config.data.dataset)          ? models::ModelInput::kGraph
                     : is_segmentation_dataset(config.data.dataset) ? models::ModelInput::kSegmentation
                                                                    : models::ModelInput::kImage;
  const auto names = models::model_names(input);
  if (std::find(names.begin(), names.end(), config.model.name) == names.end()) {
    throw config::ConfigError(config::source_of(config, "model.name") + ": model.name: expected one of " +
                              c10::Join(", ", names) + " for dataset " + config.data.dataset + ", got \"" +
                              config.model.name + "\"");
  }
}

/// train.distillation trains two image networks of one model, the low one at quant.act_bits.
void check_distillation(const config::Config& config) {
  const auto& d = config.train.distillation;
  if (!d.enabled) return;
  const auto fail = [&](const std::string& key, const std::string& why) {
    throw config::ConfigError(config::source_of(config, key) + ": " + key + ": " + why);
  };
  if (is_graph_dataset(config.data.dataset) || is_segmentation_dataset(config.data.dataset)) {
    fail("train.distillation.enabled",
         "distillation trains image classifiers only, but data.dataset is the " +
             std::string(is_graph_dataset(config.data.dataset) ? "graph " : "segmentation dataset ") +
             config.data.dataset);
  }
  if (config.quant.act_bits >= 32) {
    fail("quant.act_bits",
         "distillation needs quantized activations (the low-precision network's bits, < 32), got 32");
  }
  if (d.high_bits <= config.quant.act_bits) {
    fail("train.distillation.high_bits", "expected more bits than quant.act_bits (" +
                                             std::to_string(config.quant.act_bits) + "), got " +
                                             std::to_string(d.high_bits));
  }
}

}  // namespace

void validate_config(const config::Config& config, DataUse data) {
  if (data == DataUse::kReads &&
      (config.data.dataset == "image_folder" || is_segmentation_dataset(config.data.dataset)) &&
      !compat::opencv_built()) {
    throw config::ConfigError(
        config::source_of(config, "data.dataset") + ": data.dataset: " +
        compat::without_opencv(config.data.dataset + " (decoding JPEG, PNG and BMP files)"));
  }
  check_model_name(config);
  check_keys_used(config);
  check_distillation(config);
}

void validate_distributed(const config::Config& config, int64_t world_size) {
  if (world_size <= 1) return;
  if (is_graph_dataset(config.data.dataset)) {
    throw config::ConfigError(config::source_of(config, "data.dataset") +
                              ": data.dataset: " + config.data.dataset +
                              " is a full-batch graph task (one step per epoch on the whole graph) and " +
                              "cannot be split across " + std::to_string(world_size) +
                              " processes; train it with one process (no --nproc / --world-size)");
  }
  if (is_segmentation_dataset(config.data.dataset)) {
    // Each rank's confusion matrix would have to be summed before the mIoU is taken; the Trainer sums
    // per-rank means, which is right for accuracies only.
    throw config::ConfigError(
        config::source_of(config, "data.dataset") + ": data.dataset: " + config.data.dataset +
        " trains in one process (the mIoU of data-parallel ranks is not combined yet); got " +
        std::to_string(world_size) + " data-parallel processes");
  }
  if (config.train.distillation.enabled) {
    throw config::ConfigError(config::source_of(config, "train.distillation.enabled") +
                              ": train.distillation.enabled: distillation trains in one process; got " +
                              std::to_string(world_size) + " data-parallel processes");
  }
  if (config.train.seeds > 1) {
    throw config::ConfigError(config::source_of(config, "train.seeds") +
                              ": train.seeds: a data-parallel run trains one seed, got " +
                              std::to_string(config.train.seeds) + "; start one run per seed");
  }
  for (const auto& [key, size] : {std::pair<const char*, int64_t>{"data.batch_size", config.data.batch_size},
                                  {"data.eval_batch_size", config.data.eval_batch_size}}) {
    if (size < world_size) {
      throw config::ConfigError(
          config::source_of(config, key) + ": " + key + ": each of the " + std::to_string(world_size) +
          " data-parallel ranks takes a part of every batch, so a batch needs at least " +
          std::to_string(world_size) + " samples, got " + std::to_string(size));
    }
  }
}

config::Config read_run_config(const run::RunDirectory& run) {
  config::Config config = config::load_config(run.config_path().string());
  // Not check_keys_used: a run trained before a key was refused still evaluates and resumes as it was.
  check_model_name(config);
  return config;
}

std::unique_ptr<train::ImageClassificationTask> make_image_task(const config::Config& config,
                                                                torch::Device device, data::Shard shard) {
  if (is_segmentation_dataset(config.data.dataset)) {
    const auto info = segmentation_info(config.data);
    auto folders = data::load_segmentation(info, split_options(config.data), config.data.skip_bad_images);
    std::vector<double> weights;
    if (config.data.class_weights == config::ClassWeights::kMedianFrequency) {
      weights = data::cached_median_frequency_weights(folders.train, info, data::default_cache_dir(),
                                                      config.data.workers);
    }
    const auto dataset = dataset_info(config.data);
    auto model = make_image_model(config, dataset);
    return std::make_unique<train::SegmentationTask>(
        std::move(folders), std::move(model),
        segmentation_task_options(config, dataset, std::move(weights), shard), device);
  }
  train::ImageClassificationData data;
  if (config.data.dataset == "image_folder") {
    data.folder =
        data::load_image_folder(config.data.root, config.data.image_size, split_options(config.data));
    data.splits.info = data.folder->info;
  } else {
    data.splits = data::load_image_data(image_data_options(config.data));
  }
  auto model = make_image_model(config, data.splits.info);
  const auto options = image_task_options(config, data.splits.info, shard);
  return std::make_unique<train::ImageClassificationTask>(std::move(data), std::move(model), options, device);
}

std::unique_ptr<train::Task> make_task(const config::Config& config, torch::Device device,
                                       data::Shard shard) {
  if (!is_graph_dataset(config.data.dataset)) {
    auto task = make_image_task(config, device, shard);
    if (!config.train.distillation.enabled) return task;
    return std::make_unique<train::DistillationTask>(
        std::move(task), distillation_options(config.train.distillation), config.train.label_smoothing);
  }
  auto graph =
      data::load_planetoid(planetoid_root(config.data), config.data.dataset, planetoid_options(config.data));
  auto graph_operator = train::make_graph_operator(graph, edge_weighting(config.data));
  auto model = models::make_graph_model(config.model.name,
                                        graph_model_options(config, graph.num_features, graph.num_classes));
  return std::make_unique<train::NodeClassificationTask>(
      std::move(graph), std::move(graph_operator), std::move(model), config.train.label_smoothing, device);
}

}  // namespace pdeq::experiment
