// Training curves as a PNG, redrawn after every epoch: loss and accuracy per epoch, train vs val.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

namespace pdeq::train {

/// `rows` are metrics.jsonl rows (epoch, train_loss, val_loss, train_acc, val_acc). Writes atomically.
void plot_training_curves(const std::vector<nlohmann::json>& rows, const std::filesystem::path& png);

}  // namespace pdeq::train
