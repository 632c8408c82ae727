#include <pdeq/experiment/key_use.h>

#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace pdeq::experiment {
namespace {

using nlohmann::json;

/// The families of models that read the same keys.
enum Family : uint32_t {
  kResNets = 1u << 0,    ///< resnet*, stablenet*
  kMobileNet = 1u << 1,  ///< mobilenetv2
  kPdeGcns = 1u << 2,    ///< pde_gcn, pde_gcn_nonsym
  kGcn = 1u << 3,        ///< gcn
  kDeepLab = 1u << 4,    ///< deeplabv3_*
  kImageModels = kResNets | kMobileNet,
  kGraphModels = kPdeGcns | kGcn,
};

Family family_of(const std::string& model) {
  if (model == "mobilenetv2") return kMobileNet;
  if (model == "gcn") return kGcn;
  if (model.rfind("deeplabv3", 0) == 0) return kDeepLab;
  if (model.rfind("pde_gcn", 0) == 0) return kPdeGcns;
  return kResNets;
}

/// A model key and the families that read it (a section: every key under it).
struct ModelKey {
  const char* key;
  uint32_t readers;
  const char* read_by;
};

// Keys every model reads (model.name, quant.weight_bits, ...) are not listed.
constexpr ModelKey kModelKeys[] = {
    {"model.step_size", kImageModels | kPdeGcns, "the image models and pde_gcn, pde_gcn_nonsym"},
    {"model.stable", kImageModels, "the image models (resnet*, stablenet*, mobilenetv2)"},
    {"model.transpose", kImageModels, "the image models' symmetric blocks"},
    {"model.stem", kResNets, "resnet* and stablenet*"},
    {"model.tv", kImageModels | kDeepLab, "the image models (resnet*, stablenet*, mobilenetv2, deeplabv3_*)"},
    {"model.channels", kGraphModels, "the graph models (pde_gcn, pde_gcn_nonsym, gcn)"},
    {"model.layers", kGraphModels, "the graph models (pde_gcn, pde_gcn_nonsym, gcn)"},
    {"model.dropout", kGraphModels, "the graph models (pde_gcn, pde_gcn_nonsym, gcn)"},
    {"model.input_dropout", kPdeGcns, "pde_gcn and pde_gcn_nonsym (gcn applies model.dropout to its input)"},
    {"model.graph_bias", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.graph_init", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.edge_activation", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.dropout_on_edges", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.quantize_input", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.quantize_gradient", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"model.quantize_edges", kPdeGcns, "pde_gcn and pde_gcn_nonsym"},
    {"quant.per_channel", kImageModels | kDeepLab,
     "the image models (the graph models quantize each weight with one scale, as the reference)"},
};

/// Dataset keys: read for graph datasets only, for image datasets only, for image_folder only, for the
/// datasets streamed from disk (image_folder, camvid, cityscapes), for the segmentation datasets, or for the
/// image datasets whose validation split is held out of the training files (all but camvid, which has its
/// own val/).
enum class DataKind { kGraph, kImage, kImageFolder, kFromDisk, kSegmentation, kHeldOut };
struct DataKey {
  const char* key;
  DataKind kind;
};
constexpr DataKey kDataKeys[] = {
    {"data.normalize_features", DataKind::kGraph},
    {"data.edge_weights", DataKind::kGraph},
    {"data.val_size", DataKind::kHeldOut},
    {"data.split_seed", DataKind::kHeldOut},
    {"data.limit_train", DataKind::kImage},
    {"data.limit_val", DataKind::kImage},
    {"data.limit_test", DataKind::kImage},
    {"data.augment", DataKind::kImage},
    {"data.batch_size", DataKind::kImage},
    {"data.eval_batch_size", DataKind::kImage},
    {"data.prefetch", DataKind::kImage},
    {"data.normalization", DataKind::kImage},
    {"train.memory_format", DataKind::kImage},
    {"train.precision", DataKind::kImage},
    {"data.workers", DataKind::kFromDisk},
    {"data.resize", DataKind::kFromDisk},
    {"data.image_size", DataKind::kFromDisk},
    {"data.random_resized_crop", DataKind::kImageFolder},
    {"data.skip_bad_images", DataKind::kFromDisk},
    {"data.max_image_pixels", DataKind::kFromDisk},
    {"data.scale_min", DataKind::kSegmentation},
    {"data.scale_max", DataKind::kSegmentation},
    {"data.class_weights", DataKind::kSegmentation},
};

const char* data_kind_text(DataKind kind) {
  switch (kind) {
    case DataKind::kGraph:
      return "the graph datasets (cora, citeseer, pubmed)";
    case DataKind::kImage:
      return "the image datasets";
    case DataKind::kImageFolder:
      return "data.dataset image_folder";
    case DataKind::kFromDisk:
      return "the datasets read from folders (image_folder, camvid, cityscapes)";
    case DataKind::kSegmentation:
      return "the segmentation datasets (camvid, cityscapes)";
    case DataKind::kHeldOut:
      return "the datasets whose validation split is held out of the training files (all but camvid)";
  }
  return "";
}

bool reads(DataKind kind, const std::string& dataset) {
  const bool graph = is_graph_dataset(dataset), segmentation = is_segmentation_dataset(dataset);
  switch (kind) {
    case DataKind::kGraph:
      return graph;
    case DataKind::kImage:
      return !graph;
    case DataKind::kImageFolder:
      return dataset == "image_folder";
    case DataKind::kFromDisk:
      return dataset == "image_folder" || segmentation;
    case DataKind::kSegmentation:
      return segmentation;
    case DataKind::kHeldOut:
      return !graph && dataset != "camvid";
  }
  return false;
}

/// Keys ("model.tv.where") whose value differs from the default, in alphabetical order.
std::vector<std::string> keys_set(const config::Config& config) {
  // flatten(): {"/model/tv/where": value, ...}, one entry per leaf; both configs have the same leaves.
  const json values = config::to_json(config).flatten();
  const json defaults = config::to_json(config::Config{}).flatten();
  std::vector<std::string> keys;
  for (auto it = values.begin(); it != values.end(); ++it) {
    if (defaults.value(it.key(), json()) == it.value()) continue;
    std::string key = it.key().substr(1);
    for (char& c : key) c = c == '/' ? '.' : c;
    keys.push_back(std::move(key));
  }
  return keys;
}

[[noreturn]] void refuse(const config::Config& config, const std::string& key, const std::string& why) {
  throw config::ConfigError(config::source_of(config, key) + ": " + key + ": " + why);
}

}  // namespace

void check_keys_used(const config::Config& config) {
  const std::string& model = config.model.name;
  const Family family = family_of(model);
  for (const std::string& key : keys_set(config)) {
    for (const ModelKey& rule : kModelKeys) {
      if (config::key_within(key, rule.key) && (rule.readers & family) == 0) {
        refuse(config, key,
               "has no effect on " + model + "; it is read by " + rule.read_by +
                   ". Remove it (or choose one of those models)");
      }
    }
    for (const DataKey& rule : kDataKeys) {
      if (key == rule.key && !reads(rule.kind, config.data.dataset)) {
        refuse(config, key,
               "has no effect on data.dataset " + config.data.dataset + "; it is read for " +
                   data_kind_text(rule.kind) + ". Remove it");
      }
    }
  }
}

std::vector<std::string> keys_waiting_for_a_switch(const config::Config& config) {
  struct Switch {
    const char* section;
    const char* switch_key;
    bool on;
  };
  const Switch switches[] = {
      {"model.tv", "model.tv.enabled", config.model.tv.enabled},
      {"model.transpose", "model.stable", config.model.stable},
      {"quant.schedule", "quant.schedule.enabled", config.quant.schedule.enabled},
      {"train.scale_group", "train.scale_group.enabled", config.train.scale_group.enabled},
      {"train.layer_group", "train.layer_group.enabled", config.train.layer_group.enabled},
      {"train.distillation", "train.distillation.enabled", config.train.distillation.enabled},
  };
  std::vector<std::string> messages;
  for (const std::string& key : keys_set(config)) {
    for (const Switch& s : switches) {
      if (!s.on && config::key_within(key, s.section) && key != s.switch_key) {
        messages.push_back(config::source_of(config, key) + ": " + key + " has no effect while " +
                           s.switch_key + " is false");
      }
    }
  }
  return messages;
}

}  // namespace pdeq::experiment
