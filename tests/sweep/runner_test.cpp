// The sweep runner with a stand-in for `pdeq train` (a shell script): skip and resume, failure isolation,
// stop and continue, a changed sweep, threads per job.
#include <pdeq/sweep/runner.h>

#include "sweep_support.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace pdeq::test {
namespace {

/// Behaves like `pdeq train --config C --out D` / `--resume D` on run folders, driven by the config:
/// lr 0.5 fails (exit 1 with an error line), epochs 7 is interrupted once (checkpoint, exit 130), epochs 9
/// waits for SIGTERM (then checkpoints, exit 130), epochs 11 logs progress in epoch 3 and waits for a file
/// "release" in its run folder; everything else finishes with a summary.
constexpr const char* kFakeTrain = R"SH(#!/bin/bash
if [ "$2" = "--config" ]; then dir=$5; mkdir -p "$dir/checkpoints"; cp "$3" "$dir/config.json"; else dir=$3; fi
echo "$2" >> "$dir/calls"
echo "threads $(grep -o '"threads": [0-9]*' "$dir/config.json")" >> "$dir/calls"
if grep -q '"lr": 0.5' "$dir/config.json"; then echo "some log line"; echo "pdeq: error: boom" >&2; exit 1; fi
if [ "$2" = "--config" ] && grep -q '"epochs": 7' "$dir/config.json"; then touch "$dir/checkpoints/last.pt"; exit 130; fi
if [ "$2" = "--config" ] && grep -q '"epochs": 9' "$dir/config.json"; then
  trap 'kill $! 2>/dev/null; touch "$dir/checkpoints/last.pt"; exit 130' TERM
  touch "$dir/started"
  sleep 60 & wait
  exit 0
fi
if [ "$2" = "--config" ] && grep -q '"epochs": 11' "$dir/config.json"; then
  echo "[info] epoch 3/11 step 5/10 loss 1.0 ETA 0:05"; printf "[info] epoch 3/11 st"
  while [ ! -e "$dir/release" ]; do sleep 0.1; done
fi
echo '{"test_accuracy": 0.5, "best_val_accuracy": 0.4, "wall_seconds": 1.0, "params": 10}' > "$dir/summary.json"
)SH";

