// Semantic segmentation (CamVid, Cityscapes folders): the image task's loaders and step with a per-pixel
// cross-entropy (ignore label, optional class weights), evaluated by a confusion matrix.
#pragma once

#include <pdeq/analysis/confusion_matrix.h>
#include <pdeq/data/segmentation.h>
#include <pdeq/train/image_classification.h>

#include <map>
#include <vector>

namespace pdeq::train {

struct SegmentationOptions {
  ImageClassificationOptions image;  ///< loaders, seed, compute mode (the transforms are below)
  data::SegmentationTransformOptions train_transform, eval_transform;
  std::vector<double> class_weights;  ///< per class; empty: unweighted
  double label_smoothing = 0.0;
};

/// ImageClassificationTask's epochs, steps and traced evaluation batches over SegmentationSources, with
///   loss = mean over the pixels not ignored of w[y] * CE(logits(pixel), y) / mean w (F::cross_entropy's
///   weighted mean), and evaluate() = a confusion matrix over the split: EvalStats::accuracy is the mIoU (so
///   the best checkpoint is the one of the best validation mIoU), loss the mean per-frame loss.
/// metrics_extras adds the last validation's pixel accuracy; summary_extras the test split's mIoU, pixel
/// accuracy and per-class IoU by class name.
class SegmentationTask : public ImageClassificationTask {
 public:
  SegmentationTask(data::SegmentationData data, models::Classifier model, const SegmentationOptions& options,
                   torch::Device device);

  EvalStats evaluate(EvalSplit split) override;
  nlohmann::json metrics_extras() override;
  nlohmann::json summary_extras() const override;
  std::string train_accuracy_name() const override { return "pixel acc"; }
  std::string eval_accuracy_name() const override { return "mIoU"; }

  /// The confusion matrix of the last evaluate(split) (empty before).
  const analysis::ConfusionMatrix& confusion(EvalSplit split) const;
  const data::SegmentationInfo& info() const { return info_; }
  /// The files of `split` in evaluation order.
  const data::SegmentationSplit& split_files(EvalSplit split) const;
  /// The first `count` frames of `split` as evaluation sees them (normalised images, labels), on the CPU.
  data::Batch first_frames(EvalSplit split, int64_t count);

 private:
  data::SegmentationData folders_;
  data::SegmentationInfo info_;
  std::vector<std::shared_ptr<data::SegmentationSource>> sources_;
  std::map<EvalSplit, analysis::ConfusionMatrix> confusion_;
};

/// The per-class table of a confusion matrix as JSON: {"miou", "pixel_accuracy", "pixels", "classes":
/// [{"class", "name", "iou" (null when absent), "pixels" (labelled)}...]}.
nlohmann::json iou_table(const analysis::ConfusionMatrix& confusion,
                         const std::vector<std::string>& class_names);

}  // namespace pdeq::train
