#include <pdeq/sweep/progress.h>

#include <pdeq/run/progress.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

namespace pdeq::sweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// The complete lines among the last `bytes` bytes of `path` (none when it cannot be read): a first line cut
/// by the window and a last line not yet ended by '\n' (being written) are left out.
std::vector<std::string> tail_lines(const fs::path& path, std::streamoff bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  if (size <= 0) return {};
  const std::streamoff start = std::max<std::streamoff>(0, size - bytes);
  std::string text(static_cast<size_t>(size - start), '\0');
  in.seekg(start);
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) return {};
  std::vector<std::string> lines;
  size_t begin = 0;
  if (start > 0) {
    begin = text.find('\n');
    if (begin == std::string::npos) return {};
    ++begin;
  }
  for (size_t end; (end = text.find('\n', begin)) != std::string::npos; begin = end + 1) {
    std::string line = text.substr(begin, end - begin);
    const auto cr = line.find_last_of('\r');  // progress bars redraw with '\r': keep what was drawn last
    if (cr != std::string::npos) line = line.substr(cr + 1);
    lines.push_back(std::move(line));
  }
  return lines;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return json();
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

int64_t integer(const json& object, const char* section, const char* key) {
  if (!object.is_object() || !object.contains(section) || !object[section].is_object()) return 0;
  const json& value = object[section].value(key, json());
  return value.is_number_integer() ? value.get<int64_t>() : 0;
}

}  // namespace

double PointProgress::fraction() const {
  if (!known()) return 0.0;
  double in_seed = static_cast<double>(std::min(epoch, epochs));
  if (steps > 0 && epoch < epochs) in_seed += static_cast<double>(std::min(step, steps)) / steps;
  const double total = (static_cast<double>(seed - 1) + in_seed / static_cast<double>(epochs)) /
                       static_cast<double>(std::max<int64_t>(1, seeds));
  return std::clamp(total, 0.0, 1.0);
}

PointProgress read_point_progress(const fs::path& run_dir, const fs::path& log) {
  PointProgress progress;
  const json config = read_json(run_dir / "config.json");
  progress.epochs = integer(config, "train", "epochs");
  progress.seeds = std::max<int64_t>(1, integer(config, "train", "seeds"));
  fs::path metrics = run_dir / "metrics.jsonl";
  if (progress.seeds > 1) {
    std::error_code error;
    int64_t i = 0;
    while (i + 1 < progress.seeds &&
           fs::exists(run_dir / ("seed" + std::to_string(i)) / "summary.json", error))
      ++i;
    progress.seed = i + 1;
    metrics = run_dir / ("seed" + std::to_string(i)) / "metrics.jsonl";
  }

  const auto rows = tail_lines(metrics, 4096);
  for (auto row = rows.rbegin(); row != rows.rend(); ++row) {
    const json last = json::parse(*row, nullptr, /*allow_exceptions=*/false);
    if (last.is_object() && last.value("epoch", json()).is_number_integer()) {
      progress.epoch = last["epoch"].get<int64_t>();
      break;
    }
  }

  // The last progress line of the trainer; a "seed i/n" line above it ends the search (an earlier seed's).
  static const std::regex epoch_line(R"(\bepoch (\d+)/(\d+)(?: step (\d+)/(\d+)|:))");
  static const std::regex seed_line(R"(\bseed (\d+)/(\d+)\b)");
  const auto lines = tail_lines(log, 16384);
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    std::smatch match;
    if (std::regex_search(*line, match, epoch_line)) {
      const int64_t e = std::stoll(match[1].str()), n = std::stoll(match[2].str());
      if (progress.epochs == 0) progress.epochs = n;
      if (n != progress.epochs) break;  // not this run's
      if (match[3].matched) {
        progress.epoch = std::max(progress.epoch, e - 1);
        if (progress.epoch == e - 1) {
          progress.step = std::stoll(match[3].str());
          progress.steps = std::stoll(match[4].str());
        }
      } else {
        progress.epoch = std::max(progress.epoch, e);
      }
      break;
    }
    if (std::regex_search(*line, match, seed_line)) break;
  }
  if (progress.epochs > 0) progress.epoch = std::min(progress.epoch, progress.epochs);
  return progress;
}

std::string describe(const PointProgress& progress, std::optional<double> eta_seconds) {
  if (!progress.known()) return "starting";
  std::ostringstream text;
  if (progress.seeds > 1) text << "seed " << progress.seed << "/" << progress.seeds << ", ";
  text << "epoch " << std::min(progress.epoch + 1, progress.epochs) << "/" << progress.epochs << ", "
       << static_cast<int>(100 * progress.fraction()) << "%";
  if (eta_seconds) text << ", ETA " << run::format_duration(*eta_seconds);
  return text.str();
}

}  // namespace pdeq::sweep
