#include <pdeq/analysis/confusion_matrix.h>

#include <c10/util/Exception.h>

#include <cmath>
#include <limits>

namespace pdeq::analysis {

ConfusionMatrix::ConfusionMatrix(int64_t num_classes, int64_t ignore_index)
    : num_classes_(num_classes), ignore_index_(ignore_index) {
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, but got ", num_classes);
  counts_.assign(static_cast<size_t>(num_classes * num_classes), 0);
}

void ConfusionMatrix::add(const torch::Tensor& labels, const torch::Tensor& predictions) {
  TORCH_CHECK(labels.sizes() == predictions.sizes(), "labels and predictions must have one shape, but got ",
              labels.sizes(), " and ", predictions.sizes());
  const auto truth = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const auto predicted = predictions.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* t = truth.data_ptr<int64_t>();
  const int64_t* p = predicted.data_ptr<int64_t>();
  const int64_t n = truth.numel(), c = num_classes_;
  // One pass of plain loops: a few megapixels per evaluation, and no temporary [N, H, W] index tensors.
  for (int64_t i = 0; i < n; ++i) {
    if (t[i] == ignore_index_) continue;
    TORCH_CHECK(t[i] >= 0 && t[i] < c, "label must be in [0, ", c, ") or the ignore label ", ignore_index_,
                ", but got ", t[i]);
    TORCH_CHECK(p[i] >= 0 && p[i] < c, "prediction must be in [0, ", c, "), but got ", p[i]);
    ++counts_[static_cast<size_t>(t[i] * c + p[i])];
  }
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  TORCH_CHECK(other.num_classes_ == num_classes_, "cannot merge a confusion matrix of ", other.num_classes_,
              " classes into one of ", num_classes_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t ConfusionMatrix::count(int64_t truth, int64_t predicted) const {
  TORCH_CHECK(truth >= 0 && truth < num_classes_ && predicted >= 0 && predicted < num_classes_,
              "class must be in [0, ", num_classes_, "), but got (", truth, ", ", predicted, ")");
  return counts_[static_cast<size_t>(truth * num_classes_ + predicted)];
}

int64_t ConfusionMatrix::total() const {
  int64_t sum = 0;
  for (int64_t v : counts_) sum += v;
  return sum;
}

std::vector<double> ConfusionMatrix::iou() const {
  const int64_t c = num_classes_;
  std::vector<double> out(static_cast<size_t>(c));
  for (int64_t k = 0; k < c; ++k) {
    int64_t row = 0, column = 0;
    for (int64_t j = 0; j < c; ++j) {
      row += count(k, j);
      column += count(j, k);
    }
    const int64_t together = row + column - count(k, k);
    out[static_cast<size_t>(k)] = together > 0
                                      ? static_cast<double>(count(k, k)) / static_cast<double>(together)
                                      : std::numeric_limits<double>::quiet_NaN();
  }
  return out;
}

double ConfusionMatrix::mean_iou() const {
  double sum = 0.0;
  int64_t present = 0;
  for (double v : iou()) {
    if (std::isnan(v)) continue;
    sum += v;
    ++present;
  }
  return present > 0 ? sum / static_cast<double>(present) : 0.0;
}

double ConfusionMatrix::pixel_accuracy() const {
  int64_t correct = 0;
  for (int64_t k = 0; k < num_classes_; ++k) correct += count(k, k);
  const int64_t all = total();
  return all > 0 ? static_cast<double>(correct) / static_cast<double>(all) : 0.0;
}

}  // namespace pdeq::analysis
