// PDEQ_WITH_OPENCV is defined for this source only when the build has OpenCV (CMakeLists.txt), which draws
// and encodes the figures; the tick rules need nothing of it.
#include <pdeq/plot/figure.h>

#include <pdeq/compat/features.h>

#include <c10/util/Exception.h>

#ifdef PDEQ_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace pdeq::plot {
#ifdef PDEQ_WITH_OPENCV
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kTickFont = 0.42, kLabelFont = 0.48, kTitleFont = 0.55;
const cv::Scalar kBlack(0, 0, 0), kGrid(225, 225, 225), kFrame(90, 90, 90);

// Tableau 10 (matplotlib's default cycle), BGR.
const cv::Scalar kPalette[] = {{180, 119, 31},  {14, 127, 255}, {44, 160, 44},   {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140},  {194, 119, 227}, {127, 127, 127},
                               {34, 189, 188},  {207, 190, 23}};

cv::Size text_size(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline);
}

void put_text(cv::Mat& canvas, const std::string& text, cv::Point at, double scale) {
  cv::putText(canvas, text, at, kFont, scale, kBlack, 1, cv::LINE_AA);
}

/// `text` turned 90 degrees counter-clockwise, centred vertically on `centre_y`, its left edge at `x`.
void put_vertical_text(cv::Mat& canvas, const std::string& text, int x, int centre_y, double scale) {
  const cv::Size size = text_size(text, scale);
  cv::Mat strip(size.height + 6, size.width + 4, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(strip, text, {2, size.height + 2}, kFont, scale, kBlack, 1, cv::LINE_AA);
  cv::Mat turned;
  cv::rotate(strip, turned, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int top = std::clamp(centre_y - turned.rows / 2, 0, std::max(0, canvas.rows - turned.rows));
  if (x + turned.cols > canvas.cols || top + turned.rows > canvas.rows) return;
  turned.copyTo(canvas(cv::Rect(x, top, turned.cols, turned.rows)));
}

double mapped(double value, Scale scale) {
  return scale == Scale::kLog1p ? std::log10(1.0 + std::max(0.0, value)) : value;
}

/// Ticks of one axis for the finite values of `lines` (x or y).
Ticks axis_ticks(const std::vector<Line>& lines, bool use_x, const Axis& axis, int max_ticks) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& line : lines) {
    for (const double v : use_x ? line.x : line.y) {
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
  }
  if (!std::isfinite(lo)) return nice_ticks(0, 1, max_ticks, axis.integer);
  if (axis.scale == Scale::kLog1p) return count_ticks(hi);
  return nice_ticks(lo, hi, max_ticks, axis.integer);
}

/// One panel: title, plot area `plot_width` x `plot_height`, axes, ticks, labels, legend on the right.
cv::Mat draw_panel(const Panel& panel, int plot_width, int plot_height) {
  for (const auto& line : panel.lines) {
    const size_t expected = line.steps ? line.y.size() + 1 : line.y.size();
    TORCH_CHECK_VALUE(line.x.size() == expected || (line.y.empty() && line.x.empty()), "plot line '",
                      line.label, "' has ", line.x.size(), " x and ", line.y.size(), " y values",
                      line.steps ? " (a step line needs one x more than y)" : "");
  }
  const Ticks xt = axis_ticks(panel.lines, true, panel.x, std::max(3, plot_width / 50));
  const Ticks yt = axis_ticks(panel.lines, false, panel.y, std::max(3, plot_height / 45));
  auto y_label_of = [&](double v) {
    return panel.y.scale == Scale::kLog1p ? tick_label(std::round(std::pow(10.0, v) - 1.0), 0)
                                          : tick_label(v, yt.decimals);
  };
  int y_tick_width = 0;
  for (const double v : yt.values)
    y_tick_width = std::max(y_tick_width, text_size(y_label_of(v), kTickFont).width);
  int legend_width = 0;
  for (const auto& line : panel.lines) {
    if (!line.label.empty())
      legend_width = std::max(legend_width, 34 + text_size(line.label, kLabelFont).width);
  }
  const int label_height = text_size("Ag", kLabelFont).height;
  const int left = 12 + label_height + 8 + y_tick_width + 8, top = 34;
  const int right = left + plot_width, bottom = top + plot_height;
  const int width = right + (legend_width > 0 ? legend_width + 24 : 16), height = bottom + 52;
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));

  auto px = [&](double x) {
    return left + static_cast<int>(std::lround((x - xt.lo) / (xt.hi - xt.lo) * plot_width));
  };
  auto py = [&](double y) {
    return bottom -
           static_cast<int>(std::lround((mapped(y, panel.y.scale) - yt.lo) / (yt.hi - yt.lo) * plot_height));
  };
  // Grid and ticks; y tick values of a log1p axis are positions already.
  for (const double v : yt.values) {
    const int y = bottom - static_cast<int>(std::lround((v - yt.lo) / (yt.hi - yt.lo) * plot_height));
    cv::line(canvas, {left, y}, {right, y}, kGrid, 1);
    cv::line(canvas, {left - 4, y}, {left, y}, kFrame, 1);
    const std::string text = y_label_of(v);
    put_text(canvas, text, {left - 7 - text_size(text, kTickFont).width, y + 5}, kTickFont);
  }
  for (const double v : xt.values) {
    const int x = px(v);
    cv::line(canvas, {x, top}, {x, bottom}, kGrid, 1);
    cv::line(canvas, {x, bottom}, {x, bottom + 4}, kFrame, 1);
    const std::string text = tick_label(v, xt.decimals);
    put_text(canvas, text, {x - text_size(text, kTickFont).width / 2, bottom + 18}, kTickFont);
  }
  cv::rectangle(canvas, {left, top}, {right, bottom}, kFrame, 1);
  put_text(canvas, panel.title, {left, top - 12}, kTitleFont);
  put_text(canvas, panel.x.label,
           {(left + right - text_size(panel.x.label, kLabelFont).width) / 2, bottom + 40}, kLabelFont);
  put_vertical_text(canvas, panel.y.label, 10, (top + bottom) / 2, kLabelFont);

  bool any = false;
  int legend_y = top + 12;
  for (size_t i = 0; i < panel.lines.size(); ++i) {
    const Line& line = panel.lines[i];
    const cv::Scalar colour = kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
    std::vector<cv::Point> run;
    auto end_run = [&] {
      if (run.size() > 1) cv::polylines(canvas, run, false, colour, 2, cv::LINE_AA);
      if (run.size() == 1 && !line.markers) cv::circle(canvas, run[0], 2, colour, cv::FILLED, cv::LINE_AA);
      run.clear();
    };
    for (size_t k = 0; k < line.y.size(); ++k) {
      if (!std::isfinite(line.y[k]) || !std::isfinite(line.x[k])) {
        end_run();
        continue;
      }
      any = true;
      const int y = py(line.y[k]);
      run.emplace_back(px(line.x[k]), y);
      if (line.steps) run.emplace_back(px(line.x[k + 1]), y);
      if (line.markers && !line.steps) cv::circle(canvas, run.back(), 3, colour, cv::FILLED, cv::LINE_AA);
    }
    end_run();
    if (line.label.empty()) continue;
    cv::line(canvas, {right + 14, legend_y - 4}, {right + 36, legend_y - 4}, colour, 2, cv::LINE_AA);
    put_text(canvas, line.label, {right + 42, legend_y}, kLabelFont);
    legend_y += label_height + 10;
  }
  if (!any) put_text(canvas, "no data", {(left + right) / 2 - 25, (top + bottom) / 2}, kLabelFont);
  return canvas;
}

}  // namespace
#endif  // PDEQ_WITH_OPENCV

