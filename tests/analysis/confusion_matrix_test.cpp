#include <pdeq/analysis/confusion_matrix.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace {

using pdeq::analysis::ConfusionMatrix;

torch::Tensor t(std::vector<int64_t> values, std::vector<int64_t> shape) {
  return torch::tensor(values, torch::kInt64).reshape(shape);
}

// 3 classes, ignore label 9, a 2x4 image:
//   labels      0 0 1 9      predictions 0 1 1 2
//               2 2 1 9                  2 0 1 0
// counted pixels (truth, predicted): (0,0) (0,1) (1,1) (2,2) (2,0) (1,1); the two 9s are left out.
// class 0: TP 1, row 2, column 2 -> IoU 1/3; class 1: TP 2, row 2, column 3 -> 2/3; class 2: TP 1, row 2,
// column 1 -> 1/2. mIoU = (1/3 + 2/3 + 1/2) / 3 = 1/2; pixel accuracy 4/6.
TEST(ConfusionMatrixTest, HandComputedSmallCaseWithIgnoreLabel) {
  ConfusionMatrix cm(3, 9);
  cm.add(t({0, 0, 1, 9, 2, 2, 1, 9}, {1, 2, 4}), t({0, 1, 1, 2, 2, 0, 1, 0}, {1, 2, 4}));
  EXPECT_EQ(cm.total(), 6);
  EXPECT_EQ(cm.count(0, 0), 1);
  EXPECT_EQ(cm.count(0, 1), 1);
  EXPECT_EQ(cm.count(1, 1), 2);
  EXPECT_EQ(cm.count(2, 0), 1);
  EXPECT_EQ(cm.count(2, 2), 1);
  const auto iou = cm.iou();
  EXPECT_DOUBLE_EQ(iou[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(iou[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(iou[2], 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(cm.mean_iou(), 0.5);
  EXPECT_DOUBLE_EQ(cm.pixel_accuracy(), 4.0 / 6.0);
}

// A class that appears neither in the labels nor in the predictions has no IoU (NaN) and is left out of the
// mean; a class only predicted (a false positive everywhere) counts with IoU 0.
TEST(ConfusionMatrixTest, MeanOverPresentClasses) {
  ConfusionMatrix cm(4, 255);
  cm.add(t({0, 0, 1, 1}, {4}), t({0, 0, 1, 2}, {4}));
  const auto iou = cm.iou();
  EXPECT_DOUBLE_EQ(iou[0], 1.0);
  EXPECT_DOUBLE_EQ(iou[1], 0.5);
  EXPECT_DOUBLE_EQ(iou[2], 0.0);
  EXPECT_TRUE(std::isnan(iou[3]));
  EXPECT_DOUBLE_EQ(cm.mean_iou(), 1.5 / 3.0);
}

TEST(ConfusionMatrixTest, AddingInPartsEqualsAddingAtOnceAndMergeSums) {
  const auto labels = t({0, 1, 2, 1, 0, 255}, {6});
  const auto predicted = t({0, 2, 2, 1, 1, 0}, {6});
  ConfusionMatrix whole(3, 255), parts(3, 255), other(3, 255);
  whole.add(labels, predicted);
  parts.add(labels.slice(0, 0, 3), predicted.slice(0, 0, 3));
  other.add(labels.slice(0, 3), predicted.slice(0, 3));
  parts.merge(other);
  EXPECT_EQ(parts.counts(), whole.counts());
  EXPECT_EQ(whole.total(), 5);
}

TEST(ConfusionMatrixTest, EmptyMatrixScoresZero) {
  ConfusionMatrix cm(2, 255);
  cm.add(t({255, 255}, {2}), t({0, 1}, {2}));
  EXPECT_EQ(cm.total(), 0);
  EXPECT_EQ(cm.mean_iou(), 0.0);
  EXPECT_EQ(cm.pixel_accuracy(), 0.0);
}

TEST(ConfusionMatrixTest, RefusesLabelsOutOfRangeAndShapeMismatch) {
  ConfusionMatrix cm(3, 255);
  EXPECT_THROW(cm.add(t({3}, {1}), t({0}, {1})), c10::Error);
  EXPECT_THROW(cm.add(t({0}, {1}), t({5}, {1})), c10::Error);
  EXPECT_THROW(cm.add(t({0, 1}, {2}), t({0}, {1})), c10::Error);
  ConfusionMatrix other(4, 255);
  EXPECT_THROW(cm.merge(other), c10::Error);
}

}  // namespace
