#include <pdeq/train/image_classification.h>

#include <pdeq/train/train_step.h>

#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <spdlog/spdlog.h>

namespace pdeq::train {
namespace F = torch::nn::functional;

ImageClassificationTask::ImageClassificationTask(ImageClassificationData data, models::Classifier model,
                                                 const ImageClassificationOptions& options,
                                                 torch::Device device)
    : folder_(std::move(data.folder)),
      data_(std::move(data.splits)),
      model_(std::move(model)),
      device_(device),
      mode_(options.mode),
      loss_(options.label_smoothing) {
  const auto& train_options = options.train_loader;
  const auto& eval_options = options.eval_loader;
  if (folder_) {
    // The same BatchLoader (order, (seed, epoch, batch) keys, prefetch) over sources that decode files.
    const auto source = [&](const data::ImageFolderSplit& split, bool train) {
      folder_sources_.push_back(std::make_shared<data::ImageFolderSource>(
          split, train ? options.train_transform : options.eval_transform));
      return folder_sources_.back();
    };
    train_loader_ =
        std::make_unique<data::BatchLoader>(source(folder_->train, true), train_options, options.seed);
    if (folder_->val.size() > 0)
      val_loader_ = std::make_unique<data::BatchLoader>(source(folder_->val, false), eval_options);
    test_loader_ = std::make_unique<data::BatchLoader>(source(folder_->test, false), eval_options);
  } else {
    train_loader_ = std::make_unique<data::BatchLoader>(data_.train, train_options, options.seed);
    if (data_.val.size() > 0) val_loader_ = std::make_unique<data::BatchLoader>(data_.val, eval_options);
    test_loader_ = std::make_unique<data::BatchLoader>(data_.test, eval_options);
  }
  prepare(folder_ ? fmt::format(" ({} classes, streamed from {})", data_.info.num_classes,
                                data_.info.default_root)
                  : std::string());
}

ImageClassificationTask::ImageClassificationTask(std::shared_ptr<data::BatchSource> train,
                                                 std::shared_ptr<data::BatchSource> val,
                                                 std::shared_ptr<data::BatchSource> test,
                                                 data::DatasetInfo info, models::Classifier model,
                                                 const ImageClassificationOptions& options,
                                                 CrossEntropyOptions loss, torch::Device device)
    : model_(std::move(model)), device_(device), mode_(options.mode), loss_(std::move(loss)) {
  data_.info = std::move(info);
  train_loader_ = std::make_unique<data::BatchLoader>(std::move(train), options.train_loader, options.seed);
  if (val) val_loader_ = std::make_unique<data::BatchLoader>(std::move(val), options.eval_loader);
  test_loader_ = std::make_unique<data::BatchLoader>(std::move(test), options.eval_loader);
  prepare(fmt::format(" ({} classes, streamed from {})", data_.info.num_classes, data_.info.default_root));
}

void ImageClassificationTask::prepare(const std::string& source) {
  model_->to(device_);
  to_memory_format(*model_, mode_.memory_format);
  spdlog::info("{}: {} train / {} val / {} test images{}", data_.info.name, train_loader_->size(),
               val_loader_ ? val_loader_->size() : 0, test_loader_->size(), source);
}

data::BatchLoader& ImageClassificationTask::eval_loader(EvalSplit split) {
  auto& loader = split == EvalSplit::kVal ? val_loader_ : test_loader_;
  TORCH_CHECK(loader != nullptr, "this run has no validation split (data.val_size is 0)");
  return *loader;
}

nlohmann::json ImageClassificationTask::summary_extras() const {
  if (!folder_) return nlohmann::json::object();
  int64_t skipped = 0;
  for (const auto& source : folder_sources_) skipped += source->skipped();
  return {{"skipped_images", skipped},
          {"ignored_files", folder_->train.ignored_files + folder_->test.ignored_files}};
}

int64_t ImageClassificationTask::steps_per_epoch() const { return train_loader_->batches_per_epoch(); }

void ImageClassificationTask::begin_epoch(int64_t epoch, int64_t first_step) {
  model_->train();
  // A checkpoint loaded since construction may have brought its own layout (a no-op when it did not): the
  // convolutions, and so the exact values of a resumed run, depend on it.
  to_memory_format(*model_, mode_.memory_format);
  train_loader_->start_epoch(epoch, first_step);
}

StepStats ImageClassificationTask::train_step(torch::optim::Optimizer& optimizer) {
  auto batch = train_loader_->next();
  TORCH_INTERNAL_ASSERT(batch.has_value(), "train loader ran out of batches inside an epoch");
  // Every image of the batch was unreadable and skipped (data.skip_bad_images): nothing to learn from here.
  if (batch->labels.size(0) == 0) return empty_batch_step(optimizer, gradient_sync());
  return classifier_step(*model_, optimizer, batch->images.to(device_), batch->labels.to(device_), loss_,
                         mode_, gradient_sync());
}

bool ImageClassificationTask::has_split(EvalSplit split) const {
  return split == EvalSplit::kTest ? test_loader_->size() > 0 : val_loader_ != nullptr;
}

EvalStats ImageClassificationTask::evaluate(EvalSplit split) {
  return evaluate_classifier(*model_, eval_loader(split), device_, mode_);
}

void ImageClassificationTask::for_each_eval_batch(EvalSplit split,
                                                  const std::function<void(const TraceFn& run)>& visit) {
  data::BatchLoader& loader = eval_loader(split);
  const bool was_training = model_->is_training();
  model_->eval();
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const auto images = to_memory_format(batch->images.to(device_), mode_.memory_format);
    visit([&](models::ActivationTrace& trace) {
      const AutocastScope autocast(mode_);
      model_->forward_traced(images, &trace);
    });
  }
  model_->train(was_training);
}

EvalStats evaluate_classifier(models::ClassifierImpl& model, data::BatchLoader& loader, torch::Device device,
                              const ComputeMode& mode) {
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  double loss_sum = 0.0, correct = 0.0;
  int64_t samples = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    if (batch->labels.size(0) == 0) continue;  // all skipped as unreadable
    const auto images = to_memory_format(batch->images.to(device), mode.memory_format);
    const auto labels = batch->labels.to(device);
    torch::Tensor logits;
    {
      const AutocastScope autocast(mode);
      logits = model.forward(images).to(torch::kFloat);
    }
    loss_sum +=
        F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<double>();
    samples += labels.size(0);
  }
  model.train(was_training);
  return {samples > 0 ? loss_sum / samples : 0.0, samples > 0 ? correct / samples : 0.0, samples};
}

}  // namespace pdeq::train
