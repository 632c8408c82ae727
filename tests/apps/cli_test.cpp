// The `pdeq` command line as users (and scripts) see it, run as a real child process: exit codes, one JSON
// line on stdout for --json, config errors before anything is created, and crash safety: a run killed with
// SIGKILL at any point resumes to the same weights as an uninterrupted run.
#include <pdeq/compat/features.h>
#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/onnx_export.h>
#include <pdeq/distributed/launch.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/tensorboard.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "train_support.h"

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int exit_code = -1;  ///< when the process exited
  int signal = 0;      ///< when a signal killed it
  std::string out, err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Child {
  pid_t pid = -1;
  fs::path out, err;
};

/// Starts build/pdeq with `args`, stdout and stderr to <scratch>/<log>.{out,err}.txt; `crash_at` sets
/// PDEQ_CRASH_AT (pdeq::run::crash_point) in its environment.
Child start_pdeq(const fs::path& scratch, const std::vector<std::string>& args,
                 const std::string& crash_at = "", const std::string& log = "std") {
  std::vector<std::string> arg_strings = {PDEQ_CLI};
  arg_strings.insert(arg_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("PDEQ_CRASH_AT=", 0) != 0 && entry.rfind("OMP_NUM_THREADS=", 0) != 0)
      env_strings.push_back(entry);
  }
  env_strings.push_back("OMP_NUM_THREADS=1");
  if (!crash_at.empty()) env_strings.push_back("PDEQ_CRASH_AT=" + crash_at);
  std::vector<char*> argv, envp;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const fs::path out = scratch / (log + "out.txt"), err = scratch / (log + "err.txt");
  // Opened before fork: between fork and exec only async-signal-safe calls.
  const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  return {pid, out, err};
}

Outcome wait_pdeq(const Child& child) {
  Outcome outcome;
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  outcome.out = read_file(child.out);
  outcome.err = read_file(child.err);
  return outcome;
}

/// Runs build/pdeq with `args` to the end.
Outcome run_pdeq(const fs::path& scratch, const std::vector<std::string>& args,
                 const std::string& crash_at = "") {
  return wait_pdeq(start_pdeq(scratch, args, crash_at));
}

/// A run of a few seconds: resnet20 W4A4 on 32 tiny CIFAR images, 2 epochs of 2 steps, one thread.
nlohmann::json tiny_config(const fs::path& data) {
  return {{"model", {{"name", "resnet20"}}},
          {"data",
           {{"dataset", "cifar10"},
            {"root", data.string()},
            {"val_size", 16},
            {"limit_train", 32},
            {"limit_test", 16},
            {"batch_size", 16},
            {"eval_batch_size", 16}}},
          {"quant", {{"weight_bits", 4}, {"act_bits", 4}}},
          {"train", {{"epochs", 2}, {"lr", 0.05}, {"threads", 1}, {"log_every", 1000}}}};
}

std::vector<torch::Tensor> final_weights(const fs::path& run) {
  const auto config = pdeq::config::load_config((run / "config.json").string());
  auto model = pdeq::models::make_model(
      config.model.name,
      pdeq::experiment::model_options(config, pdeq::data::dataset_info(config.data.dataset)));
  pdeq::run::load_checkpoint(run / "checkpoints" / "last.pt", *model, nullptr);
  std::vector<torch::Tensor> tensors = model->parameters();
  for (const auto& b : model->buffers()) tensors.push_back(b);
  return tensors;
}

/// How often each (tag, step) occurs in a run's event files.
std::map<std::pair<std::string, int64_t>, int> event_steps(const fs::path& run) {
  std::map<std::pair<std::string, int64_t>, int> steps;
  for (const auto& file : pdeq::run::event_files(run / "tensorboard")) {
    for (const auto& event : pdeq::run::read_event_file(file)) {
      if (event.file_version.empty()) ++steps[{event.tag, event.step}];
    }
  }
  return steps;
}

std::vector<std::string> temporaries(const fs::path& run) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(run)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos)
      found.push_back(entry.path().string());
  }
  return found;
}

