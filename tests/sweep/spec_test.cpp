// Sweep files: grid expansion, point names, and validation of every point before anything runs.
#include <pdeq/sweep/spec.h>

#include "sweep_support.h"

#include <map>

namespace pdeq::test {
namespace {

using sweep::expand_sweep;
using sweep::load_sweep;

struct SweepSpecTest : ::testing::Test {
  TempDir dir{"sweep_spec"};
  std::string write_sweep(const std::string& body) {
    write_text(dir.path() / "base.json", cora_base_json());
    write_text(dir.path() / "sweeps" / "s.json", body);
    return (dir.path() / "sweeps" / "s.json").string();
  }
};

TEST_F(SweepSpecTest, PointsTimesGridTimesSeedsInOrderWithReadableNames) {
  const auto path = write_sweep(R"({
    "base": "../base.json",
    "set": ["train.epochs=5"],
    "points": [["model.name=pde_gcn"], ["model.name=pde_gcn_nonsym", "model.layers=3"]],
    "grid": {"quant.act_bits": [32, 4, 2]},
    "seeds": 2})");
  const auto points = expand_sweep(load_sweep(path));
  ASSERT_EQ(points.size(), 2u * 3u * 2u);
  EXPECT_EQ(points[0].name, "model.name=pde_gcn,quant.act_bits=32,seed=1");
  EXPECT_EQ(points[1].name, "model.name=pde_gcn,quant.act_bits=32,seed=2");
  EXPECT_EQ(points[2].name, "model.name=pde_gcn,quant.act_bits=4,seed=1");
  EXPECT_EQ(points[11].name, "model.name=pde_gcn_nonsym,model.layers=3,quant.act_bits=2,seed=2");
  EXPECT_EQ(points[11].group, "model.name=pde_gcn_nonsym,model.layers=3,quant.act_bits=2");
  EXPECT_EQ(points[11].configuration_keys,
            (std::vector<std::string>{"model.name", "model.layers", "quant.act_bits"}));
  // Each point is the base + set + its overrides, resolved.
  EXPECT_EQ(points[11].config.model.name, "pde_gcn_nonsym");
  EXPECT_EQ(points[11].config.model.graph.layers, 3);
  EXPECT_EQ(points[11].config.model.graph.channels, 8);  // from the base
  EXPECT_EQ(points[11].config.quant.act_bits, 2);
  EXPECT_EQ(points[11].config.train.epochs, 5);  // from "set"
  EXPECT_EQ(points[11].config.train.seed, 2u);
  EXPECT_EQ(points[0].config.model.graph.layers, 2);
}

TEST_F(SweepSpecTest, ZippedAxisMovesKeysTogetherAndNoSeedsKeepsTheBaseSeed) {
  const auto path = write_sweep(R"({"base": "../base.json",
    "grid": {"quant.weight_bits,quant.act_bits": [[8, 8], [4, 2]], "model.name": ["gcn"]}})");
  const auto points = expand_sweep(load_sweep(path));
  ASSERT_EQ(points.size(), 2u);
  // nlohmann keeps object keys sorted: the "model.name" axis comes first.
  EXPECT_EQ(points[0].name, "model.name=gcn,quant.weight_bits=8,quant.act_bits=8");
  EXPECT_EQ(points[1].name, "model.name=gcn,quant.weight_bits=4,quant.act_bits=2");
  EXPECT_EQ(points[1].config.quant.weight_bits, 4);
  EXPECT_EQ(points[1].config.quant.act_bits, 2);
  EXPECT_EQ(points[1].config.train.seed, 0u);
  EXPECT_EQ(points[0].group, points[0].name);
}

TEST_F(SweepSpecTest, StringValuesStayStringsEvenWhenTheyLookLikeNumbers) {
  const auto path = write_sweep(R"({"base": "../base.json", "grid": {"data.root": ["123", "a/b"]}})");
  const auto points = expand_sweep(load_sweep(path));
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].config.data.root, "123");
  EXPECT_EQ(points[1].name, "data.root=a_b");  // '/' cannot be in a folder name
  EXPECT_EQ(points[1].config.data.root, "a/b");
}

TEST(SweepNames, SafeFolderNames) {
  EXPECT_EQ(sweep::safe_folder_name("a=b c/d"), "a=b_c_d");
  EXPECT_EQ(sweep::safe_folder_name(".."), "_..");
  const std::string long_a(300, 'a'), long_b = std::string(299, 'a') + "b";
  const auto a = sweep::safe_folder_name(long_a), b = sweep::safe_folder_name(long_b);
  EXPECT_EQ(a.size(), 200u);
  EXPECT_NE(a, b);  // cut to the same prefix, told apart by the hash
  EXPECT_EQ(sweep::name_part("model.name", "resnet56"), "model.name=resnet56");
  EXPECT_EQ(sweep::name_part("train.lr", 0.05), "train.lr=0.05");
  EXPECT_EQ(sweep::name_part("model.stable", true), "model.stable=true");
}

TEST_F(SweepSpecTest, ATypoInALatePointIsReportedUpFrontNamingTheFileThePointAndTheKey) {
  const auto path = write_sweep(R"({"base": "../base.json",
    "points": [["model.layers=2"], ["model.layers=4"], ["model.nmae=gcn"]], "seeds": 2})");
  PDEQ_ASSERT_THROWS_WITH(
      expand_sweep(load_sweep(path)),
      path + " (point model.nmae=gcn,seed=1): model.nmae: unknown key; did you mean 'name'");
}

