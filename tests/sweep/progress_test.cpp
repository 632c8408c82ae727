// The progress of a running point, read from hand-made run folders and logs as a `pdeq train` child leaves
// them mid-run: partial last lines, a metrics.jsonl behind the log, several seeds, nothing yet.
#include <pdeq/sweep/progress.h>

#include "sweep_support.h"

namespace fs = std::filesystem;

namespace pdeq::test {
namespace {

void write_config(const fs::path& dir, int64_t epochs, int64_t seeds = 1) {
  write_text(dir / "config.json", R"({"train": {"epochs": )" + std::to_string(epochs) + R"(, "seeds": )" +
                                      std::to_string(seeds) + "}}");
}

std::string metrics_rows(int64_t epochs) {
  std::string rows;
  for (int64_t e = 1; e <= epochs; ++e)
    rows += R"({"epoch": )" + std::to_string(e) +
            R"(, "train_loss": 1.0})"
            "\n";
  return rows;
}

TEST(SweepPointProgress, NothingWrittenYetIsStarting) {
  TempDir dir("point_progress_none");
  const auto progress = sweep::read_point_progress(dir.path() / "run", dir.path() / "run.log");
  EXPECT_FALSE(progress.known());
  EXPECT_EQ(progress.fraction(), 0.0);
  EXPECT_EQ(sweep::describe(progress), "starting");
}

TEST(SweepPointProgress, EpochsFromMetricsAndTheLogsLastCompleteLine) {
  TempDir dir("point_progress");
  const fs::path run = dir.path() / "run", log = dir.path() / "run.log";
  write_config(run, 200);
  // metrics.jsonl lags behind (written with each checkpoint); its last row may be cut short.
  write_text(run / "metrics.jsonl", metrics_rows(10) + R"({"epoch": 11, "train_lo)");
  auto progress = sweep::read_point_progress(run, log);
  EXPECT_EQ(progress.epochs, 200);
  EXPECT_EQ(progress.epoch, 10);
  EXPECT_EQ(progress.steps, 0);
  EXPECT_EQ(sweep::describe(progress), "epoch 11/200, 5%");

  // The log is fresher: epoch 12 finished, then steps of epoch 13; a line being written is ignored.
  std::string text = std::string(20000, 'x') + "\n";  // more than the tail that is read
  text += "[2024-01-01 10:00:00.000] [pdeq] [info] epoch 12/200: W4A4 lr 0.1 train loss 0.5 acc 80.00%\n";
  text +=
      "[2024-01-01 10:00:01.000] [pdeq] [info] epoch 13/200 step 50/100 loss 0.5 acc 80% 900 img/s ETA "
      "0:05\n";
  write_text(log, text + "[2024-01-01 10:00:02.000] [pdeq] [info] epoch 13/200 step 9");
  progress = sweep::read_point_progress(run, log);
  EXPECT_EQ(progress.epoch, 12);
  EXPECT_EQ(progress.step, 50);
  EXPECT_EQ(progress.steps, 100);
  EXPECT_NEAR(progress.fraction(), 12.5 / 200, 1e-12);
  EXPECT_EQ(sweep::describe(progress, 3723.0), "epoch 13/200, 6%, ETA 1:02:03");

  // A finished-epoch line after the steps.
  write_text(log, text + "[...] [pdeq] [info] epoch 13/200: W4A4 lr 0.1 train loss 0.4 acc 81.00%\n");
  progress = sweep::read_point_progress(run, log);
  EXPECT_EQ(progress.epoch, 13);
  EXPECT_EQ(progress.steps, 0);

  // The log alone (config.json not yet written) gives the epochs too.
  progress = sweep::read_point_progress(dir.path() / "other", log);
  EXPECT_EQ(progress.epochs, 200);
  EXPECT_EQ(progress.epoch, 13);

  // Garbage never throws; the last epoch done is 200 of 200.
  write_text(run / "metrics.jsonl", metrics_rows(200));
  write_text(log, "\n\n{not json\nepoch x/y step\n");
  progress = sweep::read_point_progress(run, log);
  EXPECT_EQ(progress.epoch, 200);
  EXPECT_EQ(progress.fraction(), 1.0);
  EXPECT_EQ(sweep::describe(progress), "epoch 200/200, 100%");
}

TEST(SweepPointProgress, SeveralSeedsReadTheSeedBeingTrained) {
  TempDir dir("point_progress_seeds");
  const fs::path run = dir.path() / "run", log = dir.path() / "run.log";
  write_config(run, 10, 3);
  write_text(run / "seed0" / "summary.json", "{}");
  write_text(run / "seed0" / "metrics.jsonl", metrics_rows(10));
  write_text(run / "seed1" / "metrics.jsonl", metrics_rows(4));
  // The log's last epoch line is the finished seed's, above the next seed's start: not this seed's.
  write_text(log, "[info] epoch 10/10: W4A4 lr 0.1\n[info] seed 2/3 (train.seed 2): " +
                      (run / "seed1").string() + "\n");
  auto progress = sweep::read_point_progress(run, log);
  EXPECT_EQ(progress.seed, 2);
  EXPECT_EQ(progress.epoch, 4);
  EXPECT_NEAR(progress.fraction(), (1 + 0.4) / 3, 1e-12);
  EXPECT_EQ(sweep::describe(progress), "seed 2/3, epoch 5/10, 46%");
}

}  // namespace
}  // namespace pdeq::test
