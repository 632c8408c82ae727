#include <pdeq/sweep/report.h>

#include <pdeq/analysis/statistics.h>

#include <pdeq/run/plots.h>
#include <pdeq/run/progress.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/sweep/spec.h>

#include <glob.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

namespace pdeq::sweep {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// Config keys that never make two runs different configurations.
bool seed_like(const std::string& key) { return key == "train.seed" || key == "train.threads"; }

/// Numbers numerically, everything else by its JSON text (null first).
bool value_less(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() < b.get<double>();
  if (a.is_number() != b.is_number()) return a.is_number();
  return a.dump() < b.dump();
}

using analysis::mean_of;
using analysis::std_of;

std::string percent(const json& fraction) {
  if (!fraction.is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", 100 * fraction.get<double>());
  return text;
}

std::string csv_cell(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.is_null() ? "" : value.dump();
  if (text.find_first_of(",\"\n") != std::string::npos) {
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }
  return text;
}

/// A value as shown in tables and legends: strings bare, floats to 4 significant digits (sampled search
/// values would otherwise print 17); results.csv keeps every digit.
std::string cell_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", value.get<double>());
    return text;
  }
  return value.dump();
}

std::string label_of(const json& keys) {
  std::string label;
  for (const auto& [key, value] : keys.items())
    label += (label.empty() ? "" : ",") + key + "=" + cell_text(value);
  return label.empty() ? "all" : label;
}

/// Selection score of a row: mean validation accuracy; rows without one never win.
double score_of(const json& row) {
  const json& val = row["best_val_accuracy_mean"];
  return val.is_number() ? val.get<double>() : -1.0;
}

/// What the report takes from one finished run's summary.json, every figure checked: a report must never
/// average a missing or malformed value as 0 (or leave it out of a mean without saying so).
struct SummaryFigures {
  std::vector<double> test;  ///< one per seed
  std::vector<double> val;   ///< one per seed that has a validation split
  double seconds = 0;        ///< wall time of one run (the mean over seeds for a multi-seed folder)
  json params;
};

[[noreturn]] void bad_summary(const RunRecord& run, const std::string& key, const std::string& expected,
                              const json& got) {
  throw std::runtime_error(
      (run.dir / "summary.json").string() + ": " + key + ": expected " + expected + ", got " +
      (got.is_discarded() ? std::string("no value") : got.dump()) +
      " (a summary.json that pdeq did not write whole; rerun the run or leave its folder "
      "out of the report)");
}

/// `object[key]` (discarded when absent) without inserting it.
json field(const json& object, const std::string& key) {
  if (!object.is_object()) return json(json::value_t::discarded);
  const auto it = object.find(key);
  return it == object.end() ? json(json::value_t::discarded) : *it;
}

double fraction(const RunRecord& run, const std::string& key, const json& value) {
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0 ||
      value.get<double>() > 1) {
    bad_summary(run, key, "a fraction in [0, 1]", value);
  }
  return value.get<double>();
}

double seconds_of(const RunRecord& run, const std::string& key, const json& value) {
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0)
    bad_summary(run, key, "a number of seconds >= 0", value);
  return value.get<double>();
}

json params_of(const RunRecord& run, const std::string& key, const json& value) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0)
    bad_summary(run, key, "a parameter count (an integer >= 0)", value);
  return value;
}

/// best_val_accuracy: a fraction, or null for a run without a validation split.
void add_val(const RunRecord& run, const std::string& key, const json& value, std::vector<double>* val) {
  if (value.is_null()) return;
  if (value.is_discarded())
    bad_summary(run, key, "a fraction in [0, 1] or null (no validation split)", value);
  val->push_back(fraction(run, key, value));
}

