// Reports over hand-made run folders: varied keys, mean and sample std over seeds, files, best row.
#include <pdeq/config/config.h>
#include <pdeq/sweep/report.h>

#include "plot_support.h"
#include "sweep_support.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace pdeq::test {
namespace {

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A finished run folder: resolved config with `model`, `bits`, `seed`; summary with the given accuracies.
void make_run(const fs::path& dir, const std::string& model, int64_t bits, uint64_t seed, double test,
              double val) {
  config::Config c;
  c.data.dataset = "cora";
  c.model.name = model;
  c.quant.act_bits = bits;
  c.train.seed = seed;
  c.train.threads = static_cast<int64_t>(seed);  // threads never make a configuration
  write_text(dir / "config.json", config::to_json(c).dump(2));
  write_text(dir / "summary.json", json{{"test_accuracy", test},
                                        {"best_val_accuracy", val},
                                        {"params", model == "gcn" ? 100 : 200},
                                        {"wall_seconds", 10.0 * static_cast<double>(seed)}}
                                       .dump());
  std::string metrics;
  for (int e = 1; e <= 3; ++e) {
    metrics += json{{"epoch", e}, {"train_loss", 1.0 / e}, {"val_acc", val * e / 3}}.dump() + "\n";
  }
  write_text(dir / "metrics.jsonl", metrics);
}

TEST(SweepReport, OneRowPerConfigurationWithMeanAndStdOverSeeds) {
  TempDir dir("sweep_report");
  const fs::path runs = dir.path() / "runs";
  make_run(runs / "a1", "pde_gcn", 4, 1, 0.80, 0.70);
  make_run(runs / "a2", "pde_gcn", 4, 2, 0.70, 0.72);
  make_run(runs / "b1", "pde_gcn", 32, 1, 0.81, 0.75);
  make_run(runs / "c1", "gcn", 4, 1, 0.60, 0.50);
  write_text(runs / "unfinished" / "config.json", config::to_json(config::Config{}).dump());
  fs::create_directories(runs / "logs");  // not a run folder

  const auto records = sweep::collect_runs({(runs / "*").string()});
  ASSERT_EQ(records.size(), 5u);
  const json report = sweep::write_report(records, dir.path() / "report");
  EXPECT_EQ(report["varied_keys"], json::parse(R"(["model.name", "quant.act_bits"])"));
  EXPECT_EQ(report["unfinished"], json::parse(R"(["unfinished"])"));
  const json& rows = report["rows"];
  ASSERT_EQ(rows.size(), 3u);
  // Sorted by model name, then bits numerically (4 before 32).
  EXPECT_EQ(rows[0]["label"], "model.name=gcn,quant.act_bits=4");
  EXPECT_EQ(rows[1]["label"], "model.name=pde_gcn,quant.act_bits=4");
  EXPECT_EQ(rows[2]["label"], "model.name=pde_gcn,quant.act_bits=32");
  EXPECT_EQ(rows[1]["seeds"], 2);
  EXPECT_NEAR(rows[1]["test_accuracy_mean"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR(rows[1]["test_accuracy_std"].get<double>(), std::sqrt(2 * 0.05 * 0.05), 1e-12);  // sample std
  EXPECT_NEAR(rows[1]["best_val_accuracy_mean"].get<double>(), 0.71, 1e-12);
  EXPECT_NEAR(rows[1]["wall_seconds_mean"].get<double>(), 15.0, 1e-12);
  EXPECT_EQ(rows[1]["runs"], json::parse(R"(["a1", "a2"])"));
  EXPECT_EQ(rows[0]["params"], 100);
  EXPECT_EQ(rows[2]["test_accuracy_std"], 0.0);

  const std::string csv = read_all(dir.path() / "report" / "results.csv");
  EXPECT_EQ(
      csv.substr(0, csv.find('\n')),
      "model.name,quant.act_bits,seeds,test_accuracy_mean,test_accuracy_std,best_val_accuracy_mean,params,"
      "wall_seconds_mean,runs");
  EXPECT_NE(csv.find("\npde_gcn,4,2,0.75,"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",a1;a2\n"), std::string::npos) << csv;
  const std::string md = read_all(dir.path() / "report" / "results.md");
  EXPECT_NE(
      md.find("| model.name | quant.act_bits | seeds | test acc (%) | val acc (%) | params | time/run |"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("| pde_gcn | 4 | 2 | 75.00 ± 7.07 | 71.00 | 200 | 0:15 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Unfinished (1): unfinished"), std::string::npos) << md;

  // Best by validation accuracy overall: pde_gcn at 32 bits, its config written out.
  ASSERT_EQ(report["best"].size(), 1u);
  EXPECT_EQ(report["best"][0]["row"]["label"], "model.name=pde_gcn,quant.act_bits=32");
  const auto best_config =
      config::load_config((dir.path() / "report" / report["best"][0]["config"].get<std::string>()).string());
  EXPECT_EQ(best_config.quant.act_bits, 32);
  for (const char* png : {"acc_vs_bits.png", "curves_val_acc.png", "curves_train_loss.png"}) {
    pdeq::test::expect_plot(dir.path() / "report" / png, 1000u);
  }
}

TEST(SweepReport, BestPerConfigurationKey) {
  TempDir dir("sweep_report_best");
  const fs::path runs = dir.path() / "runs";
  make_run(runs / "a", "pde_gcn", 4, 1, 0.80, 0.70);
  make_run(runs / "b", "pde_gcn", 2, 1, 0.70, 0.72);
  make_run(runs / "c", "gcn", 4, 1, 0.60, 0.50);
  make_run(runs / "d", "gcn", 2, 1, 0.65, 0.40);
  sweep::ReportOptions options;
  options.best_per = {"model.name"};
  const json report =
      sweep::write_report(sweep::collect_runs({(runs / "*").string()}), dir.path() / "r", options);
  ASSERT_EQ(report["best"].size(), 2u);
  EXPECT_EQ(report["best"][0]["label"], "model.name=gcn");
  EXPECT_EQ(report["best"][0]["row"]["label"], "model.name=gcn,quant.act_bits=4");
  EXPECT_EQ(report["best"][1]["row"]["label"], "model.name=pde_gcn,quant.act_bits=2");
  EXPECT_TRUE(fs::exists(dir.path() / "r" / "best" / "model.name=gcn.json"));
}

// A summary.json without a figure the report averages (or with a malformed one) is an error naming the file
// and the key: a missing test accuracy must never count as 0% in a mean.
TEST(SweepReport, MissingOrMalformedSummaryFiguresAreErrorsNamingFileAndKey) {
  TempDir dir("sweep_report_bad_summary");
  const fs::path runs = dir.path() / "runs";
  make_run(runs / "good", "pde_gcn", 4, 1, 0.80, 0.70);
  make_run(runs / "bad", "pde_gcn", 4, 2, 0.70, 0.72);
  const json good_summary = json::parse(read_all(runs / "bad" / "summary.json"));
  const std::string file = (runs / "bad" / "summary.json").string();
  const auto report_with = [&](const json& summary) {
    write_text(runs / "bad" / "summary.json", summary.dump());
    return sweep::report_rows(sweep::collect_runs({(runs / "*").string()}));
  };

  for (const char* key : {"test_accuracy", "wall_seconds", "params"}) {
    json summary = good_summary;
    summary.erase(key);
    PDEQ_ASSERT_THROWS_WITH(report_with(summary), file + ": " + key + ": expected");
    summary[key] = "0.7";
    PDEQ_ASSERT_THROWS_WITH(report_with(summary), file + ": " + key + ": expected");
  }
  json summary = good_summary;
  summary.erase("best_val_accuracy");
  PDEQ_ASSERT_THROWS_WITH(report_with(summary), file + ": best_val_accuracy: expected");
  summary["best_val_accuracy"] = "x";
  PDEQ_ASSERT_THROWS_WITH(report_with(summary), file + ": best_val_accuracy: expected");
  summary = good_summary;
  summary["test_accuracy"] = 70;  // a percentage, not a fraction
  PDEQ_ASSERT_THROWS_WITH(report_with(summary),
                          file + ": test_accuracy: expected a fraction in [0, 1], got 70");
  summary["test_accuracy"] = nullptr;
  PDEQ_ASSERT_THROWS_WITH(report_with(summary),
                          file + ": test_accuracy: expected a fraction in [0, 1], got null");

  // A multi-seed folder: every seed's accuracy, its time per run and the first run's params.
  const json multi = {
      {"test_accuracy", 0.75},
      {"test_accuracies", {0.7, 0.8}},
      {"best_val_accuracy", 0.7},
      {"wall_seconds_per_run", 3.0},
      {"runs", {{{"best_val_accuracy", 0.6}, {"params", 200}}, {{"best_val_accuracy", 0.8}}}}};
  const json rows = report_with(multi)["rows"];
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["seeds"], 3);
  EXPECT_NEAR(rows[0]["test_accuracy_mean"].get<double>(), (0.8 + 0.7 + 0.8) / 3, 1e-12);
  EXPECT_NEAR(rows[0]["best_val_accuracy_mean"].get<double>(), (0.7 + 0.6 + 0.8) / 3, 1e-12);
  json broken = multi;
  broken["test_accuracies"] = {0.7, nullptr};
  PDEQ_ASSERT_THROWS_WITH(report_with(broken), file + ": test_accuracies[1]: expected a fraction");
  broken = multi;
  broken["test_accuracies"] = {0.7};
  PDEQ_ASSERT_THROWS_WITH(report_with(broken), file + ": test_accuracies: expected an array of 2 fractions");
  broken = multi;
  broken["runs"][1].erase("best_val_accuracy");
  PDEQ_ASSERT_THROWS_WITH(report_with(broken), file + ": runs[1].best_val_accuracy: expected");
  broken = multi;
  broken.erase("wall_seconds_per_run");
  PDEQ_ASSERT_THROWS_WITH(report_with(broken), file + ": wall_seconds_per_run: expected");

  // Null best_val_accuracy is a run without a validation split: no error, no validation mean from it.
  summary = good_summary;
  summary["best_val_accuracy"] = nullptr;
  const json no_val = report_with(summary)["rows"];
  EXPECT_NEAR(no_val[0]["best_val_accuracy_mean"].get<double>(), 0.70, 1e-12);
  EXPECT_NEAR(no_val[0]["test_accuracy_mean"].get<double>(), 0.75, 1e-12);
}

TEST(SweepReport, NoMatchingFoldersIsAnError) {
  TempDir dir("sweep_report_none");
  PDEQ_ASSERT_THROWS_WITH(sweep::collect_runs({dir.str() + "/*"}), "no run folders (with config.json) match");
}

}  // namespace
}  // namespace pdeq::test
