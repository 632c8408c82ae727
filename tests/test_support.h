// Shared test helpers: deterministic seeding, message assertions, data locations.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace pdeq::test {

/// Seeds LibTorch's global generator before each test so random inputs are reproducible.
struct SeedingFixture : public ::testing::Test {
  void SetUp() override { torch::manual_seed(0); }
};

/// `../shared/data/<relative>` next to the source tree.
inline std::string shared_data(const std::string& relative) {
  return std::string(PDEQ_SHARED_DATA_DIR) + "/" + relative;
}

}  // namespace pdeq::test

/// Asserts that `statement` throws a std::exception whose what() contains `substring`.
#define PDEQ_ASSERT_THROWS_WITH(statement, substring)                                              \
  do {                                                                                            \
    try {                                                                                         \
      (void)(statement);                                                                          \
      FAIL() << "expected an exception containing \"" << (substring) << "\"";                     \
    } catch (const std::exception& e__) {                                                         \
      ASSERT_NE(std::string(e__.what()).find(substring), std::string::npos)                       \
          << "message was: " << e__.what();                                                       \
    }                                                                                             \
  } while (0)
