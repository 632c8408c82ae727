// The commands as library calls: options in, typed results out, child processes through the caller's
// command line.
#include <pdeq/commands/params.h>
#include <pdeq/commands/sweep.h>
#include <pdeq/commands/train.h>
#include <pdeq/config/config.h>

#include "test_support.h"

#include <fstream>
#include <sstream>

namespace pdeq::commands {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ParamsCommandTest, TypedCountsOfResNet20) {
  ParamsOptions options;
  options.model = "resnet20";
  const ParamsResult full = params(options);
  EXPECT_EQ(full.params, 272474);
  EXPECT_EQ(full.params_model, 272474);
  options.weight_bits = options.act_bits = 4;
  const ParamsResult w4a4 = params(options);
  EXPECT_EQ(w4a4.params_quantizer, 38);
  EXPECT_EQ(w4a4.params, 272474 + 38);
  EXPECT_EQ(w4a4.to_json()["params"], 272474 + 38);
  EXPECT_EQ(w4a4.to_json()["weight_bits"], 4);
  options.overrides = {"model.stabel=true"};
  PDEQ_ASSERT_THROWS_WITH(params(options), "model.stabel: unknown key; did you mean 'stable'");
}

TEST(TrainCommandTest, UsageIsCheckedBeforeAnythingRuns) {
  TrainOptions options;
  PDEQ_ASSERT_THROWS_WITH(train(options), "either --config (with --out) or --resume");
  options.config = "c.json";
  PDEQ_ASSERT_THROWS_WITH(train(options), "--config needs --out");
  options.config.clear();
  options.resume = "runs/r";
  options.overrides = {"train.epochs=3"};
  PDEQ_ASSERT_THROWS_WITH(train(options), "--set cannot change a resumed run");
}

TEST(TrainCommandTest, LocalRanksGetTheirAddressFromTheCommandLineOfTheCaller) {
  test::TempDir scratch;
  const auto config = scratch.path() / "c.json";
  config::Config c;
  c.data.dataset = "cifar10";
  std::ofstream(config) << config::to_json(c).dump();
  TrainOptions options;
  options.config = config;
  options.out = scratch.path() / "run";
  options.distributed.nproc = 2;
  // Stand-in ranks: each records the options it was given.
  const auto result = train(options, [&](const TrainOptions& rank) {
    const std::string line = std::to_string(*rank.distributed.rank) + " " +
                             std::to_string(rank.distributed.world_size) + " " + rank.distributed.master +
                             " " + std::to_string(rank.distributed.nproc) + " " + rank.out.string();
    const auto file = scratch.path() / ("rank" + std::to_string(*rank.distributed.rank));
    return std::vector<std::string>{"/bin/sh", "-c", "echo '" + line + "' > '" + file.string() + "'"};
  });
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_TRUE(result.finished);
  for (int r = 0; r < 2; ++r) {
    std::istringstream line(read_file(scratch.path() / ("rank" + std::to_string(r))));
    int rank = -1, world = -1, nproc = -1;
    std::string master, out;
    line >> rank >> world >> master >> nproc >> out;
    EXPECT_EQ(rank, r);
    EXPECT_EQ(world, 2);
    EXPECT_EQ(master.rfind("127.0.0.1:", 0), 0u);
    EXPECT_EQ(nproc, 1);  // a rank starts no ranks of its own
    EXPECT_EQ(out, options.out.string());
  }
}

TEST(TrainCommandTest, ARefusedDataParallelConfigStartsNoRank) {
  test::TempDir scratch;
  const auto config = scratch.path() / "c.json";
  config::Config c;
  c.data.dataset = "cora";
  c.model.name = "pde_gcn";
  std::ofstream(config) << config::to_json(c).dump();
  TrainOptions options;
  options.config = config;
  options.out = scratch.path() / "run";
  options.distributed.nproc = 2;
  bool started = false;
  PDEQ_ASSERT_THROWS_WITH(train(options,
                                [&](const TrainOptions&) {
                                  started = true;
                                  return std::vector<std::string>{"/bin/true"};
                                }),
                          "full-batch graph task");
  EXPECT_FALSE(started);
  EXPECT_FALSE(std::filesystem::exists(options.out));
}

TEST(SweepCommandTest, DryRunListsThePointsAndStartsNothing) {
  test::TempDir scratch;
  config::Config base;
  base.data.dataset = "cora";
  base.model.name = "pde_gcn";
  std::ofstream(scratch.path() / "base.json") << config::to_json(base).dump();
  std::ofstream(scratch.path() / "s.json") << R"({"base": "base.json", "grid": {"train.lr": [0.1, 0.01]}})";
  SweepOptions options;
  options.file = scratch.path() / "s.json";
  options.out = scratch.path() / "out";
  options.dry_run = true;
  const SweepResult result = sweep(options, [](const TrainOptions&) -> std::vector<std::string> {
    ADD_FAILURE() << "a dry run starts nothing";
    return {"/bin/false"};
  });
  EXPECT_EQ(result.outcome.total, 2);
  EXPECT_EQ(result.outcome.done, 0);
  ASSERT_EQ(result.outcome.plan.size(), 2u);
  EXPECT_EQ(result.outcome.plan[0]["state"], "new");
  EXPECT_EQ(result.exit_code(), 0);
  EXPECT_FALSE(std::filesystem::exists(options.out / "logs"));
}

}  // namespace
}  // namespace pdeq::commands