class CliTest : public pdeq::test::SeedingFixture {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new pdeq::test::TempDir("cli");
    fs::create_directories(data());
    pdeq::test::write_tiny_cifar10(data(), 32);
    std::ofstream(config_path()) << tiny_config(data()).dump(2);
    // One uninterrupted run, the reference of the crash tests and the subject of eval/analyze.
    const Outcome whole =
        run_pdeq(scratch_->path(), {"train", "--config", config_path(), "--out", whole_run()});
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
  }
  static void TearDownTestSuite() {
    delete scratch_;
    scratch_ = nullptr;
  }
  static fs::path data() { return scratch_->path() / "data"; }
  static std::string config_path() { return (scratch_->path() / "tiny.json").string(); }
  static std::string whole_run() { return (scratch_->path() / "whole").string(); }
  static fs::path scratch() { return scratch_->path(); }

  static pdeq::test::TempDir* scratch_;
};
pdeq::test::TempDir* CliTest::scratch_ = nullptr;

/// stdout is exactly one line, and that line is a JSON object.
void expect_one_json_line(const Outcome& o, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  ASSERT_FALSE(o.out.empty());
  EXPECT_EQ(o.out.find('\n'), o.out.size() - 1) << "stdout: " << o.out;
  const auto value = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(value.is_object()) << "stdout: " << o.out;
}

TEST_F(CliTest, JsonFlagPrintsExactlyOneJsonLineOnStdout) {
  expect_one_json_line(run_pdeq(scratch(), {"eval", "--run", whole_run(), "--json"}), "eval");
  expect_one_json_line(run_pdeq(scratch(), {"eval", "--run", whole_run(), "--abits", "32", "--json"}),
                       "eval --abits 32");
  expect_one_json_line(run_pdeq(scratch(), {"params", "--model", "resnet20", "--json"}), "params");
  expect_one_json_line(
      run_pdeq(scratch(), {"bench", "train", "--config", config_path(), "--set", "data.batch_size=2",
                           "--steps", "1", "--warmup", "0", "--rounds", "1", "--json"}),
      "bench train");
  expect_one_json_line(run_pdeq(scratch(), {"analyze", "stability", "--run", whole_run(), "--max-batches",
                                            "1", "--out", (scratch() / "stab").string(), "--json"}),
                       "analyze stability");
}

TEST_F(CliTest, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_pdeq(scratch(), {}).exit_code, 2);                    // no subcommand
  EXPECT_EQ(run_pdeq(scratch(), {"train", "--bogus"}).exit_code, 2);  // unknown option
  EXPECT_EQ(run_pdeq(scratch(), {"eval"}).exit_code, 2);              // --run missing
  EXPECT_EQ(run_pdeq(scratch(), {"params", "--model", "resnet20", "--wbits", "1"}).exit_code, 2);
  EXPECT_EQ(run_pdeq(scratch(), {"train", "--config", "/nonexistent.json", "--out", "x"}).exit_code, 2);
  EXPECT_EQ(run_pdeq(scratch(), {"train", "--resume", whole_run(), "--set", "train.epochs=3"}).exit_code, 2);
  EXPECT_EQ(run_pdeq(scratch(), {"--help"}).exit_code, 0);
  // A runtime error (no run there) is 1.
  EXPECT_EQ(run_pdeq(scratch(), {"eval", "--run", (scratch() / "nowhere").string()}).exit_code, 1);
  // An option value the run cannot satisfy is a usage error.
  const Outcome bad_layer = run_pdeq(scratch(), {"analyze", "tv", "--run", whole_run(), "--layer", "bogus",
                                                 "--out", (scratch() / "tv").string()});
  EXPECT_EQ(bad_layer.exit_code, 2) << bad_layer.err;
  EXPECT_NE(bad_layer.err.find("layer must name an activation quantizer"), std::string::npos)
      << bad_layer.err;
  EXPECT_FALSE(fs::exists(scratch() / "tv"));  // nothing created
}

