#include <pdeq/commands/analyze_stability.h>

#include <pdeq/analysis/layer_error.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/plots.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/runtime.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace pdeq::commands {
namespace fs = std::filesystem;

namespace {

struct RunErrors {
  std::string label;
  nlohmann::json info;
  std::vector<std::string> names;
  std::vector<double> rms;
};

/// Activation bits the checkpoint was trained to (all activation quantizers share them).
int64_t trained_act_bits(const quant::QuantizerSet& quantizers) {
  int64_t bits = quant::kFullPrecisionBits;
  for (const auto& [name, q] : quantizers.activations()) bits = std::min(bits, q->bits());
  return bits;
}

RunErrors analyze_run(const fs::path& dir, const std::string& label, const AnalyzeStabilityOptions& options) {
  run::RunDirectory run = run::RunDirectory::open(dir);
  const config::Config config = experiment::read_run_config(run);
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  const auto task = experiment::make_task(config, experiment::run_device(config, options.device));
  const fs::path checkpoint = options.checkpoint == "best" ? run.best_checkpoint() : run.last_checkpoint();
  const run::TrainingState state = run::load_checkpoint(checkpoint, task->module(), nullptr);
  quant::QuantizerSet quantizers(task->module());
  const int64_t bits = options.act_bits.value_or(trained_act_bits(quantizers));
  TORCH_CHECK_VALUE(bits < quant::kFullPrecisionBits, "run ", dir.string(),
                    " has full-precision activations; pass --abits to choose the bits of the quantized pass");
  const train::EvalSplit split = options.split == "val" ? train::EvalSplit::kVal : train::EvalSplit::kTest;
  TORCH_CHECK_VALUE(task->has_split(split), "run ", dir.string(), " has no ", options.split, " split");

  analysis::LayerErrorAccumulator errors;
  int64_t batch = 0;
  task->for_each_eval_batch(split, [&](const train::Task::TraceFn& trace) {
    if (options.max_batches > 0 && batch++ >= options.max_batches) return;
    models::ActivationTrace quantized, full;
    quantizers.set_activation_bits(bits);
    trace(quantized);
    quantizers.set_activation_bits(quant::kFullPrecisionBits);
    trace(full);
    errors.add(quantized, full);
  });
  TORCH_CHECK(!errors.names().empty(), "run ", dir.string(), ": the model recorded no layers");

  quantizers.set_activation_bits(quant::kFullPrecisionBits);
  const train::EvalStats full_stats = task->evaluate(split);
  quantizers.set_activation_bits(bits);
  const train::EvalStats quantized_stats = task->evaluate(split);
  const double mean = errors.mean_over_differing_layers();
  spdlog::info(
      "{}: mean per-layer error {:.4f} over {} layers, accuracy {:.2f}% quantized / {:.2f}% full precision",
      label, mean, errors.names().size(), 100 * quantized_stats.accuracy, 100 * full_stats.accuracy);
  nlohmann::json info = {{"run", dir.string()},
                         {"label", label},
                         {"model", config.model.name},
                         {"stable", config.model.stable},
                         {"epoch", state.epoch},
                         {"act_bits", bits},
                         {"layers", errors.names().size()},
                         {"mean_error", mean},
                         {"accuracy", quantized_stats.accuracy},
                         {"full_precision_accuracy", full_stats.accuracy}};
  return {label, info, errors.names(), errors.rms()};
}

/// Folder names, unless two runs share one: then the whole paths.
std::vector<std::string> labels_for(const std::vector<fs::path>& runs) {
  std::vector<std::string> labels;
  std::set<std::string> seen;
  bool unique = true;
  for (const auto& run : runs) {
    auto name = fs::path(run).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(run).lexically_normal().parent_path().filename().string();
    unique = unique && seen.insert(name).second;
    labels.push_back(name);
  }
  if (!unique) {
    labels.clear();
    for (const auto& run : runs) labels.push_back(run.string());
  }
  return labels;
}

}  // namespace

nlohmann::json AnalyzeStabilityResult::to_json() const {
  nlohmann::json brief = {{"out", out.string()}, {"ratios", ratios}, {"runs", nlohmann::json::array()}};
  for (const StabilityRun& run : runs) {
    brief["runs"].push_back({{"label", run.label},
                             {"mean_error", run.mean_error},
                             {"accuracy", run.accuracy},
                             {"full_precision_accuracy", run.full_precision_accuracy}});
  }
  return brief;
}

AnalyzeStabilityResult analyze_stability(const AnalyzeStabilityOptions& options) {
  const fs::path& out = options.out;
  TORCH_CHECK_VALUE(!options.runs.empty(), "at least one run is needed");
  TORCH_CHECK_VALUE(options.split == "test" || options.split == "val", "split must be test or val, but got '",
                    options.split, "'");
  TORCH_CHECK_VALUE(options.checkpoint == "best" || options.checkpoint == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint, "'");
  TORCH_CHECK_VALUE(
      !options.act_bits || (*options.act_bits >= 1 && *options.act_bits < quant::kFullPrecisionBits),
      "act_bits must be in [1, 31], but got ", options.act_bits.value_or(0));
  const auto labels = labels_for(options.runs);
  std::vector<RunErrors> results;
  for (size_t i = 0; i < options.runs.size(); ++i)
    results.push_back(analyze_run(options.runs[i], labels[i], options));

  fs::create_directories(out);
  // CSV and plot rows: one per layer index; runs of different depths leave their missing layers empty.
  size_t depth = 0;
  for (const auto& r : results) depth = std::max(depth, r.rms.size());
  std::ostringstream csv;
  csv << "layer,name";
  for (const auto& r : results) csv << "," << r.label;
  csv << "\n";
  std::vector<nlohmann::json> rows;
  for (size_t l = 0; l < depth; ++l) {
    nlohmann::json row = {{"layer", l}};
    csv << l << "," << (l < results.front().names.size() ? results.front().names[l] : "");
    for (const auto& r : results) {
      csv << ",";
      if (l < r.rms.size()) {
        csv << r.rms[l];
        row[r.label] = r.rms[l];
      }
    }
    csv << "\n";
    rows.push_back(row);
  }
  run::atomic_write_file(out / "stability.csv", csv.str());
  std::vector<std::pair<std::string, std::string>> series;
  for (const auto& r : results) series.emplace_back(r.label, r.label);
  run::plot_lines(rows, "layer", series,
                  {"per-layer RMS error, quantized vs full-precision activations", "layer (block index)",
                   "RMS error (activation units)"},
                  out / "stability.png");

  nlohmann::json report = {{"split", options.split}, {"checkpoint", options.checkpoint}};
  report["runs"] = nlohmann::json::array();
  for (const auto& r : results) {
    auto info = r.info;
    info["errors"] = r.rms;
    info["names"] = r.names;
    report["runs"].push_back(info);
  }
  nlohmann::json ratios = nlohmann::json::object();
  const double first = results.front().info["mean_error"].get<double>();
  for (size_t i = 1; i < results.size(); ++i) {
    const double other = results[i].info["mean_error"].get<double>();
    if (other > 0) ratios[results.front().label + "/" + results[i].label] = first / other;
  }
  report["ratios"] = ratios;
  run::RunDirectory(out).write_json(out / "stability.json", report);
  AnalyzeStabilityResult result;
  for (const auto& r : results) {
    result.runs.push_back({r.label, r.info.at("mean_error").get<double>(),
                           r.info.at("accuracy").get<double>(),
                           r.info.at("full_precision_accuracy").get<double>()});
  }
  result.ratios = ratios;
  result.report = report;
  result.out = out;
  return result;
}

}  // namespace pdeq::commands
