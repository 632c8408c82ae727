#include <pdeq/train/segmentation.h>

#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cmath>

namespace pdeq::train {
namespace F = torch::nn::functional;

namespace {

std::shared_ptr<data::SegmentationSource> source(const data::SegmentationSplit& split,
                                                 const data::SegmentationInfo& info,
                                                 const data::SegmentationTransformOptions& transform) {
  return std::make_shared<data::SegmentationSource>(split, info, transform);
}

CrossEntropyOptions pixel_loss(const data::SegmentationInfo& info, const std::vector<double>& weights,
                               double label_smoothing) {
  CrossEntropyOptions loss(label_smoothing);
  loss.ignore_index = info.ignore_index;
  if (!weights.empty()) {
    TORCH_CHECK(static_cast<int64_t>(weights.size()) == info.info.num_classes, "class weights must have ",
                info.info.num_classes, " values, but got ", weights.size());
    loss.weight = torch::tensor(weights, torch::kFloat32);
  }
  return loss;
}

}  // namespace

SegmentationTask::SegmentationTask(data::SegmentationData data, models::Classifier model,
                                   const SegmentationOptions& options, torch::Device device)
    : ImageClassificationTask(
          source(data.train, data.info, options.train_transform),
          data.val.size() > 0 ? source(data.val, data.info, options.eval_transform) : nullptr,
          source(data.test, data.info, options.eval_transform), data.info.info, std::move(model),
          options.image, pixel_loss(data.info, options.class_weights, options.label_smoothing), device),
      folders_(std::move(data)),
      info_(folders_.info) {}

const data::SegmentationSplit& SegmentationTask::split_files(EvalSplit split) const {
  return split == EvalSplit::kVal ? folders_.val : folders_.test;
}

EvalStats SegmentationTask::evaluate(EvalSplit split) {
  data::BatchLoader& loader = eval_loader(split);
  models::ClassifierImpl& model = classifier();
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  analysis::ConfusionMatrix confusion(info_.info.num_classes, info_.ignore_index);
  double loss_sum = 0.0;
  int64_t frames = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    if (batch->labels.size(0) == 0) continue;  // all skipped as unreadable
    const auto images = to_memory_format(batch->images.to(device()), compute_mode().memory_format);
    const auto labels = batch->labels.to(device());
    torch::Tensor logits;
    {
      const AutocastScope autocast(compute_mode());
      logits = model.forward(images).to(torch::kFloat);
    }
    // Mean over each frame's counted pixels (unweighted: the loss is comparable across class weightings).
    const auto per_pixel = F::cross_entropy(
        logits, labels,
        F::CrossEntropyFuncOptions().ignore_index(info_.ignore_index).reduction(torch::kNone));
    const auto counted = labels.ne(info_.ignore_index).to(torch::kFloat).sum({1, 2}).clamp_min(1);
    loss_sum += (per_pixel.sum({1, 2}) / counted).sum().item<double>();
    confusion.add(labels, logits.argmax(1));
    frames += labels.size(0);
  }
  model.train(was_training);
  const EvalStats stats{frames > 0 ? loss_sum / static_cast<double>(frames) : 0.0, confusion.mean_iou(),
                        frames};
  confusion_.insert_or_assign(split, std::move(confusion));
  return stats;
}

data::Batch SegmentationTask::first_frames(EvalSplit split, int64_t count) {
  TORCH_CHECK_VALUE(count > 0, "count must be positive, but got ", count);
  data::BatchLoader& loader = eval_loader(split);
  std::vector<torch::Tensor> images, labels;
  int64_t have = 0;
  loader.start_epoch(0);
  while (have < count) {
    auto batch = loader.next();
    if (!batch) break;
    const int64_t take = std::min(count - have, batch->labels.size(0));
    images.push_back(batch->images.narrow(0, 0, take));
    labels.push_back(batch->labels.narrow(0, 0, take));
    have += take;
  }
  TORCH_CHECK_VALUE(have > 0, "the split has no readable frames");
  return {torch::cat(images), torch::cat(labels)};
}

const analysis::ConfusionMatrix& SegmentationTask::confusion(EvalSplit split) const {
  const auto it = confusion_.find(split);
  TORCH_CHECK(it != confusion_.end(), "no evaluation of this split yet");
  return it->second;
}

nlohmann::json SegmentationTask::metrics_extras() {
  const auto it = confusion_.find(EvalSplit::kVal);
  if (it == confusion_.end()) return nlohmann::json::object();
  return {{"val_miou", it->second.mean_iou()}, {"val_pixel_acc", it->second.pixel_accuracy()}};
}

nlohmann::json SegmentationTask::summary_extras() const {
  int64_t skipped = 0;
  for (const auto* split : {&folders_.train, &folders_.val, &folders_.test}) skipped += split->missing_labels;
  nlohmann::json out = {{"frames_without_labels", skipped}};
  const auto it = confusion_.find(EvalSplit::kTest);
  if (it != confusion_.end()) out["test_segmentation"] = iou_table(it->second, info_.class_names);
  return out;
}

nlohmann::json iou_table(const analysis::ConfusionMatrix& confusion,
                         const std::vector<std::string>& class_names) {
  const auto iou = confusion.iou();
  nlohmann::json classes = nlohmann::json::array();
  for (int64_t k = 0; k < confusion.num_classes(); ++k) {
    int64_t labelled = 0;
    for (int64_t j = 0; j < confusion.num_classes(); ++j) labelled += confusion.count(k, j);
    const double v = iou[static_cast<size_t>(k)];
    classes.push_back(
        {{"class", k},
         {"name", k < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(k)]
                                                               : std::to_string(k)},
         {"iou", std::isnan(v) ? nlohmann::json() : nlohmann::json(v)},
         {"pixels", labelled}});
  }
  return {{"miou", confusion.mean_iou()},
          {"pixel_accuracy", confusion.pixel_accuracy()},
          {"pixels", confusion.total()},
          {"classes", classes}};
}

}  // namespace pdeq::train
