// How far a running sweep point has got, read from its run folder and log while its `pdeq train` child runs:
// cheap (config.json, the last line of metrics.jsonl, the last 16 KiB of the log) and robust to files
// being written at the same moment (incomplete last lines are ignored).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace pdeq::sweep {

struct PointProgress {
  int64_t epochs = 0;  ///< train.epochs (config.json, else the log's "epoch E/N"); 0: not known yet
  int64_t epoch = 0;   ///< epochs finished (of the current seed)
  int64_t step = 0;    ///< steps done in the running epoch, of `steps` (0 and 0: not known)
  int64_t steps = 0;
  int64_t seeds = 1;  ///< train.seeds
  int64_t seed = 1;   ///< the seed being trained, 1-based

  bool known() const { return epochs > 0; }
  /// Fraction of the whole point (all seeds) done, in [0, 1]; 0 while not known.
  double fraction() const;
};

/// Reads the progress of the point running into `run_dir` with its output appended to `log`:
/// - train.epochs and train.seeds from config.json;
/// - with train.seeds > 1, the seed is the first seed<i>/ without summary.json, read from there;
/// - the finished epochs from the last complete row of metrics.jsonl (written with each checkpoint);
/// - fresher, from the log's last complete progress line of the current seed: `epoch E/N step s/S` (in
///   epoch E) or `epoch E/N:` (epoch E finished), as the trainer logs them when its output is not a terminal.
/// Missing or unparsable files leave their fields unknown; never throws for them.
PointProgress read_point_progress(const std::filesystem::path& run_dir, const std::filesystem::path& log);

/// "epoch 13/200, 6%" (the epoch running), "seed 2/3, epoch 5/10, 45%", or "starting" while unknown; with
/// `eta_seconds`, ", ETA 1:02:03" is appended.
std::string describe(const PointProgress& progress, std::optional<double> eta_seconds = std::nullopt);

}  // namespace pdeq::sweep