Ticks nice_ticks(double lo, double hi, int max_ticks, bool integer) {
  TORCH_CHECK_VALUE(std::isfinite(lo) && std::isfinite(hi), "axis bounds must be finite, but got ", lo,
                    " and ", hi);
  TORCH_CHECK_VALUE(max_ticks >= 2, "max_ticks must be >= 2, but got ", max_ticks);
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double half = integer ? 1.0 : (lo == 0 ? 1.0 : 0.1 * std::abs(lo));
    lo -= half;
    hi += half;
  }
  // A margin of 4% each side keeps the extreme points off the frame.
  const double margin = 0.04 * (hi - lo);
  Ticks t;
  t.lo = lo - margin;
  t.hi = hi + margin;
  // The smallest 1-2-5 step that gives at most max_ticks multiples inside [t.lo, t.hi].
  const double raw = (t.hi - t.lo) / max_ticks;
  int exponent = static_cast<int>(std::floor(std::log10(raw)));
  if (integer) exponent = std::max(exponent, 0);
  const double mantissas[] = {1, 2, 5};
  for (int attempt = 0; attempt < 8; ++attempt, ++exponent) {
    for (const double m : mantissas) {
      const double step = m * std::pow(10.0, exponent);
      if (integer && step < 1) continue;
      const double first = std::ceil(t.lo / step - 1e-9), last = std::floor(t.hi / step + 1e-9);
      if (last - first + 1 > max_ticks) continue;
      t.step = step;
      t.values.clear();
      for (double k = first; k <= last; ++k) t.values.push_back(k * step);
      t.decimals = std::max(0, -exponent);
      return t;
    }
  }
  TORCH_INTERNAL_ASSERT(false, "no tick step found for [", lo, ", ", hi, "]");
}

