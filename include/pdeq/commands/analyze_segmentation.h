// `pdeq analyze segmentation`: a trained segmentation run's per-class IoU table and a picture of frames,
// labels and predictions.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace pdeq::commands {

struct AnalyzeSegmentationOptions {
  std::filesystem::path run;
  std::filesystem::path out;        ///< folder for iou.json, iou.csv and segmentation.png (created)
  std::string split = "test";       ///< test | val
  std::string checkpoint = "best";  ///< best | last
  int64_t frames = 4;               ///< rows of segmentation.png: the split's first frames
};

struct AnalyzeSegmentationResult {
  nlohmann::json report;  ///< iou.json: run, split, checkpoint, miou, pixel_accuracy, pixels, classes
  nlohmann::json to_json() const { return report; }
};

/// Loads the run's checkpoint, evaluates the whole split (train::SegmentationTask::evaluate: confusion
/// matrix at the evaluation resolution data.resize) and writes into options.out: iou.json (train::iou_table
/// plus run, split and checkpoint), iou.csv (class, name, iou, pixels; iou empty for a class absent from
/// labels and predictions) and segmentation.png (one row per frame: frame, labels, prediction; palette of
/// analysis::segmentation_colour). Throws c10::ValueError for a run that is not a segmentation run.
AnalyzeSegmentationResult analyze_segmentation(const AnalyzeSegmentationOptions& options);

}  // namespace pdeq::commands
