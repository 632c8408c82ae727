// PNG plots drawn with OpenCV. PDEQ_WITH_OPENCV is defined for this source only when the build has OpenCV
// (CMakeLists.txt); without it the plots are skipped with one warning naming the option.
#include <pdeq/run/plots.h>

#include <pdeq/compat/features.h>
#include <pdeq/run/run_dir.h>

#include <spdlog/spdlog.h>

#ifdef PDEQ_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>

namespace pdeq::run {

#ifdef PDEQ_WITH_OPENCV

namespace {

struct Series {
  std::string key, label;
  cv::Scalar colour;  // BGR
};

// Draws one panel (axes, ticks, legend, one polyline per series) into `canvas` inside `area`.
void draw_panel(cv::Mat& canvas, const cv::Rect& area, const std::string& title,
                const std::vector<nlohmann::json>& rows, const std::vector<Series>& series,
                const std::string& x_key = "epoch") {
  const cv::Scalar black(0, 0, 0), grey(200, 200, 200);
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& row : rows) {
    for (const auto& s : series) {
      if (row.contains(s.key) && row[s.key].is_number()) {
        lo = std::min(lo, row[s.key].get<double>());
        hi = std::max(hi, row[s.key].get<double>());
      }
    }
  }
  if (!std::isfinite(lo)) return;
  if (hi - lo < 1e-9) hi = lo + 1.0;
  const double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  const int left = area.x + 60, right = area.x + area.width - 15, top = area.y + 30,
            bottom = area.y + area.height - 35;
  const double first = rows.front()[x_key].get<double>(), last = rows.back()[x_key].get<double>();
  auto to_pixel = [&](double epoch, double value) {
    const double fx = last > first ? (epoch - first) / (last - first) : 0.5;
    return cv::Point(left + static_cast<int>(fx * (right - left)),
                     bottom - static_cast<int>((value - lo) / (hi - lo) * (bottom - top)));
  };
  for (int i = 0; i <= 4; ++i) {
    const double value = lo + (hi - lo) * i / 4.0;
    const int y = bottom - (bottom - top) * i / 4;
    cv::line(canvas, {left, y}, {right, y}, grey, 1);
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", value);
    cv::putText(canvas, text, {area.x + 5, y + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.4, black, 1, cv::LINE_AA);
  }
  cv::rectangle(canvas, {left, top}, {right, bottom}, black, 1);
  cv::putText(canvas, title, {left, area.y + 20}, cv::FONT_HERSHEY_SIMPLEX, 0.55, black, 1, cv::LINE_AA);
  for (const double epoch : {first, last}) {
    const cv::Point at = to_pixel(epoch, lo);
    cv::putText(canvas, std::to_string(static_cast<int64_t>(epoch)), {at.x - 4, bottom + 15},
                cv::FONT_HERSHEY_SIMPLEX, 0.4, black, 1, cv::LINE_AA);
  }
  cv::putText(canvas, x_key, {(left + right) / 2 - 20, bottom + 28}, cv::FONT_HERSHEY_SIMPLEX, 0.45, black, 1,
              cv::LINE_AA);
  int legend_y = top + 16;
  for (const auto& s : series) {
    std::vector<cv::Point> points;
    for (const auto& row : rows) {
      if (row.contains(s.key) && row[s.key].is_number()) {
        points.push_back(to_pixel(row[x_key].get<double>(), row[s.key].get<double>()));
      }
    }
    if (points.empty()) continue;
    cv::polylines(canvas, points, false, s.colour, 2, cv::LINE_AA);
    for (const auto& p : points) cv::circle(canvas, p, 3, s.colour, cv::FILLED, cv::LINE_AA);
    const int legend_x = right - 10 - 8 * static_cast<int>(std::max<size_t>(s.label.size(), 8));
    cv::line(canvas, {legend_x - 25, legend_y - 4}, {legend_x - 5, legend_y - 4}, s.colour, 2);
    cv::putText(canvas, s.label, {legend_x, legend_y}, cv::FONT_HERSHEY_SIMPLEX, 0.45, black, 1, cv::LINE_AA);
    legend_y += 18;
  }
}

}  // namespace

void plot_lines(const std::vector<nlohmann::json>& rows, const std::string& x_key,
                const std::vector<std::pair<std::string, std::string>>& series, const std::string& title,
                const std::filesystem::path& png) {
  if (rows.empty()) return;
  // Tableau-like palette (BGR), cycled.
  const cv::Scalar palette[] = {{180, 119, 31},  {14, 127, 255}, {44, 160, 44},   {40, 39, 214},
                                {189, 103, 148}, {75, 86, 140},  {194, 119, 227}, {127, 127, 127}};
  std::vector<Series> lines;
  for (size_t i = 0; i < series.size(); ++i) {
    lines.push_back({series[i].first, series[i].second, palette[i % (sizeof palette / sizeof palette[0])]});
  }
  cv::Mat canvas(420, 760, CV_8UC3, cv::Scalar(255, 255, 255));
  draw_panel(canvas, {0, 0, 760, 420}, title, rows, lines, x_key);
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", canvas, encoded)) throw std::runtime_error("PNG encoding failed");
  atomic_write_file(png, std::string(encoded.begin(), encoded.end()));
}

void plot_training_curves(const std::vector<nlohmann::json>& rows, const std::filesystem::path& png) {
  if (rows.empty()) return;
  cv::Mat canvas(360, 960, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar blue(200, 90, 30), orange(30, 130, 240);
  draw_panel(canvas, {0, 0, 480, 360}, "loss", rows,
             {{"train_loss", "train", blue}, {"val_loss", "val", orange}});
  draw_panel(canvas, {480, 0, 480, 360}, "accuracy", rows,
             {{"train_acc", "train", blue}, {"val_acc", "val", orange}});
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", canvas, encoded)) throw std::runtime_error("PNG encoding failed");
  atomic_write_file(png, std::string(encoded.begin(), encoded.end()));
}

#else  // !PDEQ_WITH_OPENCV

namespace {
/// Plots are a by-product of training, sweeps and analyses: without OpenCV those still run, and say once
/// that their PNGs are missing and why.
void skip_plot(const std::filesystem::path& png) {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  spdlog::warn("{}; they are not drawn",
               compat::without_opencv("Drawing " + png.filename().string() + " and the other PNG plots"));
}
}  // namespace

void plot_lines(const std::vector<nlohmann::json>&, const std::string&,
                const std::vector<std::pair<std::string, std::string>>&, const std::string&,
                const std::filesystem::path& png) {
  skip_plot(png);
}

void plot_training_curves(const std::vector<nlohmann::json>&, const std::filesystem::path& png) {
  skip_plot(png);
}

#endif  // PDEQ_WITH_OPENCV

}  // namespace pdeq::run
