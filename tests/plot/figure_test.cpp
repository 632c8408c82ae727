#include <pdeq/plot/figure.h>

#include "test_support.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <vector>

using pdeq::plot::nice_ticks;
using pdeq::plot::Ticks;

namespace {

// Every tick is k * step with step = 1, 2 or 5 times a power of ten, inside the axis range, which holds the
// data.
void expect_nice(const Ticks& t, double lo, double hi, int max_ticks) {
  ASSERT_FALSE(t.values.empty());
  EXPECT_LE(static_cast<int>(t.values.size()), max_ticks);
  EXPECT_LE(t.lo, std::min(lo, hi));
  EXPECT_GE(t.hi, std::max(lo, hi));
  const double exponent = std::floor(std::log10(t.step) + 1e-9);
  const double mantissa = t.step / std::pow(10.0, exponent);
  EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 || std::abs(mantissa - 5) < 1e-9)
      << "step " << t.step;
  for (size_t i = 0; i < t.values.size(); ++i) {
    EXPECT_GE(t.values[i], t.lo);
    EXPECT_LE(t.values[i], t.hi);
    EXPECT_NEAR(t.values[i] / t.step, std::round(t.values[i] / t.step), 1e-6);
    if (i > 0) {
      EXPECT_NEAR(t.values[i] - t.values[i - 1], t.step, 1e-6 * t.step);
    }
  }
}

std::vector<std::string> labels(const Ticks& t) {
  std::vector<std::string> out;
  for (const double v : t.values) out.push_back(pdeq::plot::tick_label(v, t.decimals));
  return out;
}

}  // namespace

TEST(NiceTicks, UnitInterval) {
  // [0, 1] with 4% margins is [-0.04, 1.04]: step 0.1 gives 11 ticks (> 8), 0.2 gives 6.
  const Ticks t = nice_ticks(0, 1, 8);
  expect_nice(t, 0, 1, 8);
  EXPECT_DOUBLE_EQ(t.step, 0.2);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}));
}

TEST(NiceTicks, TheOldPlotsLabels) {
  // A loss curve from 0.0626 to 0.791 was labelled 0.0626 ... 0.791; now 0.1 steps.
  const Ticks t = nice_ticks(0.0626, 0.791, 8);
  expect_nice(t, 0.0626, 0.791, 8);
  EXPECT_DOUBLE_EQ(t.step, 0.1);
  EXPECT_EQ(labels(t).front(), "0.1");
  EXPECT_EQ(labels(t).back(), "0.8");
}

TEST(NiceTicks, Negatives) {
  const Ticks t = nice_ticks(-0.0139, 0.02, 6);
  expect_nice(t, -0.0139, 0.02, 6);
  EXPECT_DOUBLE_EQ(t.step, 0.01);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"-0.01", "0.00", "0.01", "0.02"}));
  const Ticks all_negative = nice_ticks(-250, -30, 8);
  expect_nice(all_negative, -250, -30, 8);
  EXPECT_DOUBLE_EQ(all_negative.step, 50);
  EXPECT_EQ(labels(all_negative).front(), "-250");
}

TEST(NiceTicks, ConstantSeries) {
  const Ticks t = nice_ticks(0.5, 0.5, 8);  // +-10%: [0.45, 0.55]
  expect_nice(t, 0.45, 0.55, 8);
  EXPECT_DOUBLE_EQ(t.step, 0.02);
  const Ticks zero = nice_ticks(0, 0, 8);  // +-1
  expect_nice(zero, -1, 1, 8);
  EXPECT_DOUBLE_EQ(zero.step, 0.5);
  EXPECT_EQ(labels(zero), (std::vector<std::string>{"-1.0", "-0.5", "0.0", "0.5", "1.0"}));
}

TEST(NiceTicks, SinglePointOnAnIntegerAxis) {
  // One epoch: the axis runs around it, with integer ticks only.
  const Ticks t = nice_ticks(1, 1, 8, /*integer=*/true);
  expect_nice(t, 0, 2, 8);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"0", "1", "2"}));
  // A short run: no half epochs even where they would fit.
  EXPECT_DOUBLE_EQ(nice_ticks(1, 3, 10, true).step, 1);
}

