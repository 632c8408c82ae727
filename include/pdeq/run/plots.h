// Training curves as a PNG, redrawn after every epoch: loss and accuracy per epoch, train vs val.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::run {

/// `rows` are metrics.jsonl rows (epoch, train_loss, val_loss, train_acc, val_acc). Writes atomically.
void plot_training_curves(const std::vector<nlohmann::json>& rows, const std::filesystem::path& png);

/// One panel, one line per (key, label) in `series`, `rows[i][x_key]` on the x axis (rows in x order); rows
/// missing a key leave that point out. Writes atomically.
void plot_lines(const std::vector<nlohmann::json>& rows, const std::string& x_key,
                const std::vector<std::pair<std::string, std::string>>& series, const std::string& title,
                const std::filesystem::path& png);

}  // namespace pdeq::run
