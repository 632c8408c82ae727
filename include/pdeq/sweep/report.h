// Result reports over run folders: one row per configuration (runs that differ only in their seed), mean and
// std of test accuracy over seeds, validation accuracy, params and training time; PNG plots; best trial.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pdeq::sweep {

/// One run folder: its resolved config (flattened "a.b" -> value) and summary.json.
struct RunRecord {
  std::filesystem::path dir;
  std::map<std::string, nlohmann::json> config;
  nlohmann::json summary;  ///< null when the run has not finished
  bool finished() const { return !summary.is_null(); }
};

/// The run folders matching `patterns` (shell globs, e.g. "runs/sweep1/*"), sorted; folders without a
/// config.json (logs/, points/, report/) are skipped, unfinished runs kept with a null summary.
std::vector<RunRecord> collect_runs(const std::vector<std::string>& patterns);

/// The same for explicit folders (no globbing: point names may hold '[' or '*'); missing ones are skipped.
std::vector<RunRecord> read_runs(const std::vector<std::filesystem::path>& dirs);

struct ReportOptions {
  /// Keys that define a configuration for selection: the best row by mean validation accuracy is picked per
  /// distinct value of these (empty: one best overall). A sweep's search passes its grid keys.
  std::vector<std::string> best_per;
};

/// The report rows: the keys whose values differ between finished runs (seed and threads excepted) and, per
/// distinct value of them, seeds, test_accuracy_mean/std (fraction; std is the sample std, 0 for one seed),
/// best_val_accuracy_mean (null without a validation split), params, wall_seconds_mean, runs. Rows are
/// sorted by the varied keys (numbers numerically). A finished run whose summary.json lacks a figure the rows
/// are made of, or holds a malformed one (test_accuracy or test_accuracies not fractions in [0, 1],
/// best_val_accuracy neither a fraction nor null, wall_seconds or wall_seconds_per_run not seconds >= 0,
/// params not a count), throws std::runtime_error naming the file and the key: a missing value never counts
/// as 0.
nlohmann::json report_rows(const std::vector<RunRecord>& runs);

/// Writes into `out`: results.csv, results.md, best.json and best/<configuration>.json (the config of the
/// selected row's first run) when validation accuracies exist, acc_vs_bits.png when bits vary, and
/// curves_val_acc.png / curves_train_loss.png (first run of each row, at most the 12 best rows).
/// Returns {rows, varied_keys, best, unfinished}.
nlohmann::json write_report(const std::vector<RunRecord>& runs, const std::filesystem::path& out,
                            const ReportOptions& options = {});

/// The results.md table of `report` (write_report's result) as Markdown.
std::string markdown_table(const nlohmann::json& report);

}  // namespace pdeq::sweep