// A finished run is never overwritten: a usage error (exit 2) before any data is read, the run untouched.
TEST_F(CliTest, TrainingIntoAFinishedRunFolderIsAUsageError) {
  const auto summary = fs::path(whole_run()) / "summary.json";
  const auto written = fs::last_write_time(summary);
  const Outcome o = run_pdeq(scratch(), {"train", "--config", config_path(), "--out", whole_run()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("holds a finished run (summary.json); pass --force"), std::string::npos) << o.err;
  EXPECT_EQ(fs::last_write_time(summary), written);
}

// Graph models are counted as image models are; --in-channels gives their node features.
TEST_F(CliTest, ParamsCountsGraphModels) {
  const Outcome o =
      run_pdeq(scratch(), {"params", "--model", "gcn", "--in-channels", "1433", "--num-classes", "7", "--set",
                           "model.channels=16", "--set", "model.layers=2", "--json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  // Kipf and Welling's GCN on Cora: 1433 x 16 + 16 + 16 x 7 + 7 = 23,063 weights and biases.
  EXPECT_EQ(nlohmann::json::parse(o.out).at("params"), 23063);
  const Outcome unused = run_pdeq(scratch(), {"params", "--model", "gcn", "--set", "model.stable=true"});
  EXPECT_EQ(unused.exit_code, 2) << unused.err;
  EXPECT_NE(unused.err.find("model.stable: has no effect on gcn"), std::string::npos) << unused.err;
}

TEST_F(CliTest, UnknownModelIsAUsageErrorListingTheKnownNames) {
  const Outcome o = run_pdeq(scratch(), {"params", "--model", "resnet21"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("resnet21"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("resnet20"), std::string::npos) << o.err;  // the known names
  EXPECT_TRUE(o.out.empty()) << o.out;
}

// Review defects: these passed validation and failed later with exit 1 (after the run folder was made).
TEST_F(CliTest, RegistryAndBitWidthErrorsAreConfigErrorsBeforeTheRunFolderExists) {
  const std::string out = (scratch() / "never").string();
  struct Case {
    std::string set, message;
  };
  for (const auto& c :
       {Case{"model.name=resnet21", "model.name: expected one of resnet18, resnet20"},
        Case{"model.name=gcn", "model.name: expected one of"},
        Case{"quant.weight_bits=1", "quant.weight_bits: expected an integer in [2, 32], got 1"},
        // A key the model does not read; the error names the --set, not the file.
        Case{"model.layers=3", "--set model.layers=3: model.layers: has no effect on resnet20"}}) {
    SCOPED_TRACE(c.set);
    const Outcome o = run_pdeq(scratch(), {"train", "--config", config_path(), "--set", c.set, "--out", out});
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_NE(o.err.find("pdeq: config error: "), std::string::npos) << o.err;
    EXPECT_NE(o.err.find(c.message), std::string::npos) << o.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

// `pdeq export --format onnx` of the tiny run writes a file that onnx's parser reads and its checker (and
// strict shape inference) passes; a build without libonnx-dev refuses with a usage error and writes nothing.
TEST_F(CliTest, ExportOnnxWritesACheckedModel) {
  const fs::path out = scratch() / "tiny.onnx";
  const Outcome o = run_pdeq(scratch(), {"export", "--run", whole_run(), "--out", out.string(), "--format",
                                         "onnx", "--calibration-batches", "1"});
  if (!pdeq::deploy::onnx_export_built()) {
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_NE(o.err.find("built without ONNX support"), std::string::npos) << o.err;
    EXPECT_FALSE(fs::exists(out));
    return;
  }
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto report = nlohmann::json::parse(o.out);
  EXPECT_EQ(report["format"], "onnx");
  EXPECT_EQ(report["bytes"].get<uintmax_t>(), fs::file_size(out));
  const std::string bytes = read_file(out);
  EXPECT_NO_THROW(pdeq::deploy::check_onnx(bytes, out.string()));
  // resnet20's last convolution, its int8 codes an initializer of the model.
  EXPECT_NE(bytes.find("layer3.2.branch/weight_codes"), std::string::npos);
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

// An exported file whose meta is gone (renamed, checksum recomputed) is a damaged file: `bench infer` and
// `eval --model` refuse it on load with exit 1 (a runtime error), naming the file and meta.
TEST_F(CliTest, AnIntegerModelWithoutMetaExitsWithOne) {
  const fs::path good = scratch() / "tiny.pdeqint", bad = scratch() / "no_meta.pdeqint";
  const Outcome exported = run_pdeq(
      scratch(), {"export", "--run", whole_run(), "--out", good.string(), "--calibration-batches", "1"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::string bytes = read_file(good);
  const auto at = bytes.find("{\"meta\":{");
  ASSERT_EQ(at, 24u);  // the graph description starts with it
  bytes.replace(at + 2, 4, "mxta");
  pdeq::deploy::reseal_int_file(bytes);
  std::ofstream(bad, std::ios::binary) << bytes;
  for (const auto& args : {std::vector<std::string>{"bench", "infer", "--model", bad.string()},
                           std::vector<std::string>{"eval", "--model", bad.string()}}) {
    SCOPED_TRACE(args[0]);
    const Outcome o = run_pdeq(scratch(), args);
    EXPECT_EQ(o.exit_code, 1) << o.err;
    EXPECT_NE(o.err.find(bad.string() + ": meta: missing"), std::string::npos) << o.err;
  }
}

// `eval --model FILE --compare-run R` compares layer by layer only with the run FILE came from: a run of
// another model setting or bit width is a usage error naming both, not a silent comparison.
TEST_F(CliTest, CompareRunRefusesARunOfAnotherModel) {
  const fs::path file = scratch() / "compare.pdeqint";
  const Outcome exported = run_pdeq(
      scratch(), {"export", "--run", whole_run(), "--out", file.string(), "--calibration-batches", "1"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const Outcome same =
      run_pdeq(scratch(), {"eval", "--model", file.string(), "--compare-run", whole_run(), "--json"});
  EXPECT_EQ(same.exit_code, 0) << same.err;
  const fs::path other = scratch() / "other_model";
  fs::create_directories(other);
  auto config = nlohmann::json::parse(read_file(fs::path(whole_run()) / "config.json"));
  config["model"]["stable"] = true;
  std::ofstream(other / "config.json") << config.dump(2);
  const Outcome o = run_pdeq(scratch(), {"eval", "--model", file.string(), "--compare-run", other.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("--compare-run " + other.string() +
                       " trained resnet20 on cifar10 (W4A4) with other "
                       "model settings, but " +
                       file.string() + " holds resnet20 on cifar10 (W4A4)"),
            std::string::npos)
      << o.err;
}

// SIGKILL at many points of a run (between steps, at an epoch's end, in the middle of writing a file, with a
// file complete but not yet renamed, between metrics and checkpoint), then `pdeq train --resume`: the final
// weights, the metrics rows and the summary equal the uninterrupted run's, and no temporary file is left.
TEST_F(CliTest, KilledRunsResumeToTheUninterruptedResult) {
  const auto expected = final_weights(whole_run());
  pdeq::run::RunDirectory whole(whole_run());
  const auto expected_rows = whole.read_metrics();
  ASSERT_EQ(expected_rows.size(), 2u);
  const auto expected_summary = whole.read_json(whole.summary_path());
  // Steps: 2 per epoch. Atomic writes of a fresh run: 1 config.json; after epoch 1: 2 best.pt,
  // 3 metrics.jsonl, 4 metrics.csv (metrics on disk, no checkpoint yet), 5 last.pt, 6 train_curves.png; then
  // epoch 2's (no best.pt: epoch 1 stays the best) and summary.json. The last rename before summary.json is
  // epoch 2's plot, or its last.pt in a build without OpenCV (no plots).
  const std::string last_before_summary = pdeq::compat::opencv_built() ? "rename:10" : "rename:8";
  for (const std::string crash :
       {"step:1", "step:3", "write:2", "rename:4", "write:5", "rename:5", last_before_summary.c_str()}) {
    SCOPED_TRACE(crash);
    std::string name = "killed_" + crash;
    name[name.find(':')] = '_';
    const fs::path dir = scratch() / name;
    const Outcome killed =
        run_pdeq(scratch(), {"train", "--config", config_path(), "--out", dir.string()}, crash);
    ASSERT_EQ(killed.signal, SIGKILL) << "exit " << killed.exit_code << "\n" << killed.err;
    const Outcome resumed = run_pdeq(scratch(), {"train", "--resume", dir.string()});
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    const auto weights = final_weights(dir);
    ASSERT_EQ(weights.size(), expected.size());
    for (size_t i = 0; i < weights.size(); ++i) EXPECT_TRUE(torch::equal(weights[i], expected[i])) << i;
    pdeq::run::RunDirectory run(dir);
    const auto rows = run.read_metrics();
    ASSERT_EQ(rows.size(), expected_rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i]["epoch"], expected_rows[i]["epoch"]);
      EXPECT_EQ(rows[i]["train_loss"], expected_rows[i]["train_loss"]);
      EXPECT_EQ(rows[i]["val_acc"], expected_rows[i]["val_acc"]);
    }
    const std::string csv = read_file(run.metrics_csv_path());
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;  // header + 2 rows
    const auto summary = run.read_json(run.summary_path());
    EXPECT_EQ(summary["test_accuracy"], expected_summary["test_accuracy"]);
    EXPECT_EQ(summary["best_epoch"], expected_summary["best_epoch"]);
    EXPECT_TRUE(temporaries(dir).empty()) << temporaries(dir).front();
    // TensorBoard: what the killed session wrote after its last checkpoint is gone; each step is there once.
    EXPECT_EQ(event_steps(dir), event_steps(whole_run()));
  }
}

// Killed twice, the second time while resuming: still the same result.
TEST_F(CliTest, ARunKilledWhileResumingStillResumes) {
  const fs::path dir = scratch() / "killed_twice";
  ASSERT_EQ(run_pdeq(scratch(), {"train", "--config", config_path(), "--out", dir.string()}, "step:2").signal,
            SIGKILL);
  ASSERT_EQ(run_pdeq(scratch(), {"train", "--resume", dir.string()}, "rename:2").signal, SIGKILL);
  const Outcome resumed = run_pdeq(scratch(), {"train", "--resume", dir.string()});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto expected = final_weights(whole_run());
  const auto weights = final_weights(dir);
  ASSERT_EQ(weights.size(), expected.size());
  for (size_t i = 0; i < weights.size(); ++i) EXPECT_TRUE(torch::equal(weights[i], expected[i])) << i;
  EXPECT_EQ(pdeq::run::RunDirectory(dir).read_metrics().size(), 2u);
}

}  // namespace

// Data parallelism as users start it: `--nproc 2` forks its ranks; a resume must use as many ranks.
TEST_F(CliTest, DataParallelRunStopsAndResumesWithItsOwnWorldSizeOnly) {
  const std::string run = (scratch() / "ddp").string();
  const Outcome first = run_pdeq(
      scratch(), {"train", "--config", config_path(), "--nproc", "2", "--out", run, "--max-steps", "3"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // The hint is a command that works: with the run's own --nproc.
  EXPECT_NE(first.err.find("continue with: pdeq train --resume " + run + " --nproc 2"), std::string::npos)
      << first.err;
  EXPECT_FALSE(fs::exists(fs::path(run) / "summary.json"));
  EXPECT_EQ(pdeq::run::read_training_state(fs::path(run) / "checkpoints" / "last.pt").world_size, 2);

  const Outcome alone = run_pdeq(scratch(), {"train", "--resume", run});
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_NE(alone.err.find("cannot continue with 1"), std::string::npos) << alone.err;
  EXPECT_NE(alone.err.find("resume with --nproc 2"), std::string::npos) << alone.err;

  const Outcome resumed = run_pdeq(scratch(), {"train", "--resume", run, "--nproc", "2"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto summary = nlohmann::json::parse(resumed.out);  // rank 0's summary only: one JSON document
  EXPECT_EQ(summary.at("world_size"), 2);
  EXPECT_EQ(summary.at("epochs_run"), 2);
  EXPECT_TRUE(temporaries(run).empty());
}

TEST_F(CliTest, DataParallelUsageErrorsExitWithTwoBeforeAnyRankStarts) {
  const std::string graph_run = (scratch() / "graph_ddp").string();
  const Outcome graph =
      run_pdeq(scratch(), {"train", "--config", pdeq::test::source_dir() + "/configs/cora_gcn_fp.json",
                           "--nproc", "2", "--out", graph_run});
  EXPECT_EQ(graph.exit_code, 2);
  EXPECT_NE(graph.err.find("cora is a full-batch graph task"), std::string::npos) << graph.err;
  EXPECT_FALSE(fs::exists(graph_run));
  // Every rank takes a part of every batch: a batch smaller than the ranks is a config error.
  const Outcome small = run_pdeq(scratch(), {"train", "--config", config_path(), "--nproc", "2", "--set",
                                             "data.batch_size=1", "--out", graph_run});
  EXPECT_EQ(small.exit_code, 2) << small.err;
  EXPECT_NE(small.err.find("--set data.batch_size=1: data.batch_size: each of the 2 data-parallel ranks"),
            std::string::npos)
      << small.err;
  EXPECT_FALSE(fs::exists(graph_run));
  const std::vector<std::vector<std::string>> bad = {
      {"--rank", "0", "--world-size", "2", "--master", "localhost"},        // no port
      {"--rank", "2", "--world-size", "2", "--master", "127.0.0.1:29500"},  // rank out of range
      {"--rank", "0", "--master", "127.0.0.1:29500"},                       // --world-size missing
      {"--nproc", "2", "--rank", "0", "--world-size", "2", "--master", "127.0.0.1:2"}};
  for (const auto& extra : bad) {
    std::vector<std::string> args = {"train", "--config", config_path(), "--out",
                                     (scratch() / "bad").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_EQ(run_pdeq(scratch(), args).exit_code, 2) << extra[1];
  }
  EXPECT_FALSE(fs::exists(scratch() / "bad"));
}

// A rank killed mid-run (SIGKILL at its 3rd step) makes the survivor fail with an error naming the failed
// collective instead of waiting for ever; the checkpoint rank 0 wrote before is intact.
TEST_F(CliTest, ADeadRankMakesTheOtherExitWithAnErrorAndLeavesNoCorruptCheckpoint) {
  const std::string run = (scratch() / "ddp_dead").string();
  const std::string master = "127.0.0.1:" + std::to_string(pdeq::distributed::free_loopback_port());
  const std::vector<std::string> common = {"train",
                                           "--config",
                                           config_path(),
                                           "--out",
                                           run,
                                           "--world-size",
                                           "2",
                                           "--master",
                                           master,
                                           "--dist-timeout",
                                           "20",
                                           "--set",
                                           "train.checkpoint_every=1"};
  auto with_rank = [&](const char* rank) {
    auto args = common;
    args.insert(args.end(), {"--rank", rank});
    return args;
  };
  const Child rank0 = start_pdeq(scratch(), with_rank("0"), "", "rank0");
  const Child rank1 = start_pdeq(scratch(), with_rank("1"), "step:3", "rank1");
  const Outcome dead = wait_pdeq(rank1), survivor = wait_pdeq(rank0);
  EXPECT_EQ(dead.signal, SIGKILL) << dead.err;
  EXPECT_EQ(survivor.exit_code, 1) << survivor.err;
  EXPECT_NE(survivor.err.find("failed on rank 0 of 2"), std::string::npos) << survivor.err;
  // Epoch 1 (2 steps) ended with a checkpoint before rank 1 died in epoch 2.
  const auto checkpoint = fs::path(run) / "checkpoints" / "last.pt";
  ASSERT_TRUE(fs::exists(checkpoint));
  EXPECT_EQ(pdeq::run::read_training_state(checkpoint).epoch, 1);
  EXPECT_FALSE(final_weights(run).empty());
  EXPECT_TRUE(temporaries(run).empty());
}
