// Writes a synthetic ImageNet-style folder for benchmarks and smoke runs (never committed):
//   root/{train,val}/class_NNN/img_NNNNN.jpg, shorter side `size` pixels, 4:3 landscape, JPEG quality 90.
// Each class has its own mean colour and stripe orientation, plus per-image noise, so the set is learnable
// and the JPEGs have natural-image-like sizes (not flat colour that compresses to nothing).
//   make_image_folder ROOT CLASSES TRAIN_PER_CLASS VAL_PER_CLASS [SIZE=256] [SEED=1]
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s ROOT CLASSES TRAIN_PER_CLASS VAL_PER_CLASS [SIZE=256] [SEED=1]\n",
                 argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  const int classes = std::atoi(argv[2]), train = std::atoi(argv[3]), val = std::atoi(argv[4]);
  const int size = argc > 5 ? std::atoi(argv[5]) : 256;
  std::mt19937 rng(argc > 6 ? static_cast<unsigned>(std::atoi(argv[6])) : 1u);
  const int height = size, width = size * 4 / 3;
  const std::vector<int> jpeg{cv::IMWRITE_JPEG_QUALITY, 90};
  for (const auto& [split, count] : {std::pair<const char*, int>{"train", train}, {"val", val}}) {
    for (int c = 0; c < classes; ++c) {
      char name[32];
      std::snprintf(name, sizeof name, "class_%03d", c);
      const auto folder = root / split / name;
      std::filesystem::create_directories(folder);
      const cv::Scalar base(40 + (c * 53) % 170, 40 + (c * 97) % 170, 40 + (c * 31) % 170);
      const double angle = 3.14159265 * c / std::max(classes, 1);
      for (int i = 0; i < count; ++i) {
        cv::Mat image(height, width, CV_8UC3);
        cv::randn(image, base, cv::Scalar::all(30));
        const double period = 8 + rng() % 24;
        for (int y = 0; y < height; ++y) {
          auto* row = image.ptr<cv::Vec3b>(y);
          for (int x = 0; x < width; ++x) {
            const double s = 40 * std::sin((x * std::cos(angle) + y * std::sin(angle)) / period);
            for (int k = 0; k < 3; ++k) row[x][k] = cv::saturate_cast<uchar>(row[x][k] + s);
          }
        }
        cv::GaussianBlur(image, image, cv::Size(3, 3), 0);
        char file[32];
        std::snprintf(file, sizeof file, "img_%05d.jpg", i);
        if (!cv::imwrite((folder / file).string(), image, jpeg)) {
          std::fprintf(stderr, "cannot write %s\n", (folder / file).c_str());
          return 1;
        }
      }
    }
  }
  return 0;
}