TEST_F(SweepSpecTest, BadValuesAndModelsAreReportedUpFront) {
  auto path = write_sweep(R"({"base": "../base.json", "grid": {"quant.act_bits": [4, 0]}})");
  PDEQ_ASSERT_THROWS_WITH(
      expand_sweep(load_sweep(path)),
      path + " (point quant.act_bits=0): quant.act_bits: expected an integer in [1, 32], got 0");
  path = write_sweep(R"({"base": "../base.json", "grid": {"model.name": ["pde_gcn", "resnet20"]}})");
  PDEQ_ASSERT_THROWS_WITH(expand_sweep(load_sweep(path)),
                          path + " (point model.name=resnet20): model.name: expected one of pde_gcn");
  path = write_sweep(R"({"base": "../base.json", "set": ["train.seeds=3"]})");
  PDEQ_ASSERT_THROWS_WITH(expand_sweep(load_sweep(path)), "train.seeds: expected 1 in a sweep");
  path = write_sweep(R"({"base": "../base.json", "grid": {"train.lr": [0.1, 0.1]}})");
  PDEQ_ASSERT_THROWS_WITH(expand_sweep(load_sweep(path)), "two points have the same name train.lr=0.1");
}

TEST_F(SweepSpecTest, SweepFileStructureErrorsNameTheFileAndKey) {
  auto path = write_sweep(R"({"base": "../base.json", "gird": {}})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path), path + ": gird: unknown key (allowed: base, set, points, grid");
  path = write_sweep(R"({"grid": {"train.lr": [0.1]}})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path), path + ": base: missing");
  path =
      write_sweep(R"({"base": "../base.json", "grid": {"quant.weight_bits,quant.act_bits": [[8, 8], 4]}})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path),
                          path + ": grid.quant.weight_bits,quant.act_bits: expected arrays of 2 values");
  path = write_sweep(R"({"base": "../base.json", "set": ["train.epochs"]})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path), path + ": set[0]: expected \"a.b=value\"");
  path = write_sweep(R"({"base": "../missing.json"})");
  PDEQ_ASSERT_THROWS_WITH(expand_sweep(load_sweep(path)), "missing.json: cannot open config file");
}

// Found reading load_sweep for its fuzz target: "seeds": 10^12 (or "trials", or a grid of many axes) made
// load_sweep push 10^12 seeds, and expand_sweep would have made as many points, before any error could be
// reported.
TEST_F(SweepSpecTest, SweepsBeyondTheMostPointsAreRefusedBeforeExpanding) {
  auto path = write_sweep(R"({"base": "../base.json", "seeds": 1000000000000})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path), path + ": seeds: expected a count N in [1, 100000]");
  path = write_sweep(R"({"base": "../base.json", "search": {"trials": 1000000000000,
                         "params": {"train.lr": {"log_uniform": [0.001, 0.1]}}}})");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path), path + ": search.trials: expected an integer in [1, 100000]");

  // 10 x 10 x 10 x 10 x 10 grid points x 2 seeds: each factor is fine, their product is not.
  std::string grid;
  for (const char* key :
       {"train.lr", "train.epochs", "model.layers", "model.channels", "train.weight_decay"}) {
    grid += std::string(grid.empty() ? "" : ", ") + "\"" + key + "\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]";
  }
  path = write_sweep(R"({"base": "../base.json", "seeds": 2, "grid": {)" + grid + "}}");
  PDEQ_ASSERT_THROWS_WITH(load_sweep(path),
                          path +
                              ": the sweep expands to more than 100000 points (points 1 x grid "
                              "10 x grid 10 x grid 10 x grid 10 x grid 10 x trials 1 x seeds 2)");
  // At the limit it loads (expanding it is left to the other tests: 10^5 validated configs take a while).
  path = write_sweep(R"({"base": "../base.json", "grid": {)" + grid + "}}");
  EXPECT_EQ(load_sweep(path).grid.size(), 5u);
}

TEST(SweepConfigs, EveryShippedSweepExpandsAndValidates) {
  const std::map<std::string, size_t> expected = {{"cifar10_paper_bits.json", 16},
                                                  {"cifar100_paper_bits.json", 16},
                                                  {"cifar10_resnet20_tv.json", 4},
                                                  {"cora_pdegcn_paper.json", 2 * 4 * 4 * 5},
                                                  {"citeseer_pdegcn_paper.json", 160},
                                                  {"cora_pdegcn_paper_cpu.json", 2 * 4 * 2},
                                                  {"cora_pdegcn_tuned.json", 2 * 4 * 4 * 10},
                                                  {"citeseer_pdegcn_tuned.json", 320},
                                                  {"cora_pdegcn_tuned_cpu.json", 2 * 4 * 2},
                                                  {"cora_pdegcn_cpu.json", 12},
                                                  {"cora_pdegcn_search_cpu.json", 2 * 6},
                                                  {"fashion_mnist_bits_cpu.json", 6}};
  size_t files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(pdeq::test::source_dir() + "/configs/sweeps")) {
    const std::string name = entry.path().filename().string();
    ASSERT_TRUE(expected.count(name)) << "add " << name << " here";
    EXPECT_EQ(expand_sweep(load_sweep(entry.path().string())).size(), expected.at(name)) << name;
    ++files;
  }
  EXPECT_EQ(files, expected.size());
}

TEST(SweepFlatten, NestedObjectsBecomeDottedKeys) {
  const auto flat = sweep::flatten(nlohmann::json::parse(R"({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2]})"));
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat.at("a.b"), 1);
  EXPECT_EQ(flat.at("a.c.d"), "x");
  EXPECT_EQ(flat.at("e"), nlohmann::json::parse("[1, 2]"));
}

}  // namespace
}  // namespace pdeq::test
