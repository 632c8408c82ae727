// A build without OpenCV (PDEQ_WITH_OPENCV=OFF) refuses to decode image folders, naming the option; the image
// folder tests proper need OpenCV to write their JPEG/PNG trees and are not built then.
#include <pdeq/compat/features.h>
#include <pdeq/data/image_folder.h>

#include "test_support.h"

namespace pdeq::data {
namespace {

TEST(WithoutOpenCV, ImageFolderSourceRefusesNamingTheOption) {
  ASSERT_FALSE(compat::opencv_built());
  ImageFolderSplit split;
  split.files = {"a.jpg"};
  split.labels = {0};
  split.classes = {"a"};
  PDEQ_ASSERT_THROWS_WITH(
      ImageFolderSource(split, ImageTransformOptions()),
      "Image folders (decoding JPEG, PNG and BMP files) needs OpenCV, and this pdeq was built "
      "without it (PDEQ_WITH_OPENCV=OFF); install OpenCV (libopencv-dev) and reconfigure with "
      "-DPDEQ_WITH_OPENCV=ON");
}

}  // namespace
}  // namespace pdeq::data
