#include <pdeq/train/run_dir.h>

#include "train_fixtures.h"

#include <fstream>

using pdeq::train::RunDirectory;
namespace fs = std::filesystem;

TEST(RunDirectory, RefusesFinishedAndUnfinishedRunsWithoutForce) {
  pdeq::test::TempDir scratch("rundir");
  const fs::path root = scratch.path() / "run";
  auto run = RunDirectory::create(root, false);
  run.write_json(run.config_path(), {{"a", 1}});
  std::ofstream(run.last_checkpoint()) << "x";
  PDEQ_ASSERT_THROWS_WITH(RunDirectory::create(root, false), "--resume");
  run.write_json(run.summary_path(), {{"test_accuracy", 0.5}});
  PDEQ_ASSERT_THROWS_WITH(RunDirectory::create(root, false), "finished run");
  auto again = RunDirectory::create(root, true);
  EXPECT_FALSE(again.finished());
  EXPECT_FALSE(again.has_checkpoint());
}

TEST(RunDirectory, MetricsAppendTruncateAndCsv) {
  pdeq::test::TempDir scratch("metrics");
  auto run = RunDirectory::create(scratch.path(), false);
  for (int epoch = 1; epoch <= 3; ++epoch)
    run.append_metrics({{"epoch", epoch}, {"train_loss", 1.0 / epoch}});
  ASSERT_EQ(run.read_metrics().size(), 3u);
  run.truncate_metrics(3);  // keep epochs 1 and 2
  const auto rows = run.read_metrics();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1]["epoch"], 2);
  std::ifstream csv(run.metrics_csv_path());
  std::string header, first;
  std::getline(csv, header);
  std::getline(csv, first);
  EXPECT_EQ(header, "epoch,train_loss");
  EXPECT_EQ(first, "1,1.0");
}

TEST(RunDirectory, AtomicWriteLeavesNoTemporaryFiles) {
  pdeq::test::TempDir scratch("atomic");
  pdeq::train::atomic_write_file(scratch.path() / "sub" / "f.txt", "hello");
  std::ifstream in(scratch.path() / "sub" / "f.txt");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "hello");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(scratch.path() / "sub")) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(RunDirectory, OpenNeedsAConfig) {
  pdeq::test::TempDir scratch("open");
  PDEQ_ASSERT_THROWS_WITH(RunDirectory::open(scratch.path()), "no run at");
}
