// The run folder: resolved config, per-epoch metrics, checkpoints and the final summary, written so that an
// interrupted run loses nothing and a finished one is never overwritten by accident.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace pdeq::run {

/// Writes `contents` to `path` so that a crash at any moment leaves either the old file or the new one: a
/// temporary "<path>.tmp.<pid>" in the same folder, fsync, rename over `path`, fsync of the folder.
void atomic_write_file(const std::filesystem::path& path, const std::string& contents);

/// Deletes "<name>.tmp.<pid>" files in `folder` whose writer process is gone (a writer killed before its
/// rename); files of live processes are left alone. Returns how many were removed. Readers never look at
/// temporaries, so stale ones are only litter.
int remove_stale_temporaries(const std::filesystem::path& folder);

/// Layout:
///   config.json  metrics.jsonl  metrics.csv  summary.json  checkpoints/{last,best}.pt  train_curves.png
///   tensorboard/events.out.tfevents.*
class RunDirectory {
 public:
  explicit RunDirectory(std::filesystem::path root);

  /// A fresh run: refuses a folder holding a finished run (summary.json) or an unfinished one (a checkpoint)
  /// unless `force`, which clears what pdeq wrote there.
  static RunDirectory create(const std::filesystem::path& root, bool force);
  /// The refusal of create without creating anything: c10::ValueError (a usage error, exit code 2) naming
  /// the folder and what to do instead, so that a command can check before it reads data.
  static void check_creatable(const std::filesystem::path& root, bool force);
  /// An existing run to continue or evaluate; throws if `root` has no config.json.
  static RunDirectory open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path config_path() const { return root_ / "config.json"; }
  std::filesystem::path metrics_path() const { return root_ / "metrics.jsonl"; }
  std::filesystem::path metrics_csv_path() const { return root_ / "metrics.csv"; }
  std::filesystem::path summary_path() const { return root_ / "summary.json"; }
  std::filesystem::path last_checkpoint() const { return root_ / "checkpoints" / "last.pt"; }
  std::filesystem::path best_checkpoint() const { return root_ / "checkpoints" / "best.pt"; }
  std::filesystem::path curves_path() const { return root_ / "train_curves.png"; }
  /// TensorBoard event files (tensorboard.h).
  std::filesystem::path tensorboard_path() const { return root_ / "tensorboard"; }

  bool finished() const;
  bool has_checkpoint() const;

  void write_json(const std::filesystem::path& path, const nlohmann::json& value) const;
  nlohmann::json read_json(const std::filesystem::path& path) const;

  /// Appends one epoch to metrics.jsonl and metrics.csv (header from the first row's keys).

  /// Replaces metrics.jsonl and metrics.csv with `rows` (no re-reading: trainers keep the rows in memory).
  void write_metrics(const std::vector<nlohmann::json>& rows) const;
  /// Rows of metrics.jsonl with epoch < `epoch_limit` are kept, later ones dropped, and metrics.csv rewritten
  /// to match (resume after a crash that happened between writing metrics and the checkpoint).
  void truncate_metrics(int64_t epoch_limit) const;
  std::vector<nlohmann::json> read_metrics() const;
  /// remove_stale_temporaries in the run folder and checkpoints/; the trainer calls it before it writes.
  int remove_stale_temporaries() const;

 private:
  std::filesystem::path root_;
};

}  // namespace pdeq::run