SummaryFigures summary_figures(const RunRecord& run) {
  const json& s = run.summary;
  if (!s.is_object()) bad_summary(run, "(top level)", "a JSON object", s);
  SummaryFigures out;
  const json runs = field(s, "runs");
  // A multi-seed run folder (train.seeds > 1) contributes each of its seeds.
  if (!runs.is_discarded()) {
    if (!runs.is_array() || runs.empty())
      bad_summary(run, "runs", "a non-empty array of run summaries", runs);
    const json test = field(s, "test_accuracies");
    if (!test.is_array() || test.size() != runs.size()) {
      bad_summary(run, "test_accuracies", "an array of " + std::to_string(runs.size()) + " fractions", test);
    }
    for (size_t i = 0; i < test.size(); ++i) {
      const std::string index = "[" + std::to_string(i) + "]";
      out.test.push_back(fraction(run, "test_accuracies" + index, test[i]));
      add_val(run, "runs" + index + ".best_val_accuracy", field(runs[i], "best_val_accuracy"), &out.val);
    }
    out.seconds = seconds_of(run, "wall_seconds_per_run", field(s, "wall_seconds_per_run"));
    out.params = params_of(run, "runs[0].params", field(runs[0], "params"));
    return out;
  }
  out.test.push_back(fraction(run, "test_accuracy", field(s, "test_accuracy")));
  add_val(run, "best_val_accuracy", field(s, "best_val_accuracy"), &out.val);
  out.seconds = seconds_of(run, "wall_seconds", field(s, "wall_seconds"));
  out.params = params_of(run, "params", field(s, "params"));
  return out;
}

}  // namespace

std::vector<RunRecord> collect_runs(const std::vector<std::string>& patterns) {
  std::set<fs::path> dirs;
  for (const auto& pattern : patterns) {
    glob_t matches{};
    const int status = ::glob(pattern.c_str(), 0, nullptr, &matches);
    if (status == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) dirs.insert(fs::path(matches.gl_pathv[i]));
    }
    globfree(&matches);
    if (status != 0 && status != GLOB_NOMATCH) throw std::runtime_error("cannot expand " + pattern);
  }
  auto runs = read_runs({dirs.begin(), dirs.end()});
  if (runs.empty()) {
    std::string joined;
    for (const auto& p : patterns) joined += (joined.empty() ? "" : " ") + p;
    throw std::runtime_error("no run folders (with config.json) match " + joined);
  }
  return runs;
}

std::vector<RunRecord> read_runs(const std::vector<fs::path>& dirs) {
  std::vector<RunRecord> runs;
  for (const auto& dir : dirs) {
    const run::RunDirectory run(dir);
    if (!fs::is_directory(dir) || !fs::exists(run.config_path())) continue;
    RunRecord record;
    record.dir = dir;
    record.config = flatten(run.read_json(run.config_path()));
    if (run.finished()) record.summary = run.read_json(run.summary_path());
    runs.push_back(std::move(record));
  }
  return runs;
}

json report_rows(const std::vector<RunRecord>& runs) {
  std::vector<const RunRecord*> finished;
  for (const auto& run : runs) {
    if (run.finished()) finished.push_back(&run);
  }
  if (finished.empty()) return {{"varied_keys", json::array()}, {"rows", json::array()}};
  // Varied keys: present with different values (or missing) somewhere among the finished runs.
  std::set<std::string> keys;
  for (const auto* run : finished) {
    for (const auto& item : run->config) keys.insert(item.first);
  }
  std::vector<std::string> varied;
  for (const auto& key : keys) {
    if (seed_like(key)) continue;
    const auto first = finished.front()->config.find(key);
    for (const auto* run : finished) {
      const auto it = run->config.find(key);
      if ((it == run->config.end()) != (first == finished.front()->config.end()) ||
          (it != run->config.end() && it->second != first->second)) {
        varied.push_back(key);
        break;
      }
    }
  }

  struct Group {
    json keys = json::object();
    std::vector<double> test, val, seconds;
    json params;
    std::vector<std::string> dirs;
  };
  std::vector<Group> groups;
  for (const auto* run : finished) {
    json values = json::object();
    for (const auto& key : varied) {
      const auto it = run->config.find(key);
      values[key] = it == run->config.end() ? json() : it->second;
    }
    auto group = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.keys == values; });
    if (group == groups.end()) {
      groups.push_back({values, {}, {}, {}, json(), {}});
      group = groups.end() - 1;
    }
    const SummaryFigures figures = summary_figures(*run);
    group->test.insert(group->test.end(), figures.test.begin(), figures.test.end());
    group->val.insert(group->val.end(), figures.val.begin(), figures.val.end());
    group->seconds.push_back(figures.seconds);
    if (group->params.is_null()) group->params = figures.params;
    group->dirs.push_back(run->dir.filename().string());
  }
  std::sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
    for (const auto& key : varied) {
      if (value_less(a.keys[key], b.keys[key])) return true;
      if (value_less(b.keys[key], a.keys[key])) return false;
    }
    return false;
  });

  json rows = json::array();
  for (const auto& g : groups) {
    rows.push_back({{"keys", g.keys},
                    {"label", label_of(g.keys)},
                    {"seeds", g.test.size()},
                    {"test_accuracy_mean", mean_of(g.test)},
                    {"test_accuracy_std", std_of(g.test)},
                    {"best_val_accuracy_mean", g.val.empty() ? json() : json(mean_of(g.val))},
                    {"params", g.params},
                    {"wall_seconds_mean", g.seconds.empty() ? json() : json(mean_of(g.seconds))},
                    {"runs", g.dirs}});
  }
  return {{"varied_keys", varied}, {"rows", rows}};
}

