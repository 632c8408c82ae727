#include <pdeq/run/run_dir.h>

#include "train_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

using pdeq::run::RunDirectory;
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

TEST(RunDirectory, MetricsWriteTruncateAndCsv) {
  pdeq::test::TempDir scratch("metrics");
  auto run = RunDirectory::create(scratch.path(), false);
  std::vector<nlohmann::json> written;
  for (int epoch = 1; epoch <= 3; ++epoch) written.push_back({{"epoch", epoch}, {"train_loss", 1.0 / epoch}});
  run.write_metrics(written);
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
  pdeq::run::atomic_write_file(scratch.path() / "sub" / "f.txt", "hello");
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

TEST(RunDirectory, AtomicWriteReplacesAndHandlesEmptyAndLargeContents) {
  pdeq::test::TempDir scratch("atomic_replace");
  const fs::path file = scratch.path() / "f.bin";
  pdeq::run::atomic_write_file(file, "first version");
  pdeq::run::atomic_write_file(file, "");
  EXPECT_EQ(fs::file_size(file), 0u);
  const std::string large(3 * 1024 * 1024 + 7, 'x');
  pdeq::run::atomic_write_file(file, large);
  EXPECT_EQ(fs::file_size(file), large.size());
  PDEQ_ASSERT_THROWS_WITH(pdeq::run::atomic_write_file(scratch.path() / "f.bin" / "below", "x"), "f.bin");
}

// A writer killed before its rename leaves "<name>.tmp.<pid>": removed when that process is gone, kept while
// it may still be renamed (this process, another live one).
TEST(RunDirectory, RemovesOnlyTemporariesOfDeadWriters) {
  pdeq::test::TempDir scratch("stale");
  auto run = RunDirectory::create(scratch.path(), false);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const std::string dead_pid = std::to_string(dead);
  for (const fs::path& p :
       std::vector<fs::path>{run.last_checkpoint().string() + ".tmp." + dead_pid,
                             run.metrics_path().string() + ".tmp." + dead_pid,
                             run.metrics_path().string() + ".tmp." + std::to_string(::getpid()),
                             run.metrics_path().string() + ".tmp." + std::to_string(::getppid()),
                             run.root() / "notes.tmp.txt"}) {
    std::ofstream(p) << "partial";
  }
  EXPECT_EQ(run.remove_stale_temporaries(), 2);
  EXPECT_FALSE(fs::exists(run.last_checkpoint().string() + ".tmp." + dead_pid));
  EXPECT_FALSE(fs::exists(run.metrics_path().string() + ".tmp." + dead_pid));
  EXPECT_TRUE(fs::exists(run.metrics_path().string() + ".tmp." + std::to_string(::getpid())));
  EXPECT_TRUE(fs::exists(run.metrics_path().string() + ".tmp." + std::to_string(::getppid())));
  EXPECT_TRUE(fs::exists(run.root() / "notes.tmp.txt"));  // not ours: no pid suffix
  EXPECT_FALSE(run.has_checkpoint());                     // a temporary is never taken for the file
  EXPECT_EQ(run.remove_stale_temporaries(), 0);
}

TEST(RunDirectory, TruncateRewritesTheCsvEvenWhenNoRowIsDropped) {
  pdeq::test::TempDir scratch("truncate_csv");
  auto run = RunDirectory::create(scratch.path(), false);
  run.write_metrics({{{"epoch", 1}, {"train_loss", 0.5}}});
  std::ofstream(run.metrics_csv_path()) << "stale\n";  // as if killed between metrics.jsonl and metrics.csv
  run.truncate_metrics(2);
  std::ifstream csv(run.metrics_csv_path());
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "epoch,train_loss");
}

// Found by tests/fuzz/run_dir_fuzz.cpp (first 4 inputs): a damaged metrics.jsonl line let nlohmann's
// parse_error escape read_metrics (and so `pdeq train --resume`); it must be the layer's runtime_error naming
// the file and the line. A row that is valid JSON but not an object is rejected the same way.
TEST(RunDirectory, DamagedMetricsLineIsAnErrorNamingFileAndLine) {
  pdeq::test::TempDir scratch("damaged_metrics");
  auto run = RunDirectory::create(scratch.path(), false);
  std::ofstream(run.metrics_path()) << "{\"epoch\": 1, \"val_acc\": null}\n"
                                    << "{\"epoch\": 2, \"val_acc\": null\x15 \"seconds\": 1.5}\n";
  try {
    run.read_metrics();
    FAIL() << "expected a runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl: line 2: expected one JSON object per line"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(run.metrics_path()) << "{\"epoch\": 1}\n[1, 2]\n";
  PDEQ_ASSERT_THROWS_WITH(run.read_metrics(), "metrics.jsonl: line 2");
  // Rows whose epoch is not an integer count as epoch 0 when a resume truncates.
  std::ofstream(run.metrics_path()) << "{\"epoch\": \"x\"}\n{\"epoch\": 3}\n";
  run.truncate_metrics(2);
  EXPECT_EQ(run.read_metrics().size(), 1u);
}
