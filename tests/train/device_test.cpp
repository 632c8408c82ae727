// Devices for whole runs: checkpoints hold CPU tensors and load onto the model's device (a run continues on
// another device than it was checkpointed on), `cpu` and `auto` train identically where auto is the CPU, and
// device names that this build or machine cannot serve are config errors naming the key. The CUDA cases run
// only where torch::cuda::is_available(); elsewhere they are skipped, visibly.
#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/run.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/run/stop_signal.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>

#include <torch/csrc/jit/serialization/import.h>
#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <sstream>

#include "train_support.h"

namespace fs = std::filesystem;

namespace {

torch::Device device_named(const std::string& name) {
  return name == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

bool available(const std::string& name) { return name != "cuda" || torch::cuda::is_available(); }

#define PDEQ_SKIP_UNLESS_AVAILABLE(name) \
  if (!available(name)) GTEST_SKIP() << "no CUDA GPU (or no CUDA in this LibTorch): runs where one is"

/// A tiny W4A4 ResNet-20 with its optimizer, after one step on `device` (momentum buffers, BN statistics).
struct Trained {
  pdeq::config::Config config;
  pdeq::models::Classifier model{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};

Trained make_trained(const fs::path& data, torch::Device device, bool step) {
  Trained t{pdeq::test::tiny_cifar_config(data), nullptr, nullptr};
  const auto info = pdeq::data::dataset_info(t.config.data.dataset);
  t.model = pdeq::models::make_model("resnet20", pdeq::experiment::model_options(t.config, info));
  t.model->to(device);
  t.optimizer = pdeq::train::make_optimizer(*t.model, pdeq::experiment::optimizer_options(t.config.train));
  if (step) {
    t.optimizer->zero_grad();
    t.model->forward(torch::randn({4, 3, 32, 32}).to(device)).square().mean().backward();
    t.optimizer->step();
  }
  return t;
}

std::vector<torch::Tensor> on_cpu(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.detach().to(torch::kCPU));
  return out;
}

struct DeviceTest : pdeq::test::SeedingFixture {
  pdeq::test::TempDir scratch{"device"};
};

class CheckpointDeviceTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {
 protected:
  void SetUp() override { torch::manual_seed(0); }
  pdeq::test::TempDir scratch{"checkpoint_device"};
};

TEST_P(CheckpointDeviceTest, SavedOnCpuTensorsAndLoadedOntoTheModelsDevice) {
  const auto& [from, to] = GetParam();
  PDEQ_SKIP_UNLESS_AVAILABLE(from);
  PDEQ_SKIP_UNLESS_AVAILABLE(to);
  const auto file = scratch.path() / "c.pt";
  Trained saved = make_trained(scratch.path(), device_named(from), /*step=*/true);
  pdeq::run::TrainingState state;
  state.epoch = 2;
  pdeq::run::save_checkpoint(file, *saved.model, saved.optimizer.get(), state);

  // Every tensor in the file is a CPU tensor, read where the file says it lives (no map location).
  const auto archive = torch::jit::load(file.string());
  int64_t tensors = 0;
  for (const auto& attribute : archive.named_attributes(/*recurse=*/true)) {
    if (!attribute.value.isTensor()) continue;
    ++tensors;
    EXPECT_TRUE(attribute.value.toTensor().device().is_cpu()) << attribute.name << " saved from " << from;
  }
  EXPECT_GT(tensors, 2 * static_cast<int64_t>(saved.model->parameters().size()));  // + buffers, momentum

  torch::manual_seed(123);  // the restored model starts from other weights
  Trained restored = make_trained(scratch.path(), device_named(to), /*step=*/false);
  EXPECT_EQ(pdeq::run::load_checkpoint(file, *restored.model, restored.optimizer.get()).epoch, 2);
  for (const auto& p : restored.model->parameters()) EXPECT_EQ(p.device().type(), device_named(to).type());
  for (const auto& b : restored.model->buffers()) EXPECT_EQ(b.device().type(), device_named(to).type());
  const auto a = on_cpu(saved.model->parameters()), b = on_cpu(restored.model->parameters());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;

  // The optimizer state came along onto `to`: one more step on both ends gives the same parameters (bitwise
  // on one device; across devices to the rounding of the two devices' kernels).
  const auto x = torch::randn({4, 3, 32, 32});
  for (Trained* t : {&saved, &restored}) {
    const auto device = pdeq::run::device_of(*t->model);
    t->optimizer->zero_grad();
    t->model->forward(x.to(device)).square().mean().backward();
    t->optimizer->step();
  }
  const auto a2 = on_cpu(saved.model->parameters()), b2 = on_cpu(restored.model->parameters());
  for (size_t i = 0; i < a2.size(); ++i) {
    if (from == to) {
      EXPECT_TRUE(torch::equal(a2[i], b2[i])) << "parameter " << i << " after a step";
    } else {
      EXPECT_TRUE(torch::allclose(a2[i], b2[i], 1e-4, 1e-5)) << "parameter " << i << " after a step";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, CheckpointDeviceTest,
                         ::testing::Values(std::make_pair("cpu", "cpu"), std::make_pair("cuda", "cpu"),
                                           std::make_pair("cpu", "cuda"), std::make_pair("cuda", "cuda")),
                         [](const auto& info) { return info.param.first + "_to_" + info.param.second; });

TEST_F(DeviceTest, ArchiveOnHostKeepsEveryValue) {
  torch::serialize::OutputArchive archive, child;
  const auto f = torch::randn({3, 4});
  const auto d = torch::randn({5}, torch::kDouble);
  const auto l = torch::arange(7);
  const auto h = torch::randn({2, 3}).to(torch::kBFloat16);
  child.write("f", f);
  child.write("l", l, /*is_buffer=*/true);
  archive.write("child", child);
  archive.write("d", d);
  archive.write("h", h);
  archive.write("s", c10::IValue(std::string("text")));
  std::ostringstream bytes;
  archive.save_to(bytes);

  const std::string host = pdeq::run::archive_on_host(bytes.str());
  std::istringstream in(host);
  torch::serialize::InputArchive loaded;
  loaded.load_from(in);
  torch::serialize::InputArchive loaded_child;
  loaded.read("child", loaded_child);
  torch::Tensor f2, l2, d2, h2;
  loaded_child.read("f", f2);
  loaded_child.read("l", l2, /*is_buffer=*/true);
  loaded.read("d", d2);
  loaded.read("h", h2);
  c10::IValue s2;
  loaded.read("s", s2);
  EXPECT_TRUE(torch::equal(f2, f));
  EXPECT_TRUE(torch::equal(l2, l));
  EXPECT_TRUE(torch::equal(d2, d));
  EXPECT_TRUE(torch::equal(h2, h));
  EXPECT_EQ(h2.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(s2.toStringRef(), "text");
}

/// A tiny W4A4 run's final parameters and metrics.
struct RunResult {
  std::vector<torch::Tensor> parameters;
  std::vector<nlohmann::json> metrics;
  nlohmann::json summary;
};

RunResult read_run(const fs::path& dir) {
  pdeq::run::RunDirectory run(dir);
  const auto config = pdeq::config::load_config(run.config_path().string());
  const auto info = pdeq::data::dataset_info(config.data.dataset);
  auto model = pdeq::models::make_model(config.model.name, pdeq::experiment::model_options(config, info));
  pdeq::run::load_checkpoint(run.last_checkpoint(), *model, nullptr);
  return {on_cpu(model->parameters()), run.read_metrics(), run.read_json(run.summary_path())};
}

void expect_same_run(const RunResult& a, const RunResult& b) {
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  for (size_t i = 0; i < a.parameters.size(); ++i)
    EXPECT_TRUE(torch::equal(a.parameters[i], b.parameters[i])) << "parameter " << i;
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (size_t i = 0; i < a.metrics.size(); ++i) {
    EXPECT_EQ(a.metrics[i]["train_loss"], b.metrics[i]["train_loss"]) << "epoch " << i;
    EXPECT_EQ(a.metrics[i]["val_acc"], b.metrics[i]["val_acc"]) << "epoch " << i;
  }
  EXPECT_EQ(a.summary["test_accuracy"], b.summary["test_accuracy"]);
}

TEST_F(DeviceTest, CpuAndAutoTrainIdenticallyWhereAutoIsTheCpu) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "auto is a GPU on this machine, not the CPU";
  fs::create_directories(scratch.path() / "data");
  pdeq::test::write_tiny_cifar10(scratch.path() / "data", 32);
  pdeq::run::clear_stop_request();
  auto config = pdeq::test::tiny_cifar_config(scratch.path() / "data");
  config.train.device = "cpu";
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "cpu").finished);
  config.train.device = "auto";
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "auto").finished);
  const auto cpu = read_run(scratch.path() / "cpu"), autorun = read_run(scratch.path() / "auto");
  expect_same_run(cpu, autorun);
  EXPECT_EQ(autorun.summary["device"], "cpu");
}

