// Line plots as PNG, one look for every figure pdeq draws (training curves, stability, TV histograms, sweep
// reports): axis ticks at 1-2-5 steps, labelled axes, the legend beside the plot area where it covers no
// curve. Drawn with OpenCV, which every build already links: Debian's plotting libraries are either Python
// (matplotlib), a separate program driven through pipes (gnuplot) or a toolkit pdeq would add for a few
// figures (PLplot); OpenCV's lines and anti-aliased text give the same readable figure with no new
// dependency.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pdeq::plot {

/// Tick positions of one axis: the axis range [lo, hi] (the data range with a margin) and the multiples of
/// `step`, 1, 2 or 5 times a power of ten, inside it. `decimals` digits after the point tell every tick
/// apart.
struct Ticks {
  double lo = 0, hi = 1;
  double step = 1;
  std::vector<double> values;
  int decimals = 0;
};

/// Ticks for data from `lo` to `hi` (either order): the smallest 1-2-5 step giving at most `max_ticks` (>= 2)
/// ticks, so between about max_ticks / 2.5 and max_ticks of them. `integer`: steps of at least 1 (epochs,
/// layers, bits). A constant series (lo == hi) gets a range around its value (+-1 for integers, else +-10% of
/// it, +-1 at 0). Throws c10::ValueError for non-finite bounds or max_ticks < 2.
Ticks nice_ticks(double lo, double hi, int max_ticks = 8, bool integer = false);

/// Ticks of a count axis drawn as log10(1 + count): 0 and the powers of ten up to `max_count`, at positions
/// log10(1 + tick); lo = 0, hi = log10(1 + the next power of ten at or above max_count).
Ticks count_ticks(double max_count);

/// `value` with the axis's decimals ("0" for -0.0): "0.25", "-1.5", "200".
std::string tick_label(double value, int decimals);

/// How an axis maps values.
enum class Scale {
  kLinear,
  kLog1p,  ///< counts: log10(1 + value), ticks from count_ticks
};

struct Axis {
  std::string label;     ///< with the unit, e.g. "accuracy (%)"
  bool integer = false;  ///< integer ticks only (epochs, layers, bits)
  Scale scale = Scale::kLinear;
};

struct Line {
  std::string label;
  std::vector<double> x, y;  ///< same length; a non-finite y leaves a gap
  bool steps = false;        ///< a histogram: y[i] holds from x[i] to x[i + 1] (x has one more value than y)
  bool markers = true;       ///< a dot at each point (off for dense lines)
};

struct Panel {
  std::string title;
  Axis x, y;
  std::vector<Line> lines;
};

/// The panels side by side, each `width` x `height` pixels of plot (axes, labels and legend come on top of
/// that), encoded as PNG. Lines cycle through one colour palette; a panel with no finite point shows "no
/// data". Throws std::runtime_error if encoding fails, c10::ValueError for mismatched x/y lengths.
std::string render_png(const std::vector<Panel>& panels, int width = 480, int height = 300);

/// `rgb` (height x width x 3 bytes, row by row) encoded as PNG, for pictures made of pixels rather than
/// plots (segmentation grids). Throws std::runtime_error without OpenCV or if encoding fails.
std::string encode_rgb_png(const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace pdeq::plot
