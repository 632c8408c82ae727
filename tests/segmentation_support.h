// Generated segmentation folders for the data, train and command tests: frames made of 8x8 blocks whose
// colour is a function of their class, written losslessly (PNG) with OpenCV.
#pragma once

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace pdeq::test {

/// BGR colour of class k (distinct for k < 12).
inline cv::Vec3b class_colour(int k) {
  return cv::Vec3b(static_cast<uchar>(10 + 20 * k), static_cast<uchar>(250 - 20 * k),
                   static_cast<uchar>(90 + 13 * k));
}

/// The class of the `block` x `block` square holding pixel (y, x) of frame `seed`: ids 0..classes-1, and
/// `void_id` for one block in seven.
inline int block_class(int y, int x, int seed, int classes, int void_id, int block = 8) {
  const int by = y / block, bx = x / block;
  const int v = (by * 5 + bx * 3 + seed) % 7 == 0 ? void_id : (by * 7 + bx * 2 + seed) % classes;
  return v;
}

/// Writes `frame_path` (colours) and `label_path` (8-bit ids, `void_id` blocks coloured like class 0).
inline void write_segmentation_pair(const std::filesystem::path& frame_path,
                                    const std::filesystem::path& label_path, int height, int width, int seed,
                                    int classes, int void_id, int block = 8) {
  cv::Mat frame(height, width, CV_8UC3), label(height, width, CV_8UC1);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int k = block_class(y, x, seed, classes, void_id, block);
      frame.at<cv::Vec3b>(y, x) = class_colour(k == void_id ? 0 : k);
      label.at<uchar>(y, x) = static_cast<uchar>(k);
    }
  }
  std::filesystem::create_directories(frame_path.parent_path());
  std::filesystem::create_directories(label_path.parent_path());
  ASSERT_TRUE(cv::imwrite(frame_path.string(), frame)) << frame_path;
  ASSERT_TRUE(cv::imwrite(label_path.string(), label)) << label_path;
}

/// A CamVid tree under `root`: train/, val/, test/ with `frames` frames each (and their *annot/ labels),
/// classes 0..10 and void 11, in `block`-pixel squares.
inline void write_camvid(const std::filesystem::path& root, int frames, int height = 48, int width = 64,
                         int block = 8) {
  for (const std::string split : {"train", "val", "test"}) {
    for (int i = 0; i < frames; ++i) {
      const std::string stem = split + "_" + std::to_string(i);
      write_segmentation_pair(root / split / (stem + ".png"), root / (split + "annot") / (stem + ".png"),
                              height, width, i + (split == "train" ? 0 : 100), 11, 11, block);
    }
  }
}

}  // namespace pdeq::test