Ticks count_ticks(double max_count) {
  Ticks t;
  const double top = std::pow(10.0, std::ceil(std::log10(std::max(10.0, max_count))));
  t.lo = 0;
  t.hi = std::log10(1.0 + top);
  t.values.push_back(0);
  for (double p = 1; p <= top; p *= 10) t.values.push_back(std::log10(1.0 + p));
  t.step = 0;  // not evenly spaced
  return t;
}

std::string tick_label(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", std::max(0, decimals), value);
  std::string s = text;
  // "-0", "-0.00": a rounding of zero.
  if (s.find_first_not_of("-0.") == std::string::npos && s[0] == '-') s.erase(0, 1);
  return s;
}

std::string render_png(const std::vector<Panel>& panels, int width, int height) {
  TORCH_CHECK_VALUE(!panels.empty(), "a figure needs at least one panel");
#ifndef PDEQ_WITH_OPENCV
  (void)width;
  (void)height;
  compat::refuse_without_opencv("Drawing a figure (" + panels.front().title + ")");
#else
  std::vector<cv::Mat> images;
  int rows = 0;
  for (const auto& panel : panels) {
    images.push_back(draw_panel(panel, width, height));
    rows = std::max(rows, images.back().rows);
  }
  for (auto& image : images) {
    if (image.rows < rows)
      cv::copyMakeBorder(image, image, 0, rows - image.rows, 0, 0, cv::BORDER_CONSTANT, {255, 255, 255});
  }
  cv::Mat canvas;
  cv::hconcat(images, canvas);
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", canvas, encoded)) throw std::runtime_error("PNG encoding failed");
  return std::string(encoded.begin(), encoded.end());
#endif
}

std::string encode_rgb_png(const std::vector<uint8_t>& rgb, int width, int height) {
  TORCH_CHECK_VALUE(width > 0 && height > 0 && rgb.size() == static_cast<size_t>(width) * height * 3,
                    "encode_rgb_png needs width x height x 3 bytes, but got ", rgb.size(), " for ", width,
                    "x", height);
#ifndef PDEQ_WITH_OPENCV
  compat::refuse_without_opencv("Writing a PNG picture");
#else
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const uint8_t* px = rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(px[2], px[1], px[0]);  // OpenCV writes BGR
    }
  }
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", image, encoded)) throw std::runtime_error("PNG encoding failed");
  return std::string(encoded.begin(), encoded.end());
#endif
}

}  // namespace pdeq::plot
