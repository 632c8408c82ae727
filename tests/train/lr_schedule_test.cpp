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

TEST(LrSchedule, PerEpochMovesOnceAnEpochAsTorchsCosineAnnealingLR) {
  // 5 epochs of 7 steps: lr(epoch e) = 0.1 * (1 + cos(pi * e / 5)) / 2 for all its steps, as
  // CosineAnnealingLR(T_max = 5) stepped after each epoch.
  const auto options = LrScheduleOptions(0.1, 5 * 7).steps_per_update(7);
  for (int64_t epoch = 0; epoch < 5; ++epoch) {
    const double expected = 0.1 * (1 + std::cos(M_PI * static_cast<double>(epoch) / 5)) / 2;
    for (int64_t step = 0; step < 7; ++step) {
      EXPECT_NEAR(lr_at_step(options, epoch * 7 + step), expected, 1e-12) << epoch << " " << step;
    }
  }
  // A warm-up of 2 epochs rises by epochs too: base/2, then base.
  const auto warm =
      LrScheduleOptions(0.1, 5 * 7).steps_per_update(7).warmup_steps(14).kind(LrScheduleKind::kConstant);
  EXPECT_NEAR(lr_at_step(warm, 6), 0.05, 1e-12);
  EXPECT_NEAR(lr_at_step(warm, 7), 0.1, 1e-12);
  EXPECT_NEAR(lr_at_step(warm, 13), 0.1, 1e-12);
}