TEST(NiceTicks, EpochAxisOfALongRun) {
  const Ticks t = nice_ticks(1, 200, 8, true);
  expect_nice(t, 1, 200, 8);
  EXPECT_DOUBLE_EQ(t.step, 50);
  EXPECT_EQ(labels(t), (std::vector<std::string>{"0", "50", "100", "150", "200"}));
}

TEST(NiceTicks, TinyRangeFarFromZero) {
  const Ticks t = nice_ticks(1.0000001, 1.0000004, 8);
  expect_nice(t, 1.0000001, 1.0000004, 8);
  EXPECT_NEAR(t.step, 5e-8, 1e-20);
  EXPECT_EQ(t.decimals, 8);
  // Neighbouring labels differ.
  const auto l = labels(t);
  for (size_t i = 1; i < l.size(); ++i) EXPECT_NE(l[i], l[i - 1]);
}

TEST(NiceTicks, ReversedBoundsAndErrors) {
  EXPECT_DOUBLE_EQ(nice_ticks(10, 0, 6).step, 2);
  PDEQ_ASSERT_THROWS_WITH(nice_ticks(0, INFINITY), "finite");
  PDEQ_ASSERT_THROWS_WITH(nice_ticks(0, 1, 1), "max_ticks");
}

TEST(NiceTicks, EnoughTicks) {
  // The chosen step is at most 2.5 times the one before it in the 1-2-5 sequence, which gave more than
  // max_ticks ticks: so the range spans more than (max_ticks - 1) / 2.5 steps.
  for (double span : {0.003, 0.07, 1.0, 3.3, 17.0, 420.0, 9999.0}) {
    for (const int max_ticks : {5, 8, 10}) {
      const Ticks t = nice_ticks(-0.3 * span, 0.7 * span, max_ticks);
      expect_nice(t, -0.3 * span, 0.7 * span, max_ticks);
      EXPECT_GE(static_cast<double>(t.values.size()), std::max(2.0, std::floor((max_ticks - 1) / 2.5)))
          << span << " " << max_ticks;
    }
  }
}

TEST(CountTicks, PowersOfTen) {
  const Ticks t = pdeq::plot::count_ticks(3500);
  ASSERT_EQ(t.values.size(), 6u);  // 0 1 10 100 1000 10000
  EXPECT_DOUBLE_EQ(t.values[0], 0);
  EXPECT_DOUBLE_EQ(t.values[2], std::log10(11.0));
  EXPECT_DOUBLE_EQ(t.hi, std::log10(10001.0));
}

TEST(TickLabel, NegativeZero) {
  EXPECT_EQ(pdeq::plot::tick_label(-0.0, 2), "0.00");
  EXPECT_EQ(pdeq::plot::tick_label(-1e-12, 1), "0.0");
  EXPECT_EQ(pdeq::plot::tick_label(-0.5, 1), "-0.5");
}

TEST(RenderPng, DecodesToAnImageOfTheExpectedSize) {
  pdeq::plot::Panel panel;
  panel.title = "loss";
  panel.x = {"epoch", true};
  panel.y = {"loss"};
  panel.lines.push_back({"train", {1, 2, 3}, {0.9, 0.5, 0.4}});
  panel.lines.push_back({"val", {1, 2, 3}, {1.0, NAN, 0.6}});
  const std::string png = pdeq::plot::render_png({panel, panel}, 300, 200);
  const cv::Mat image = cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  EXPECT_GT(image.cols, 2 * 300);
  EXPECT_GT(image.rows, 200);
  // The plot area is not blank: curves were drawn in colour.
  cv::Mat hsv;
  cv::cvtColor(image, hsv, cv::COLOR_BGR2HSV);
  std::vector<cv::Mat> channels;
  cv::split(hsv, channels);
  EXPECT_GT(cv::countNonZero(channels[1] > 100), 50);

  pdeq::plot::Panel bad = panel;
  bad.lines[0].y.pop_back();
  PDEQ_ASSERT_THROWS_WITH(pdeq::plot::render_png({bad}), "has 3 x and 2 y values");
}
