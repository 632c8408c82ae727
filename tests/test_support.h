// Shared test helpers: deterministic seeding, message assertions, data locations.
#pragma once

#include "test_paths.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <sstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace pdeq::test {

/// Seeds LibTorch's global generator before each test so random inputs are reproducible.
struct SeedingFixture : public ::testing::Test {
  void SetUp() override { torch::manual_seed(0); }
};

/// A fresh folder under the system temp directory, removed with everything in it on destruction. Unique per
/// process and object, so tests may run in parallel processes under ctest -j.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("pdeq_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// A module's own pretty_print line (without its children, unlike operator<<).
inline std::string one_line(const torch::nn::Module& module) {
  std::ostringstream stream;
  module.pretty_print(stream);
  return stream.str();
}

/// `../shared/data/<relative>` next to the source tree.
inline std::string shared_data(const std::string& relative) { return shared_data_dir() + "/" + relative; }

}  // namespace pdeq::test

/// Asserts that `statement` throws a std::exception whose what() contains `substring`.
#define PDEQ_ASSERT_THROWS_WITH(statement, substring)                         \
  do {                                                                        \
    try {                                                                     \
      (void)(statement);                                                      \
      FAIL() << "expected an exception containing \"" << (substring) << "\""; \
    } catch (const std::exception& e__) {                                     \
      ASSERT_NE(std::string(e__.what()).find(substring), std::string::npos)   \
          << "message was: " << e__.what();                                   \
    }                                                                         \
  } while (0)
