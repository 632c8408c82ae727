#include <pdeq/run/run_dir.h>

#include <pdeq/run/crash_point.h>

#include "read_file.h"

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

namespace pdeq::run {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTemporaryMarker = ".tmp.";

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
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

std::string detail::read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void atomic_write_file(const fs::path& path, const std::string& contents) {
  const fs::path folder = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::create_directories(folder);
  const fs::path temporary = path.string() + kTemporaryMarker + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + temporary.string() + ": " + std::strerror(errno));
  // Written in two halves only so that the crash tests can kill a writer in the middle of a file.
  const size_t half = contents.size() / 2;
  bool written = write_all(fd, contents.data(), half);
  if (written) {
    crash_point("write");
    written = write_all(fd, contents.data() + half, contents.size() - half);
  }
  // The data must be on disk before the rename makes it the file: otherwise a power cut after the rename
  // can leave an empty or partial file under the final name.
  const bool synced = written && ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!synced) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw std::runtime_error("write failed for " + temporary.string() + ": " + std::strerror(error));
  }
  crash_point("rename");
  fs::rename(temporary, path);
  // The rename itself is durable once the folder's entry is.
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

int remove_stale_temporaries(const fs::path& folder) {
  int removed = 0;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const auto marker = name.rfind(kTemporaryMarker);
    if (marker == std::string::npos || !it->is_regular_file(error)) continue;
    const std::string pid_text = name.substr(marker + std::strlen(kTemporaryMarker));
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    // Only a dead writer's file: a live process (this one, or another pdeq writing here) may still rename it.
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid > 0 && pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      if (fs::remove(it->path(), ignored)) ++removed;
    }
  }
  return removed;
}

RunDirectory::RunDirectory(fs::path root) : root_(std::move(root)) {}

void RunDirectory::check_creatable(const fs::path& root, bool force) {
  if (force) return;
  const RunDirectory run(root);
  TORCH_CHECK_VALUE(
      !run.finished(), "run folder ", root.string(),
      " holds a finished run (summary.json); pass --force to overwrite it or choose another --out");
  TORCH_CHECK_VALUE(!run.has_checkpoint(), "run folder ", root.string(),
                    " holds an unfinished run; continue it with --resume ", root.string(),
                    " or pass --force to start over");
}

RunDirectory RunDirectory::create(const fs::path& root, bool force) {
  check_creatable(root, force);
  RunDirectory run(root);
  if (force) {
    for (const fs::path& stale : {run.summary_path(), run.metrics_path(), run.metrics_csv_path(),
                                  run.curves_path(), run.config_path()}) {
      fs::remove(stale);
    }
    fs::remove_all(root / "checkpoints");
    fs::remove_all(run.tensorboard_path());
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
    return nlohmann::json::parse(detail::read_file(path));
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

std::vector<nlohmann::json> RunDirectory::read_metrics() const {
  std::vector<nlohmann::json> rows;
  if (!fs::exists(metrics_path())) return rows;
  std::istringstream lines(detail::read_file(metrics_path()));
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.empty()) continue;
    auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object()) {
      throw std::runtime_error(metrics_path().string() + ": line " + std::to_string(number) +
                               ": expected one JSON object per line (a metrics row)");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void RunDirectory::write_metrics(const std::vector<nlohmann::json>& rows) const {
  std::ostringstream jsonl;
  for (const auto& r : rows) jsonl << r.dump() << "\n";
  atomic_write_file(metrics_path(), jsonl.str());
  write_csv(metrics_csv_path(), rows);
}

void RunDirectory::truncate_metrics(int64_t epoch_limit) const {
  std::vector<nlohmann::json> kept;
  for (const auto& row : read_metrics()) {
    // A row without an integer epoch (never written by pdeq) counts as epoch 0, as before.
    const auto epoch = row.find("epoch");
    const int64_t e = epoch != row.end() && epoch->is_number_integer() ? epoch->get<int64_t>() : 0;
    if (e < epoch_limit) kept.push_back(row);
  }
  // Always rewritten, the CSV too: a writer killed between metrics.jsonl and metrics.csv left them unequal.
  write_metrics(kept);
}

int RunDirectory::remove_stale_temporaries() const {
  return run::remove_stale_temporaries(root_) + run::remove_stale_temporaries(root_ / "checkpoints");
}

}  // namespace pdeq::run
