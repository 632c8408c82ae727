// Supervised image classification (CIFAR, Fashion-MNIST, ...): batches from a BatchLoader, cross-entropy.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/loader.h>
#include <pdeq/models/classifier.h>
#include <pdeq/train/task.h>

#include <memory>

namespace pdeq::train {

class ImageClassificationTask : public Task {
 public:
  /// Reads the configured data and builds the configured model on `device`. With a `shard`, every loader
  /// yields only this rank's rows of each batch (data.batch_size and eval_batch_size stay global), and
  /// evaluate() returns this rank's part (the Trainer sums the ranks').
  ImageClassificationTask(const config::Config& config, torch::Device device, data::Shard shard = {});

  torch::nn::Module& module() override { return *model_; }
  const models::Classifier& model() const { return model_; }
  const data::DataSplits& data() const { return data_; }

  int64_t steps_per_epoch() const override;
  void begin_epoch(int64_t epoch, int64_t first_step) override;
  StepStats train_step(torch::optim::Optimizer& optimizer) override;
  bool has_split(EvalSplit split) const override;
  EvalStats evaluate(EvalSplit split) override;
  void for_each_eval_batch(EvalSplit split, const std::function<void(const TraceFn& run)>& visit) override;

 private:
  data::DataSplits data_;
  models::Classifier model_;
  torch::Device device_;
  double label_smoothing_;
  std::unique_ptr<data::BatchLoader> train_loader_, val_loader_, test_loader_;
};

/// Mean loss and accuracy of `model` over every batch of `loader` (eval mode, no gradients).
EvalStats evaluate_classifier(models::ClassifierImpl& model, data::BatchLoader& loader, torch::Device device);

}  // namespace pdeq::train
