// A generated ImageNet-style folder for tests that stream images from disk (needs OpenCV): two colours,
// root/{train,val}/{blue,red}/, and a small config that trains on it.
#pragma once

#include <pdeq/config/config.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <random>
#include <string>
#include <utility>

namespace pdeq::test {

/// root/{train,val}/{blue,red}/: 32 x 40 noisy images, mostly blue or mostly red (lossy JPEG and PNG mixed).
inline void write_colour_tree(const std::filesystem::path& root, int train_per_class, int val_per_class) {
  std::mt19937 rng(3);
  const auto image = [&](bool red) {
    cv::Mat m(32, 40, CV_8UC3);
    for (int y = 0; y < m.rows; ++y) {
      for (int x = 0; x < m.cols; ++x) {
        const auto noise = [&] { return static_cast<uchar>(rng() % 90); };
        const uchar strong = static_cast<uchar>(150 + rng() % 100);
        m.at<cv::Vec3b>(y, x) =
            red ? cv::Vec3b(noise(), noise(), strong) : cv::Vec3b(strong, noise(), noise());
      }
    }
    return m;
  };
  for (const auto& [split, count] :
       {std::pair<std::string, int>{"train", train_per_class}, {"val", val_per_class}}) {
    for (const bool red : {false, true}) {
      const std::filesystem::path folder = root / split / (red ? "red" : "blue");
      std::filesystem::create_directories(folder);
      for (int i = 0; i < count; ++i) {
        cv::imwrite((folder / (std::to_string(i) + (i % 2 ? ".jpg" : ".png"))).string(), image(red));
      }
    }
  }
}

inline pdeq::config::Config colour_config(const std::filesystem::path& root) {
  pdeq::config::Config c;
  c.source = "colours";
  c.model.name = "resnet20";
  c.data.dataset = "image_folder";
  c.data.root = root.string();
  c.data.resize = 32;
  c.data.image_size = 28;
  c.data.val_size = 8;
  c.data.batch_size = 8;
  c.data.eval_batch_size = 16;
  c.data.workers = 2;
  c.train.epochs = 2;
  c.train.lr = 0.05;
  c.train.threads = 2;
  c.train.log_every = 1000;
  return c;
}

}  // namespace pdeq::test
