#include <pdeq/run/plots.h>

#include <pdeq/compat/features.h>
#include <pdeq/plot/figure.h>
#include <pdeq/run/run_dir.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <string>

namespace pdeq::run {
namespace {

// Beyond this many points a dot per point hides the line.
constexpr size_t kMaxMarkers = 40;

/// Plots are a by-product of training, sweeps and analyses: a build without OpenCV still runs those, and
/// says once that their PNGs are missing and why. true: draw.
bool can_draw(const std::filesystem::path& png) {
  if (compat::opencv_built()) return true;
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true))
    spdlog::warn("{}; they are not drawn",
                 compat::without_opencv("Drawing " + png.filename().string() + " and the other PNG plots"));
  return false;
}

/// The line of `key` against `x_key`, values times `scale`; rows without a number for `key` are left out and
/// the line joins the points around them (validation every few epochs is one line, not scattered dots).
plot::Line line_of(const std::vector<nlohmann::json>& rows, const std::string& x_key, const std::string& key,
                   const std::string& label, double scale = 1.0) {
  plot::Line line;
  line.label = label;
  for (const auto& row : rows) {
    if (!row.contains(x_key) || !row[x_key].is_number() || !row.contains(key) || !row[key].is_number())
      continue;
    line.x.push_back(row[x_key].get<double>());
    line.y.push_back(scale * row[key].get<double>());
  }
  line.markers = line.x.size() <= kMaxMarkers;
  return line;
}

}  // namespace

void plot_lines(const std::vector<nlohmann::json>& rows, const std::string& x_key,
                const std::vector<std::pair<std::string, std::string>>& series, const LinePlotLabels& labels,
                const std::filesystem::path& png) {
  if (rows.empty()) return;
  plot::Panel panel;
  panel.title = labels.title;
  panel.x = {labels.x, labels.integer_x};
  panel.y = {labels.y};
  for (const auto& [key, label] : series) panel.lines.push_back(line_of(rows, x_key, key, label));
  if (can_draw(png)) atomic_write_file(png, plot::render_png({panel}, 560, 320));
}

void plot_training_curves(const std::vector<nlohmann::json>& rows, const std::filesystem::path& png) {
  if (rows.empty()) return;
  plot::Panel loss{"loss", {"epoch", true}, {"loss (mean per sample)"}, {}};
  loss.lines = {line_of(rows, "epoch", "train_loss", "train"), line_of(rows, "epoch", "val_loss", "val")};
  plot::Panel accuracy{"accuracy", {"epoch", true}, {"accuracy (%)"}, {}};
  accuracy.lines = {line_of(rows, "epoch", "train_acc", "train", 100.0),
                    line_of(rows, "epoch", "val_acc", "val", 100.0)};
  if (can_draw(png)) atomic_write_file(png, plot::render_png({loss, accuracy}, 400, 280));
}

}  // namespace pdeq::run
