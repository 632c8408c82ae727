// The pdeq command line: every command with its options, parsed into the commands' option structs.
#pragma once

#include <pdeq/commands/analyze_segmentation.h>
#include <pdeq/commands/analyze_stability.h>
#include <pdeq/commands/analyze_tv.h>
#include <pdeq/commands/bench_data.h>
#include <pdeq/commands/bench_infer.h>
#include <pdeq/commands/bench_train.h>
#include <pdeq/commands/eval.h>
#include <pdeq/commands/export.h>
#include <pdeq/commands/params.h>
#include <pdeq/commands/report.h>
#include <pdeq/commands/sweep.h>
#include <pdeq/commands/train.h>

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace pdeq::cli {

using namespace pdeq::commands;

/// Declares every command and option on `app`; after app.parse, the selected command's pointer is set
/// (`*train_cmd` true) and its options struct is filled (call resolve() first).
struct Cli {
  explicit Cli(CLI::App& app);
  /// Values that need more than CLI11's parsing (enums, inverted flags, builder-style options).
  void resolve();

  bool as_json = false;
  TrainOptions train;
  EvalOptions eval;
  std::string residuals = "exact";
  ParamsOptions params;
  BenchTrainOptions bench_train;
  bool no_baseline = false;
  std::string bench_train_device, bench_data_device;
  BenchDataOptions bench_data;
  BenchInferOptions bench_infer;
  ExportCommandOptions export_options;
  std::string export_format = "pdeq", export_checkpoint = "best";
  int64_t calibration_batches = 8;
  AnalyzeStabilityOptions stability;
  AnalyzeTVOptions tv;
  AnalyzeSegmentationOptions segmentation;
  SweepOptions sweep;
  ReportCommandOptions report;

  CLI::App *train_cmd, *eval_cmd, *params_cmd, *bench_train_cmd, *bench_data_cmd, *bench_infer_cmd,
      *export_cmd, *stability_cmd, *tv_cmd, *segmentation_cmd, *sweep_cmd, *report_cmd, *schema_cmd;
};

/// The command lines of this program's own child processes (data-parallel ranks, sweep points), spelled with
/// the options Cli declares: the one place, next to their declaration, that knows them.
std::vector<std::string> command_line(const TrainOptions& options);
std::vector<std::string> command_line(const BenchTrainOptions& options, bool as_json);

}  // namespace pdeq::cli
