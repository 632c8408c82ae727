// Tests of the gradual bit schedule.
#include <pdeq/quant/bit_schedule.h>

#include "test_support.h"

namespace pdeq::quant {
namespace {

struct BitScheduleTest : pdeq::test::SeedingFixture {};

TEST_F(BitScheduleTest, ReferenceTimingTable) {
  // The reference lowers the bits after training epoch e when e > 0 and e % 10 == 0 (0-based): 16 bits at
  // epochs 0..10, 15 at 11..20, ..., 4 from epoch 121 on.
  const BitScheduleOptions options(4);
  EXPECT_TRUE(options.reference_timing());
  int64_t bits = 16;
  for (int64_t epoch = 0; epoch < 200; ++epoch) {
    ASSERT_EQ(bits_at_epoch(options, epoch), bits) << "epoch " << epoch;
    if (epoch > 0 && epoch % 10 == 0) bits = std::max<int64_t>(bits - 1, 4);  // its loop, after the epoch
  }
  EXPECT_EQ(bits_at_epoch(options, 10), 16);
  EXPECT_EQ(bits_at_epoch(options, 11), 15);
  EXPECT_EQ(bits_at_epoch(options, 120), 5);
  EXPECT_EQ(bits_at_epoch(options, 121), 4);
}

TEST_F(BitScheduleTest, EvenTimingTable) {
  // 16 bits at epochs 0..9, 15 at 10..19, ..., 4 from epoch 120 on.
  const auto options = BitScheduleOptions(4).reference_timing(false);
  for (int64_t epoch = 0; epoch < 200; ++epoch) {
    const int64_t expected = std::max<int64_t>(4, 16 - epoch / 10);
    ASSERT_EQ(bits_at_epoch(options, epoch), expected) << "epoch " << epoch;
  }
  EXPECT_EQ(bits_at_epoch(options, 0), 16);
  EXPECT_EQ(bits_at_epoch(options, 9), 16);
  EXPECT_EQ(bits_at_epoch(options, 10), 15);
  EXPECT_EQ(bits_at_epoch(options, 119), 5);
  EXPECT_EQ(bits_at_epoch(options, 120), 4);
  EXPECT_EQ(bits_at_epoch(options, 1000), 4);
}

TEST_F(BitScheduleTest, ConfigurableStartStepAndPeriod) {
  const auto options = BitScheduleOptions(2).start_bits(8).step(2).period_epochs(3).reference_timing(false);
  const std::vector<int64_t> expected = {8, 8, 8, 6, 6, 6, 4, 4, 4, 2, 2, 2, 2};
  for (size_t epoch = 0; epoch < expected.size(); ++epoch) {
    EXPECT_EQ(bits_at_epoch(options, static_cast<int64_t>(epoch)), expected[epoch]) << "epoch " << epoch;
  }
}

TEST_F(BitScheduleTest, DisabledFullPrecisionOrLowStartGiveTheTarget) {
  EXPECT_EQ(bits_at_epoch(BitScheduleOptions(4).enabled(false), 0), 4);
  EXPECT_EQ(bits_at_epoch(BitScheduleOptions(32), 0), 32);
  EXPECT_EQ(bits_at_epoch(BitScheduleOptions(32), 500), 32);
  EXPECT_EQ(bits_at_epoch(BitScheduleOptions(20), 0), 20);  // start 16 below the target: never raises bits
  EXPECT_EQ(bits_at_epoch(BitScheduleOptions(4).step(0), 100), 16);
}

TEST_F(BitScheduleTest, RejectsInvalidArguments) {
  PDEQ_ASSERT_THROWS_WITH(bits_at_epoch(BitScheduleOptions(4), -1), "epoch must be non-negative, but got -1");
  PDEQ_ASSERT_THROWS_WITH(bits_at_epoch(BitScheduleOptions(4).period_epochs(0), 0),
                          "period_epochs must be at least 1, but got 0");
  PDEQ_ASSERT_THROWS_WITH(bits_at_epoch(BitScheduleOptions(4).step(-1), 0),
                          "step must be non-negative, but got -1");
}

}  // namespace
}  // namespace pdeq::quant