class ResumeDeviceTest : public CheckpointDeviceTest {};

TEST_P(ResumeDeviceTest, ARunCheckpointedOnOneDeviceContinuesOnAnother) {
  const auto& [from, to] = GetParam();
  PDEQ_SKIP_UNLESS_AVAILABLE(from);
  PDEQ_SKIP_UNLESS_AVAILABLE(to);
  fs::create_directories(scratch.path() / "data");
  pdeq::test::write_tiny_cifar10(scratch.path() / "data", 32);
  pdeq::run::clear_stop_request();
  auto config = pdeq::test::tiny_cifar_config(scratch.path() / "data");
  config.train.device = from;
  ASSERT_TRUE(pdeq::experiment::train_run(config, scratch.path() / "whole").finished);
  // Stopped mid-epoch 1 on `from`, finished on `to` (--device of pdeq train --resume).
  EXPECT_FALSE(pdeq::experiment::train_run(config, scratch.path() / "pieces", {false, 2}).finished);
  pdeq::experiment::RunOptions on_to;
  on_to.device = to;
  ASSERT_TRUE(pdeq::experiment::resume_run(scratch.path() / "pieces", on_to).finished);
  const auto whole = read_run(scratch.path() / "whole"), pieces = read_run(scratch.path() / "pieces");
  EXPECT_EQ(pieces.summary["device"], device_named(to).str() + (to == "cuda" ? ":0" : ""));
  if (from == to) {
    expect_same_run(whole, pieces);  // exact resume on one device
  } else {
    // Another device rounds differently and draws dropout/augmentation from its own generator: the run
    // finishes with the same shape of results, not the same bits.
    ASSERT_EQ(whole.metrics.size(), pieces.metrics.size());
    EXPECT_TRUE(pieces.summary["test_accuracy"].is_number());
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, ResumeDeviceTest,
                         ::testing::Values(std::make_pair("cpu", "cpu"), std::make_pair("cuda", "cpu"),
                                           std::make_pair("cpu", "cuda")),
                         [](const auto& info) { return info.param.first + "_to_" + info.param.second; });

TEST_F(DeviceTest, DeviceNamesAreCheckedAndAMissingGpuIsAConfigErrorNamingTheKey) {
  // The schema takes auto, cpu, cuda and cuda:N and refuses anything else, naming the key.
  EXPECT_EQ(pdeq::config::config_from_overrides({"train.device=cuda:1"}).train.device, "cuda:1");
  EXPECT_EQ(pdeq::config::Config().train.device, "auto");
  PDEQ_ASSERT_THROWS_WITH(pdeq::config::config_from_overrides({"train.device=gpu"}), "train.device");
  PDEQ_ASSERT_THROWS_WITH(pdeq::config::config_from_overrides({"train.device=cuda:"}), "cuda:N");

  EXPECT_EQ(pdeq::train::select_device("cpu"), torch::Device(torch::kCPU));
  pdeq::config::Config config;
  config.train.device = "cuda:99";  // no machine has GPU 99
  try {
    pdeq::experiment::run_device(config);
    FAIL() << "cuda:99 was accepted";
  } catch (const pdeq::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.device"), std::string::npos) << e.what();
  }
  try {
    pdeq::experiment::run_device(config, "cuda:99");
    FAIL() << "--device cuda:99 was accepted";
  } catch (const pdeq::config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--device"), std::string::npos) << e.what();
  }
  if (!torch::cuda::is_available()) {
    config.train.device = "cuda";
    PDEQ_ASSERT_THROWS_WITH(pdeq::experiment::run_device(config), "train.device: device cuda was requested");
    EXPECT_EQ(pdeq::experiment::run_device(pdeq::config::Config()), torch::Device(torch::kCPU));  // auto
  } else {
    EXPECT_EQ(pdeq::experiment::run_device(pdeq::config::Config()), torch::Device(torch::kCUDA, 0));
  }
}

}  // namespace
