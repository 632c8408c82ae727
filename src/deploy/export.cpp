#include <pdeq/deploy/export.h>

#include <pdeq/compat/torch.h>
#include <pdeq/config/config.h>
#include <pdeq/deploy/fold.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/onnx_export.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

namespace pdeq::deploy {
namespace fs = std::filesystem;

IntGraph export_classifier(models::ClassifierImpl& model, const std::vector<torch::Tensor>& calibration,
                           const ExportOptions& options) {
  if (auto* resnet = dynamic_cast<models::ResNetImpl*>(&model)) {
    return export_resnet(*resnet, calibration, options);
  }
  if (auto* mobilenet = dynamic_cast<models::MobileNetV2Impl*>(&model)) {
    return export_mobilenetv2(*mobilenet, calibration, options);
  }
  TORCH_CHECK_VALUE(
      false,
      "this model cannot be exported: the integer export supports the ResNets "
      "(resnet20/32/44/56/110, resnet18/34, ordinary or symmetric blocks; resnet50/101/152), the "
      "StableNets and MobileNetV2 (ordinary or symmetric); DeepLabV3 is not supported");
}

nlohmann::json export_run(const fs::path& run_dir, const fs::path& out, const ExportOptions& options) {
  TORCH_CHECK_VALUE(options.format() == "pdeq" || options.format() == "onnx",
                    "format must be pdeq or onnx, but got '", options.format(), "'");
  TORCH_CHECK_VALUE(options.format() == "pdeq" || onnx_export_built(),
                    "--format onnx: this pdeq was built without ONNX support (libonnx-dev was not found "
                    "when it was configured); only the pdeq format is built");
  TORCH_CHECK_VALUE(options.checkpoint() == "best" || options.checkpoint() == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint(), "'");
  TORCH_CHECK_VALUE(!fs::is_directory(out), "--out ", out.string(), " is a directory; give a file name");
  const auto run = run::RunDirectory::open(run_dir);
  const config::Config config = experiment::read_run_config(run);
  TORCH_CHECK_VALUE(config.train.seeds == 1, "run ", run_dir.string(), " holds ", config.train.seeds,
                    " seeds; export one of its seed<i> folders");
  TORCH_CHECK_VALUE(
      !experiment::is_graph_dataset(config.data.dataset), "graph networks (dataset ", config.data.dataset,
      ") cannot be exported: the integer export supports image ResNets, StableNets and MobileNetV2");
  // Refused before anything is built or written: a backbone exported without its head would be a file that
  // looks complete and is not.
  TORCH_CHECK_VALUE(
      !experiment::is_segmentation_dataset(config.data.dataset), "segmentation networks (", config.model.name,
      " on ", config.data.dataset,
      ") cannot be exported: the integer export has no dilated convolutions, ASPP, image pooling or "
      "bilinear upsampling, so it would hold the backbone without its head; nothing was written");
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  const auto task_ptr = experiment::make_image_task(config, torch::kCPU);
  train::ImageClassificationTask& task = *task_ptr;
  const fs::path checkpoint = options.checkpoint() == "best" ? run.best_checkpoint() : run.last_checkpoint();
  const auto state = run::load_checkpoint(checkpoint, task.module(), nullptr);

  // Calibration on training images without augmentation (never the test split).
  std::vector<torch::Tensor> calibration;
  std::unique_ptr<data::BatchLoader> own;
  data::BatchLoader* loader = &task.train_loader();
  if (!task.streams_from_disk()) {
    own = std::make_unique<data::BatchLoader>(task.data().train,
                                              experiment::eval_loader_options(config.data, task.data().info));
    loader = own.get();
  }
  loader->start_epoch(0);
  int64_t images = 0;
  while (static_cast<int64_t>(calibration.size()) < options.calibration_batches()) {
    auto batch = loader->next();
    if (!batch) break;
    images += batch->images.size(0);
    calibration.push_back(batch->images);
  }
  IntGraph graph = export_classifier(*task.model(), calibration, options);

  int64_t weight_bits = 0, act_bits = 0, int8_convs = 0;
  bool transitions = false;
  int64_t tv_layers = 0, float_convs = 0;
  for (const auto& op : graph.ops) {
    transitions = transitions || op.kind == OpKind::kConcat || op.kind == OpKind::kAvgPool;
    tv_layers += op.kind == OpKind::kTvSmooth;
    float_convs += op.kind == OpKind::kFloatConv;
    if (op.kind == OpKind::kQConv || op.kind == OpKind::kQConvToFloat) {
      ++int8_convs;
      weight_bits = std::max(weight_bits, op.weight_bits);
    }
    if (op.kind == OpKind::kQuantize || (op.kind == OpKind::kQConv && op.relu) || op.kind == OpKind::kAdd) {
      act_bits = std::max<int64_t>(act_bits, std::llround(std::log2(static_cast<double>(op.qmax) + 1)));
    }
  }
  nlohmann::json float_layers = {"stem (conv + BN + ReLU)"};
  const IntOp& before_head = graph.ops[graph.ops.size() - 2];
  if (before_head.kind == OpKind::kAddToFloat) float_layers.push_back("last residual add");
  if (float_convs > 0) {
    // MobileNetV2: the 1x1 head, and in symmetric blocks the second factor of K2 K1 and of K1^T K2^T.
    float_layers.push_back(
        std::to_string(float_convs) +
        " float convolutions (the 1x1 head conv + BN + ReLU; in symmetric blocks K2 of K2 K1 "
        "and K1^T of K1^T K2^T, after exact integer sums of the first factor)");
  }
  float_layers.push_back("global average pool + fc");
  if (transitions) float_layers.push_back("transition adds, channel concatenation and average pooling");
  if (tv_layers > 0) {
    float_layers.push_back(std::to_string(tv_layers) +
                           " TV smoothing layers (the convolution or sum before each kept in float)");
  }
  const auto& info = task.data().info;
  nlohmann::json report = {
      {"run", fs::absolute(run_dir).string()},
      {"checkpoint", options.checkpoint()},
      {"epoch", state.epoch},
      {"model", config.model.name},
      {"dataset", config.data.dataset},
      {"input_shape", calibration.front().sizes().slice(1).vec()},
      {"num_classes", info.num_classes},
      // What a user of the file applies to [0, 1] pixels before the network: (x - mean) / std per channel.
      {"normalization", {{"mean", info.mean}, {"std", info.std}}},
      {"weight_bits", weight_bits},
      {"act_bits", act_bits},
      {"format", options.format()},
      {"engine", options.format() == "onnx"
                     ? "ONNX QDQ, opset " + std::to_string(kOnnxOpset) +
                           " (int8 weights x uint8 activations; residual-feeding convolutions in float)"
                     : "int8 weights x uint8 activations (oneDNN: int32 sums with fused adds in exact mode; "
                       "LibTorch quantized::conv2d in int8 mode)"},
      {"int8_convolutions", int8_convs},
      {"float_layers", float_layers},
      {"calibration_images", images},
      {"ops", graph.ops.size()},
      {"params", graph.parameter_count()}};
  if (weight_bits < 8 || act_bits < 8) {
    report["note"] =
        "codes of " + std::to_string(weight_bits) + "-bit weights and " + std::to_string(act_bits) +
        "-bit activations run on 8-bit kernels (same values, no speed gain from the lower width)";
  }
  graph.meta = report;
  graph.meta["config"] = config::to_json(config);
  if (options.format() == "onnx") {
    save_onnx(graph, out);
  } else {
    save_int_graph(graph, out);
  }
  report["out"] = out.string();
  report["bytes"] = static_cast<int64_t>(fs::file_size(out));
  return report;
}

}  // namespace pdeq::deploy
