// Data-parallel training through the one Trainer: two ranks as two threads of this process on loopback, each
// with its own task (its shard of the data), optimizer, Trainer and ProcessGroupGloo, as two processes have.
#include <pdeq/distributed/launch.h>
#include <pdeq/distributed/process_group.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/trainer.h>

#include <mutex>
#include <thread>

#include "train_support.h"

namespace fs = std::filesystem;

namespace {

using pdeq::distributed::ProcessGroup;
using pdeq::distributed::ProcessGroupOptions;

struct RankOutcome {
  pdeq::train::FitResult result;
  std::vector<torch::Tensor> parameters;
};

/// Trains `world` ranks of `config` concurrently (a Trainer each, as train_run would build them); rank r
/// uses `run_dirs[min(r, size-1)]`.
std::vector<RankOutcome> fit_ranks(const pdeq::config::Config& config, const std::vector<fs::path>& run_dirs,
                                   bool resume, int64_t max_steps, int64_t world = 2) {
  const int port = pdeq::distributed::free_loopback_port();
  std::mutex init_mutex;
  std::vector<RankOutcome> outcomes(static_cast<size_t>(world));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        ProcessGroup group(ProcessGroupOptions(r, world).master_port(port).timeout(std::chrono::seconds(60)));
        // The threads share LibTorch's global generator: seed and build one model at a time, so rank 0's
        // initial weights (which broadcast_module gives to all) are the same in every call.
        std::unique_lock<std::mutex> lock(init_mutex);
        torch::manual_seed(static_cast<uint64_t>(config.train.seed));
        const auto task_ptr = pdeq::experiment::make_image_task(config, torch::kCPU, {r, world});
        auto& task = *task_ptr;
        lock.unlock();
        auto optimizer =
            pdeq::train::make_optimizer(task.module(), pdeq::experiment::optimizer_options(config.train));
        auto options = pdeq::experiment::trainer_options(config);
        options.max_steps = max_steps;
        const fs::path dir = run_dirs[std::min<size_t>(static_cast<size_t>(r), run_dirs.size() - 1)];
        pdeq::train::Trainer trainer(task, *optimizer, pdeq::run::RunDirectory(dir), options, &group);
        auto& out = outcomes[static_cast<size_t>(r)];
        out.result = trainer.fit(resume);
        for (const auto& p : task.module().parameters()) out.parameters.push_back(p.detach().clone());
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return outcomes;
}

void expect_same_parameters(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

struct DistributedTrainingTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"ddp"};
  fs::path data = scratch.path() / "data";
  pdeq::config::Config config;
  void SetUp() override {
    SeedingFixture::SetUp();
    fs::create_directories(data);
    pdeq::test::write_tiny_cifar10(data, 32);  // 96 train (3 batches of 32), 64 val, 32 test
    pdeq::run::clear_stop_request();
    config = pdeq::test::tiny_cifar_config(data);
    config.train.threads = 1;
  }
  /// A run folder made as train_run's rank 0 makes it.
  fs::path new_run(const std::string& name) {
    auto run = pdeq::run::RunDirectory::create(scratch.path() / name, false);
    run.write_json(run.config_path(), pdeq::config::to_json(config));
    return run.root();
  }
};

// Rank 0 alone writes (rank 1 is pointed at a folder of its own, which must stay absent); both ranks hold the
// same parameters after every step; a run stopped mid-epoch and resumed by 2 ranks ends bitwise where the
// uninterrupted 2-rank run ends; a resume by another number of ranks is refused.
TEST_F(DistributedTrainingTest, RanksAgreeOnlyRankZeroWritesAndResumeIsExact) {
  const fs::path whole = new_run("whole"), rank1_dir = scratch.path() / "rank1_must_stay_empty";
  const auto uninterrupted = fit_ranks(config, {whole, rank1_dir}, /*resume=*/false, 0);
  ASSERT_TRUE(uninterrupted[0].result.finished);
  expect_same_parameters(uninterrupted[0].parameters, uninterrupted[1].parameters);
  EXPECT_FALSE(fs::exists(rank1_dir));
  const auto summary = pdeq::run::RunDirectory(whole).read_json(whole / "summary.json");
  EXPECT_EQ(summary.at("world_size"), 2);
  EXPECT_EQ(summary.at("test_samples"), 32);  // 16 per rank, summed
  EXPECT_EQ(pdeq::run::read_training_state(whole / "checkpoints" / "last.pt").world_size, 2);

  const fs::path split = new_run("split");
  const auto first = fit_ranks(config, {split}, /*resume=*/false, /*max_steps=*/4);  // epoch 2, step 1 of 3
  ASSERT_FALSE(first[0].result.finished);
  expect_same_parameters(first[0].parameters, first[1].parameters);
  const auto second = fit_ranks(config, {split}, /*resume=*/true, 0);
  ASSERT_TRUE(second[0].result.finished);
  expect_same_parameters(second[0].parameters, uninterrupted[0].parameters);
  expect_same_parameters(second[1].parameters, uninterrupted[1].parameters);

  const fs::path unfinished = new_run("unfinished");
  fit_ranks(config, {unfinished}, /*resume=*/false, /*max_steps=*/2);
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::check_resumable(unfinished, 1),
                          "written by a run of 2 data-parallel process(es), cannot continue with 1");
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::check_resumable(unfinished, 3), "resume with --nproc 2");
  PDEQ_ASSERT_THROWS_WITH(fit_ranks(config, {unfinished}, /*resume=*/true, 0, /*world=*/3),
                          "was trained by 2 data-parallel process(es) and cannot continue with 3");
}

TEST_F(DistributedTrainingTest, GraphTasksAndMultiSeedRunsRefuseSeveralRanks) {
  auto graph = config;
  graph.data.dataset = "cora";
  graph.model.name = "pde_gcn";
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_distributed(graph, 2),
                          "tiny: data.dataset: cora is a full-batch graph task");
  EXPECT_NO_THROW(pdeq::experiment::validate_distributed(graph, 1));
  auto seeds = config;
  seeds.train.seeds = 3;
  PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::validate_distributed(seeds, 2),
                          "train.seeds: a data-parallel run");
}

}  // namespace
