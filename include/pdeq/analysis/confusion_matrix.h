// Per-pixel evaluation of segmentations: a confusion matrix over classes with an ignore label, and the scores
// read from it (IoU per class, mean IoU, pixel accuracy).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace pdeq::analysis {

/// counts[t][p]: pixels of true class t predicted as p, summed over every add(). Pixels labelled
/// `ignore_index` are left out (CamVid's void, Cityscapes' 255); any other label must be a class.
///
///   IoU_c = counts[c][c] / (row_c + column_c - counts[c][c]),
///   mIoU  = mean of IoU_c over the classes with row_c + column_c > 0 (present in the labels or the
///           predictions; a class absent from both is left out rather than counted as 0 or 1),
///   pixel accuracy = trace / total.
///
/// Example:
///   ConfusionMatrix cm(11, 11);
///   cm.add(labels, logits.argmax(1));  // int64 [N, H, W] each
///   double miou = cm.mean_iou();
class ConfusionMatrix {
 public:
  /// `num_classes` > 0; `ignore_index` may be any value outside [0, num_classes) (or inside it: that class
  /// is then never counted).
  ConfusionMatrix(int64_t num_classes, int64_t ignore_index);

  /// Adds the pixels of `labels` and `predictions` (integer tensors of one shape). Throws c10::Error when
  /// the shapes differ, or a label (other than ignore_index) or a prediction lies outside [0, num_classes).
  void add(const torch::Tensor& labels, const torch::Tensor& predictions);
  /// Adds another matrix's counts (same classes).
  void merge(const ConfusionMatrix& other);

  int64_t num_classes() const { return num_classes_; }
  int64_t ignore_index() const { return ignore_index_; }
  /// counts()[t * num_classes + p].
  const std::vector<int64_t>& counts() const { return counts_; }
  int64_t count(int64_t truth, int64_t predicted) const;
  /// Pixels counted (ignored ones excluded).
  int64_t total() const;
  /// IoU of each class; NaN for a class absent from both labels and predictions.
  std::vector<double> iou() const;
  /// Mean IoU over the classes that are present (see the class comment); 0 when nothing was counted.
  double mean_iou() const;
  /// Correct pixels / counted pixels; 0 when nothing was counted.
  double pixel_accuracy() const;

 private:
  int64_t num_classes_;
  int64_t ignore_index_;
  std::vector<int64_t> counts_;
};

}  // namespace pdeq::analysis
