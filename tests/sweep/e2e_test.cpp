// End to end: `pdeq sweep` on real data (tiny Cora points, and tiny Fashion-MNIST ones through the same
// runner), then the report's rows; a second `pdeq sweep` skips everything.
#include <pdeq/sweep/runner.h>

#include "plot_support.h"
#include "sweep_support.h"

#include <cstdlib>
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

/// Runs the real CLI; returns its exit code.
int run_cli(const std::string& args, const fs::path& log) {
  const std::string command = std::string(PDEQ_CLI_PATH) + " " + args + " > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SweepEndToEnd, TinyCoraSweepWithSeedsAndItsReport) {
  if (!fs::exists(shared_data("planetoid/cora/cora.feat.indptr.i64"))) {
    GTEST_SKIP() << "Cora not found at " << shared_data("planetoid/cora");
  }
  TempDir dir("sweep_e2e");
  write_text(dir.path() / "base.json", cora_base_json());
  write_text(dir.path() / "s.json", R"({"base": "base.json",
    "set": ["data.root=)" + shared_data("planetoid") +
                                        R"(", "train.epochs=4", "train.patience=0"],
    "grid": {"model.name": ["pde_gcn", "pde_gcn_nonsym"]}, "seeds": 2})");
  const fs::path out = dir.path() / "out";
  ASSERT_EQ(run_cli("sweep --config " + dir.file("s.json") + " --out " + out.string() + " --jobs 2",
                    dir.path() / "log1"),
            0)
      << read_all(dir.path() / "log1");
  for (const char* name : {"model.name=pde_gcn,seed=1", "model.name=pde_gcn,seed=2",
                           "model.name=pde_gcn_nonsym,seed=1", "model.name=pde_gcn_nonsym,seed=2"}) {
    EXPECT_TRUE(fs::exists(out / name / "summary.json")) << name;
  }
  // The report the sweep wrote: one row per model, two seeds each.
  const std::string md = read_all(out / "report" / "results.md");
  EXPECT_NE(md.find("| model.name | seeds | test acc (%) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| pde_gcn | 2 | "), std::string::npos) << md;
  EXPECT_NE(md.find("| pde_gcn_nonsym | 2 | "), std::string::npos) << md;
  std::istringstream csv(read_all(out / "report" / "results.csv"));
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 3);  // header + 2 rows
  pdeq::test::expect_plot(out / "report" / "curves_val_acc.png", 1000u);

  // A second sweep has nothing left to do; `pdeq report` over the glob gives the same table.
  ASSERT_EQ(run_cli("sweep --config " + dir.file("s.json") + " --out " + out.string(), dir.path() / "log2"),
            0);
  EXPECT_NE(read_all(dir.path() / "log2").find("\"done\":4"), std::string::npos)
      << read_all(dir.path() / "log2");
  ASSERT_EQ(
      run_cli("report --runs '" + out.string() + "/*' --out " + dir.file("report2"), dir.path() / "log3"), 0);
  EXPECT_EQ(read_all(dir.path() / "report2" / "results.csv"), read_all(out / "report" / "results.csv"));
}

TEST(SweepEndToEnd, ImagePointsRunThroughTheSameRunner) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(root + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST not found at " << root;
  TempDir dir("sweep_e2e_img");
  write_text(dir.path() / "base.json", R"({"model": {"name": "resnet20"},
    "data": {"dataset": "fashion_mnist", "val_size": 128, "limit_train": 256, "limit_test": 256, "augment": false,
             "batch_size": 64},
    "quant": {"weight_bits": 4}, "train": {"epochs": 1, "threads": 1, "log_every": 1000}})");
  write_text(dir.path() / "s.json", R"({"base": "base.json", "grid": {"quant.act_bits": [32, 4]}})");
  const fs::path out = dir.path() / "out";
  ASSERT_EQ(run_cli("sweep --config " + dir.file("s.json") + " --out " + out.string() + " --jobs 2",
                    dir.path() / "log"),
            0)
      << read_all(dir.path() / "log");
  const json best = json::parse(read_all(out / "report" / "best.json"));  // image runs have a val accuracy
  ASSERT_EQ(best.size(), 1u);
  const std::string md = read_all(out / "report" / "results.md");
  EXPECT_NE(md.find("| quant.act_bits | seeds |"), std::string::npos) << md;
  EXPECT_LT(md.find("| 4 | 1 |"), md.find("| 32 | 1 |")) << md;
  pdeq::test::expect_plot(out / "report" / "acc_vs_bits.png", 1000u);
}

TEST(SweepEndToEnd, DryRunListsPointsAndATypoFailsBeforeAnythingRuns) {
  TempDir dir("sweep_e2e_dry");
  write_text(dir.path() / "base.json", cora_base_json());
  write_text(dir.path() / "s.json",
             R"({"base": "base.json", "grid": {"quant.act_bits": [4, 2]}, "seeds": [3]})");
  ASSERT_EQ(run_cli("sweep --dry-run --config " + dir.file("s.json") + " --out " + dir.file("out"),
                    dir.path() / "log"),
            0);
  EXPECT_EQ(read_all(dir.path() / "log"),
            "new\tquant.act_bits=4,seed=3\nnew\tquant.act_bits=2,seed=3\n2 points, 0 done\n");
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
  write_text(dir.path() / "s.json", R"({"base": "base.json", "grid": {"quant.act_bit": [4, 2]}})");
  EXPECT_EQ(run_cli("sweep --config " + dir.file("s.json") + " --out " + dir.file("out"), dir.path() / "log"),
            2);
  EXPECT_NE(read_all(dir.path() / "log").find("quant.act_bit: unknown key; did you mean 'act_bits'"),
            std::string::npos)
      << read_all(dir.path() / "log");
  EXPECT_FALSE(fs::exists(dir.path() / "out"));
}

}  // namespace
}  // namespace pdeq::test
