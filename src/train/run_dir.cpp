#include <pdeq/train/run_dir.h>

#include <c10/util/Exception.h>

#include <unistd.h>
#include <fstream>
#include <sstream>

namespace pdeq::train {
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string csv_cell(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

void write_csv(const fs::path& path, const std::vector<nlohmann::json>& rows) {
  std::ostringstream out;
  if (!rows.empty()) {
    std::vector<std::string> columns;
    // "epoch" first, the rest in the (sorted) order nlohmann::json keeps its keys in.
    if (rows.front().contains("epoch")) columns.push_back("epoch");
    for (const auto& item : rows.front().items()) {
      if (item.key() != "epoch") columns.push_back(item.key());
    }
    for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
    out << "\n";
    for (const auto& row : rows) {
      for (size_t i = 0; i < columns.size(); ++i) {
        out << (i ? "," : "") << (row.contains(columns[i]) ? csv_cell(row.at(columns[i])) : "");
      }
      out << "\n";
    }
  }
  atomic_write_file(path, out.str());
}

}  // namespace

void atomic_write_file(const fs::path& path, const std::string& contents) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path temporary = path.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + temporary.string());
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) throw std::runtime_error("write failed for " + temporary.string() + " (disk full?)");
  }
  fs::rename(temporary, path);
}

RunDirectory::RunDirectory(fs::path root) : root_(std::move(root)) {}

RunDirectory RunDirectory::create(const fs::path& root, bool force) {
  RunDirectory run(root);
  if (run.finished() && !force) {
    throw std::runtime_error("run folder " + root.string() +
                             " holds a finished run (summary.json); pass --force to overwrite it or choose "
                             "another --out");
  }
  if (run.has_checkpoint() && !force) {
    throw std::runtime_error("run folder " + root.string() +
                             " holds an unfinished run; continue it with --resume " + root.string() +
                             " or pass --force to start over");
  }
  if (force) {
    for (const fs::path& stale : {run.summary_path(), run.metrics_path(), run.metrics_csv_path(),
                                  run.curves_path(), run.config_path()}) {
      fs::remove(stale);
    }
    fs::remove_all(root / "checkpoints");
  }
  fs::create_directories(root / "checkpoints");
  return run;
}

RunDirectory RunDirectory::open(const fs::path& root) {
  RunDirectory run(root);
  if (!fs::exists(run.config_path())) {
    throw std::runtime_error("no run at " + root.string() + " (expected " + run.config_path().string() + ")");
  }
  return run;
}

bool RunDirectory::finished() const { return fs::exists(summary_path()); }
bool RunDirectory::has_checkpoint() const { return fs::exists(last_checkpoint()); }

void RunDirectory::write_json(const fs::path& path, const nlohmann::json& value) const {
  atomic_write_file(path, value.dump(2) + "\n");
}

nlohmann::json RunDirectory::read_json(const fs::path& path) const {
  try {
    return nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

std::vector<nlohmann::json> RunDirectory::read_metrics() const {
  std::vector<nlohmann::json> rows;
  if (!fs::exists(metrics_path())) return rows;
  std::istringstream lines(read_text(metrics_path()));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

void RunDirectory::append_metrics(const nlohmann::json& row) const {
  auto rows = read_metrics();
  rows.push_back(row);
  std::ostringstream jsonl;
  for (const auto& r : rows) jsonl << r.dump() << "\n";
  atomic_write_file(metrics_path(), jsonl.str());
  write_csv(metrics_csv_path(), rows);
}

void RunDirectory::write_metrics(const std::vector<nlohmann::json>& rows) const {
  std::ostringstream jsonl;
  for (const auto& r : rows) jsonl << r.dump() << "\n";
  atomic_write_file(metrics_path(), jsonl.str());
  write_csv(metrics_csv_path(), rows);
}

void RunDirectory::truncate_metrics(int64_t epoch_limit) const {
  auto rows = read_metrics();
  std::vector<nlohmann::json> kept;
  for (const auto& row : rows) {
    if (row.value("epoch", int64_t{0}) < epoch_limit) kept.push_back(row);
  }
  if (kept.size() == rows.size()) return;
  std::ostringstream jsonl;
  for (const auto& r : kept) jsonl << r.dump() << "\n";
  atomic_write_file(metrics_path(), jsonl.str());
  write_csv(metrics_csv_path(), kept);
}

}  // namespace pdeq::train
