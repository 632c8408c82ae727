#include <pdeq/train/lr_schedule.h>

#include "test_support.h"

#include <cmath>

using pdeq::train::lr_at_step;
using pdeq::train::LrScheduleKind;
using pdeq::train::LrScheduleOptions;

TEST(LrSchedule, CosineHandValues) {
  const auto options = LrScheduleOptions(0.1, 100);
  EXPECT_DOUBLE_EQ(lr_at_step(options, 0), 0.1);
  EXPECT_NEAR(lr_at_step(options, 50), 0.05, 1e-12);  // cos(pi/2) = 0
  EXPECT_NEAR(lr_at_step(options, 25), 0.1 * (1 + std::cos(M_PI / 4)) / 2, 1e-12);
  EXPECT_NEAR(lr_at_step(options, 100), 0.0, 1e-12);
}

TEST(LrSchedule, WarmupIsLinearThenCosine) {
  const auto options = LrScheduleOptions(0.2, 110).warmup_steps(10).min_lr(0.01);
  EXPECT_NEAR(lr_at_step(options, 0), 0.02, 1e-12);
  EXPECT_NEAR(lr_at_step(options, 4), 0.10, 1e-12);
  EXPECT_NEAR(lr_at_step(options, 10), 0.2, 1e-12);
  EXPECT_NEAR(lr_at_step(options, 60), 0.01 + 0.19 * 0.5, 1e-12);
  EXPECT_NEAR(lr_at_step(options, 110), 0.01, 1e-12);
}

TEST(LrSchedule, ConstantStaysPut) {
  const auto options = LrScheduleOptions(0.3, 10).kind(LrScheduleKind::kConstant);
  for (int64_t step : {0, 5, 9}) EXPECT_DOUBLE_EQ(lr_at_step(options, step), 0.3);
}