std::string read_all(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct SweepRunnerTest : ::testing::Test {
  TempDir dir{"sweep_runner"};
  sweep::RunnerOptions options;
  void SetUp() override {
    write_text(dir.path() / "fake_pdeq", kFakeTrain);
    ::chmod((dir.path() / "fake_pdeq").c_str(), 0755);
    write_text(dir.path() / "base.json", cora_base_json());
    const std::string fake = (dir.path() / "fake_pdeq").string();
    options.command_line = [fake](const sweep::PointLaunch& launch) {
      if (launch.config)
        return std::vector<std::string>{
            fake, "train", "--config", launch.config->string(), "--out", launch.run_dir.string()};
      return std::vector<std::string>{fake, "train", "--resume", launch.run_dir.string()};
    };
    options.cores = 4;
  }
  std::vector<sweep::Point> points(const std::string& grid) {
    write_text(dir.path() / "s.json", R"({"base": "base.json", "grid": )" + grid + "}");
    return sweep::expand_sweep(sweep::load_sweep(dir.file("s.json")));
  }
  fs::path out() const { return dir.path() / "out"; }
};

TEST_F(SweepRunnerTest, FinishedPointsAreSkippedAndInterruptedOnesResumed) {
  const auto p = points(R"({"train.epochs": [3, 7]})");
  options.jobs = 2;
  auto first = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(first.total, 2);
  EXPECT_EQ(first.done, 1);
  EXPECT_EQ(first.interrupted, 1);
  EXPECT_EQ(first.failed, 0);
  EXPECT_EQ(sweep::point_state(p[0], out() / p[0].name), sweep::PointState::kDone);
  EXPECT_EQ(sweep::point_state(p[1], out() / p[1].name), sweep::PointState::kResume);

  options.dry_run = true;
  const auto plan = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(plan.plan[0]["state"], "done");
  EXPECT_EQ(plan.plan[1]["state"], "resume");

  options.dry_run = false;
  auto second = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(second.done, 2);
  EXPECT_EQ(second.interrupted, 0);
  // Threads per job: 4 cores / 2 jobs -> 2, but the config's 1 is kept (<= the share).
  EXPECT_EQ(read_all(out() / p[0].name / "calls"), "--config\nthreads \"threads\": 1\n");
  EXPECT_EQ(read_all(out() / p[1].name / "calls"),
            "--config\nthreads \"threads\": 1\n--resume\nthreads \"threads\": 1\n");
  const std::string status = read_all(out() / "sweep_status.jsonl");
  EXPECT_NE(status.find(R"("name":"train.epochs=7","seconds")"), std::string::npos) << status;
  EXPECT_NE(status.find(R"("status":"interrupted")"), std::string::npos) << status;
}

TEST_F(SweepRunnerTest, AFailedPointIsRecordedAndDoesNotStopTheOthers) {
  const auto p = points(R"({"train.lr": [0.1, 0.5, 0.2]})");
  options.jobs = 1;
  const auto outcome = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(outcome.done, 2);
  EXPECT_EQ(outcome.failed, 1);
  EXPECT_TRUE(fs::exists(out() / "train.lr=0.2" / "summary.json"));
  EXPECT_FALSE(fs::exists(out() / "train.lr=0.5" / "summary.json"));
  const std::string status = read_all(out() / "sweep_status.jsonl");
  EXPECT_NE(status.find(R"("error":"some log line\npdeq: error: boom","exit_code":1,"name":"train.lr=0.5")"),
            std::string::npos)
      << status;
  EXPECT_NE(read_all(out() / "logs" / "train.lr=0.5.log").find("pdeq: error: boom"), std::string::npos);

  // Again: the finished points are skipped, the failed one is tried again.
  const auto again = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(again.done, 2);
  EXPECT_EQ(again.failed, 1);
  EXPECT_EQ(read_all(out() / "train.lr=0.1" / "calls"), "--config\nthreads \"threads\": 1\n");
}

TEST_F(SweepRunnerTest, AStopCheckpointsTheRunningPointsStartsNoMoreAndASecondSweepContinues) {
  const auto p = points(R"({"train.epochs": [9, 3]})");
  options.jobs = 1;
  sweep::SweepOutcome outcome;
  std::thread sweep_thread([&] { outcome = sweep::run_sweep(p, out(), options); });
  // Wait (bounded) until the first point runs, then stop the sweep as `kill` would.
  for (int i = 0; i < 300 && !fs::exists(out() / "train.epochs=9" / "started"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(::getpid(), SIGTERM);
  sweep_thread.join();
  EXPECT_TRUE(outcome.stopped);
  EXPECT_EQ(outcome.interrupted, 1);
  EXPECT_EQ(outcome.done, 0);
  EXPECT_FALSE(fs::exists(out() / "train.epochs=3"));  // never started
  EXPECT_TRUE(fs::exists(out() / "train.epochs=9" / "checkpoints" / "last.pt"));

  const auto resumed = sweep::run_sweep(p, out(), options);
  EXPECT_EQ(resumed.done, 2);
  EXPECT_FALSE(resumed.stopped);
  EXPECT_EQ(read_all(out() / "train.epochs=9" / "calls"),
            "--config\nthreads \"threads\": 1\n--resume\nthreads \"threads\": 1\n");
}

TEST_F(SweepRunnerTest, AFolderOfAChangedSweepIsRefusedBeforeAnythingRuns) {
  auto p = points(R"({"train.epochs": [3, 4]})");
  sweep::run_sweep(p, out(), options);
  // Same names, different settings: the sweep file changed under the folder.
  write_text(dir.path() / "base.json",
             cora_base_json().replace(cora_base_json().find("\"lr\": 0.01"), 10, "\"lr\": 0.02"));
  p = sweep::expand_sweep(sweep::load_sweep(dir.file("s.json")));
  PDEQ_ASSERT_THROWS_WITH(
      sweep::run_sweep(p, out(), options),
      "train.epochs=3/config.json: train.lr: the run folder holds 0.01 but the sweep's point "
      "train.epochs=3 has 0.02");
}

// While points run, a line every progress_seconds names them with their epoch, percentage and ETA. (The
// library logs through its own spdlog, so its output is captured at the file descriptors.)
TEST_F(SweepRunnerTest, RunningPointsProgressIsLoggedPeriodically) {
  const auto p = points(R"({"train.epochs": [11]})");
  options.progress_seconds = 0.2;
  const fs::path log = out() / "logs" / "train.epochs=11.log";
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  sweep::SweepOutcome outcome;
  std::thread sweep_thread([&] { outcome = sweep::run_sweep(p, out(), options); });
  // Once the point has logged its progress, a few periods pass before it is let go.
  for (int i = 0; i < 300 && read_all(log).find("step 5/10") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  write_text(out() / "train.epochs=11" / "release", "");
  sweep_thread.join();
  const std::string text = testing::internal::GetCapturedStdout() + testing::internal::GetCapturedStderr();
  EXPECT_EQ(outcome.done, 1);
  EXPECT_NE(text.find("sweep: 0/1 done, elapsed 0:0"), std::string::npos) << text;
  // Epoch 3 of 11 at step 5 of 10: 2.5 / 11 done; the partly written line after it is not read.
  EXPECT_NE(text.find(", running: train.epochs=11 (epoch 3/11, 22%, ETA "), std::string::npos) << text;
}

TEST(SweepThreads, CoresAreSplitBetweenJobs) {
  EXPECT_EQ(sweep::threads_per_job(0, 16, 4), 4);
  EXPECT_EQ(sweep::threads_per_job(0, 2, 2), 1);
  EXPECT_EQ(sweep::threads_per_job(0, 2, 4), 1);   // at least one
  EXPECT_EQ(sweep::threads_per_job(1, 16, 2), 1);  // a config asking for fewer keeps them
  EXPECT_EQ(sweep::threads_per_job(8, 16, 4), 4);  // ... but never more than its share
}

}  // namespace
}  // namespace pdeq::test
