// PNG plots in tests: drawn when pdeq has OpenCV, skipped (with one warning) when it was built without it.
#pragma once

#include <pdeq/compat/features.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>

namespace pdeq::test {

/// `png` holds more than `min_bytes` when this build draws plots; it does not exist when it cannot.
inline void expect_plot(const std::filesystem::path& png, std::uintmax_t min_bytes = 0) {
  if (!compat::opencv_built()) {
    EXPECT_FALSE(std::filesystem::exists(png)) << png;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(png)) << png;
  EXPECT_GT(std::filesystem::file_size(png), min_bytes) << png;
}

}  // namespace pdeq::test
