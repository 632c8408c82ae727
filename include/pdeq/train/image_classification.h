// Supervised image classification (CIFAR, Fashion-MNIST, image folders): batches from a BatchLoader,
// cross-entropy.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>
#include <pdeq/models/classifier.h>
#include <pdeq/train/compute_mode.h>
#include <pdeq/train/task.h>

#include <memory>
#include <optional>
#include <vector>

namespace pdeq::train {

class ImageClassificationTask : public Task {
 public:
  /// Reads the configured data and builds the configured model on `device`, in train.memory_format; forward
  /// passes (training and evaluation) run in train.precision (see ComputeMode). With a `shard`, every loader
  /// yields only this rank's rows of each batch (data.batch_size and eval_batch_size stay global), and
  /// evaluate() returns this rank's part (the Trainer sums the ranks').
  ImageClassificationTask(const config::Config& config, torch::Device device, data::Shard shard = {});

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
  const ComputeMode& compute_mode() const { return mode_; }

 private:
  std::optional<data::ImageFolderData> folder_;  ///< data.dataset image_folder only
  data::DataSplits data_;
  models::Classifier model_;
  torch::Device device_;
  ComputeMode mode_;
  double label_smoothing_;
  std::unique_ptr<data::BatchLoader> train_loader_, val_loader_, test_loader_;
  std::vector<std::shared_ptr<data::ImageFolderSource>>
      folder_sources_;  ///< train, val, test (image folders)
};

/// Mean loss and accuracy of `model` over every batch of `loader` (eval mode, no gradients), batches in
/// `mode`'s layout and the forward pass in its precision.
EvalStats evaluate_classifier(models::ClassifierImpl& model, data::BatchLoader& loader, torch::Device device,
                              const ComputeMode& mode = {});

}  // namespace pdeq::train