std::string markdown_table(const json& report) {
  std::ostringstream md;
  const auto& varied = report["varied_keys"];
  for (const auto& key : varied) md << "| " << key.get<std::string>() << " ";
  md << "| seeds | test acc (%) | val acc (%) | params | time/run |\n";
  for (size_t i = 0; i < varied.size() + 5; ++i) md << "|---";
  md << "|\n";
  for (const auto& row : report["rows"]) {
    for (const auto& key : varied) md << "| " << cell_text(row["keys"][key.get<std::string>()]) << " ";
    md << "| " << row["seeds"] << " | " << percent(row["test_accuracy_mean"]);
    if (row["seeds"].get<int64_t>() > 1) md << " ± " << percent(row["test_accuracy_std"]);
    md << " | " << percent(row["best_val_accuracy_mean"]) << " | "
       << (row["params"].is_null() ? "-" : row["params"].dump()) << " | "
       << (row["wall_seconds_mean"].is_number() ? run::format_duration(row["wall_seconds_mean"].get<double>())
                                                : "-")
       << " |\n";
  }
  return md.str();
}

json write_report(const std::vector<RunRecord>& runs, const fs::path& out, const ReportOptions& options) {
  fs::create_directories(out);
  json unfinished = json::array();
  for (const auto& run : runs) {
    if (!run.finished()) unfinished.push_back(run.dir.filename().string());
  }
  if (unfinished.size() == runs.size()) {
    throw std::runtime_error("none of the " + std::to_string(runs.size()) +
                             " run folders has finished (summary.json)");
  }
  json report = report_rows(runs);
  report["unfinished"] = unfinished;
  const json& rows = report["rows"];
  const auto& varied = report["varied_keys"];
  std::map<std::string, const RunRecord*> by_dir;
  for (const auto& run : runs) by_dir[run.dir.filename().string()] = &run;

  // results.csv
  {
    std::ostringstream csv;
    for (const auto& key : varied) csv << csv_cell(key) << ",";
    csv << "seeds,test_accuracy_mean,test_accuracy_std,best_val_accuracy_mean,params,wall_seconds_mean,"
           "runs\n";
    for (const auto& row : rows) {
      for (const auto& key : varied) csv << csv_cell(row["keys"][key.get<std::string>()]) << ",";
      std::string dirs;
      for (const auto& d : row["runs"]) dirs += (dirs.empty() ? "" : ";") + d.get<std::string>();
      csv << row["seeds"] << "," << csv_cell(row["test_accuracy_mean"]) << ","
          << csv_cell(row["test_accuracy_std"]) << "," << csv_cell(row["best_val_accuracy_mean"]) << ","
          << csv_cell(row["params"]) << "," << csv_cell(row["wall_seconds_mean"]) << "," << csv_cell(dirs)
          << "\n";
    }
    run::atomic_write_file(out / "results.csv", csv.str());
  }

  // Best row by validation accuracy, per configuration (options.best_per).
  json best = json::array();
  {
    std::map<std::string, std::pair<json, const json*>> winners;  // partition JSON -> (partition keys, row)
    for (const auto& row : rows) {
      if (score_of(row) < 0) continue;
      const RunRecord* first = by_dir.at(row["runs"][0].get<std::string>());
      json partition = json::object();
      for (const auto& key : options.best_per) {
        const auto it = first->config.find(key);
        partition[key] = it == first->config.end() ? json() : it->second;
      }
      auto& winner = winners[partition.dump()];  // keyed exactly: labels round floats
      if (winner.second == nullptr || score_of(row) > score_of(*winner.second)) winner = {partition, &row};
    }
    for (const auto& [partition_key, winner] : winners) {
      const std::string label = label_of(winner.first);
      const json& row = *winner.second;
      const RunRecord* first = by_dir.at(row["runs"][0].get<std::string>());
      const fs::path config_file = out / "best" / (safe_folder_name(label) + ".json");
      const run::RunDirectory run(first->dir);
      run::atomic_write_file(config_file, run.read_json(run.config_path()).dump(2) + "\n");
      best.push_back({{"configuration", winner.first},
                      {"label", label},
                      {"row", row},
                      {"config", fs::relative(config_file, out).string()}});
    }
    if (!best.empty()) run::atomic_write_file(out / "best.json", best.dump(2) + "\n");
  }
  report["best"] = best;

  // results.md
  {
    std::ostringstream md;
    md << markdown_table(report);
    if (!best.empty()) {
      md << "\nBest by validation accuracy:\n\n";
      for (const auto& b : best) {
        md << "- " << b["label"].get<std::string>() << ": " << b["row"]["label"].get<std::string>()
           << " (val " << percent(b["row"]["best_val_accuracy_mean"]) << "%, test "
           << percent(b["row"]["test_accuracy_mean"]) << "%), config " << b["config"].get<std::string>()
           << "\n";
      }
    }
    if (!unfinished.empty()) {
      md << "\nUnfinished (" << unfinished.size() << "):";
      for (const auto& u : unfinished) md << " " << u.get<std::string>();
      md << "\n";
    }
    run::atomic_write_file(out / "results.md", md.str());
  }

  // Accuracy vs bits, one line per family (the other varied keys); per (family, bits) the best row by val.
  std::string bits_key;
  for (const char* key : {"quant.act_bits", "quant.weight_bits"}) {
    if (bits_key.empty() && std::find(varied.begin(), varied.end(), key) != varied.end()) bits_key = key;
  }
  if (!bits_key.empty()) {
    std::map<double, json> points;                            // bits -> {family: accuracy %}
    std::map<std::pair<double, std::string>, double> chosen;  // (bits, family) -> score of the plotted row
    std::vector<std::pair<std::string, std::string>> series;
    for (const auto& row : rows) {
      json family = json::object();
      for (const auto& [key, value] : row["keys"].items()) {
        if (key != "quant.act_bits" && key != "quant.weight_bits") family[key] = value;
      }
      const std::string label = label_of(family);
      if (!row["keys"][bits_key].is_number()) continue;
      const double bits = row["keys"][bits_key].get<double>();
      const auto key = std::make_pair(bits, label);
      if (chosen.count(key) && chosen[key] >= score_of(row)) continue;
      chosen[key] = score_of(row);
      points[bits]["bits"] = bits;
      points[bits][label] = 100 * row["test_accuracy_mean"].get<double>();
      if (std::find_if(series.begin(), series.end(), [&](const auto& s) { return s.first == label; }) ==
          series.end()) {
        series.emplace_back(label, label);
      }
    }
    std::vector<json> plot_rows;
    for (const auto& [bits, row] : points) plot_rows.push_back(row);
    run::plot_lines(plot_rows, "bits", series,
                    {"test accuracy vs " + bits_key, bits_key, "test accuracy (%)"}, out / "acc_vs_bits.png");
  }

  // Training curves of the first run of each row (the 12 best rows by validation accuracy).
  std::vector<const json*> ranked;
  for (const auto& row : rows) ranked.push_back(&row);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const json* a, const json* b) { return score_of(*a) > score_of(*b); });
  if (ranked.size() > 12) ranked.resize(12);
  struct Curve {
    std::string metric, title, y_label;
    double scale;  // fractions to percent
  };
  for (const auto& [metric, title, y_label, scale] :
       {Curve{"val_acc", "validation accuracy", "validation accuracy (%)", 100.0},
        Curve{"train_loss", "training loss", "training loss (mean per sample)", 1.0}}) {
    std::map<int64_t, json> by_epoch;
    std::vector<std::pair<std::string, std::string>> series;
    for (const json* row : ranked) {
      const std::string label = (*row)["label"].get<std::string>();
      const run::RunDirectory run(by_dir.at((*row)["runs"][0].get<std::string>())->dir);
      for (const auto& m : run.read_metrics()) {
        if (!m.contains(metric) || !m[metric].is_number()) continue;
        const int64_t epoch = m["epoch"].get<int64_t>();
        by_epoch[epoch]["epoch"] = epoch;
        by_epoch[epoch][label] = scale * m[metric].get<double>();
      }
      series.emplace_back(label, label);
    }
    std::vector<json> plot_rows;
    for (const auto& [epoch, row] : by_epoch) plot_rows.push_back(row);
    if (!plot_rows.empty())
      run::plot_lines(plot_rows, "epoch", series, {title, "epoch", y_label},
                      out / ("curves_" + metric + ".png"));
  }
  return report;
}

}  // namespace pdeq::sweep
