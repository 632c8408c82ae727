// Supervised image classification (CIFAR, Fashion-MNIST, image folders): batches from a BatchLoader,
// cross-entropy.
#pragma once

#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>
#include <pdeq/models/classifier.h>
#include <pdeq/train/compute_mode.h>
#include <pdeq/train/task.h>
#include <pdeq/train/train_step.h>

#include <memory>
#include <optional>
#include <vector>

namespace pdeq::train {

/// The images a task trains and evaluates on: in memory, or image folders streamed from disk.
struct ImageClassificationData {
  data::DataSplits splits;                      ///< in-memory splits; for image folders only `info`
  std::optional<data::ImageFolderData> folder;  ///< image folders: the files of each split
};

struct ImageClassificationOptions {
  /// Batches of each loader. With a shard, every loader yields only this rank's rows of each batch (the
  /// batch sizes stay global), and evaluate() returns this rank's part (the Trainer sums the ranks').
  data::LoaderOptions train_loader, eval_loader;
  data::ImageTransformOptions train_transform, eval_transform;  ///< image folders: decoding and crops
  uint64_t seed = 0;  ///< order and augmentation of the training batches
  ComputeMode mode;   ///< layout of weights and batches, precision of the forward passes
  double label_smoothing = 0.0;
};

class ImageClassificationTask : public Task {
 public:
  /// Moves `model` to `device` in options.mode's layout and builds the loaders over `data`.
  ImageClassificationTask(ImageClassificationData data, models::Classifier model,
                          const ImageClassificationOptions& options, torch::Device device);

  torch::nn::Module& module() override { return *model_; }
  const models::Classifier& model() const { return model_; }
  /// In-memory splits; for image folders only `info` (the files are in image_folder()).
  const data::DataSplits& data() const { return data_; }
  bool streams_from_disk() const { return folder_.has_value(); }

  int64_t steps_per_epoch() const override;
  void begin_epoch(int64_t epoch, int64_t first_step) override;
  StepStats train_step(torch::optim::Optimizer& optimizer) override;
  bool has_split(EvalSplit split) const override;
  EvalStats evaluate(EvalSplit split) override;
  void for_each_eval_batch(EvalSplit split, const std::function<void(const TraceFn& run)>& visit) override;
  /// Image folders: skipped_images (unreadable files left out so far, with data.skip_bad_images) and
  /// ignored_files (non-image entries in the folders).
  nlohmann::json summary_extras() const override;
  data::BatchLoader& train_loader() { return *train_loader_; }
  /// The loader of `split` (checked to exist): in-memory images or files decoded with the eval transforms.
  data::BatchLoader& eval_loader(EvalSplit split);
  const ComputeMode& compute_mode() const { return mode_; }
  torch::Device device() const { return device_; }

 protected:
  /// Batches from ready sources (one loader each; `val` may be null: no validation split), e.g. the
  /// segmentation folders of SegmentationTask; `info` describes the data. The step's loss is `loss`.
  ImageClassificationTask(std::shared_ptr<data::BatchSource> train, std::shared_ptr<data::BatchSource> val,
                          std::shared_ptr<data::BatchSource> test, data::DatasetInfo info,
                          models::Classifier model, const ImageClassificationOptions& options,
                          CrossEntropyOptions loss, torch::Device device);
  models::ClassifierImpl& classifier() { return *model_; }

 private:
  /// Moves the model to the device and layout; logs the split sizes.
  void prepare(const std::string& source);

  std::optional<data::ImageFolderData> folder_;  ///< data.dataset image_folder only
  data::DataSplits data_;
  models::Classifier model_;
  torch::Device device_;
  ComputeMode mode_;
  CrossEntropyOptions loss_;
  std::unique_ptr<data::BatchLoader> train_loader_, val_loader_, test_loader_;
  std::vector<std::shared_ptr<data::ImageFolderSource>>
      folder_sources_;  ///< train, val, test (image folders)
};

/// Mean loss and accuracy of `model` over every batch of `loader` (eval mode, no gradients), batches in
/// `mode`'s layout and the forward pass in its precision.
EvalStats evaluate_classifier(models::ClassifierImpl& model, data::BatchLoader& loader, torch::Device device,
                              const ComputeMode& mode = {});

}  // namespace pdeq::train
