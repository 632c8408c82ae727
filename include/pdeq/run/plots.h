// Figures of metrics rows as PNG, drawn by plot::render_png (one look for all of pdeq's figures): training
// curves, redrawn after every epoch, and line plots of any columns (sweep reports, stability analysis).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::run {

/// `rows` are metrics.jsonl rows (epoch, train_loss, val_loss, train_acc, val_acc): two panels, loss and
/// accuracy (in %) per epoch, train and val. Writes atomically.
void plot_training_curves(const std::vector<nlohmann::json>& rows, const std::filesystem::path& png);

/// Axis labels of plot_lines, with units.
struct LinePlotLabels {
  std::string title, x, y;
  bool integer_x = true;  ///< x takes integer values (epochs, layers, bits): integer ticks only
};

/// One panel, one line per (key, legend label) in `series`, `rows[i][x_key]` on the x axis (rows in x
/// order); rows missing a key leave that point out. Writes atomically.
void plot_lines(const std::vector<nlohmann::json>& rows, const std::string& x_key,
                const std::vector<std::pair<std::string, std::string>>& series, const LinePlotLabels& labels,
                const std::filesystem::path& png);

}  // namespace pdeq::run
