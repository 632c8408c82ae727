// load_config / apply_override: files, JSON syntax errors, --set overrides, and every file in configs/.
#include <pdeq/config/config.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace pdeq::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// A private temporary folder per test (tests may run in parallel processes under ctest -j).
class LoadConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(scratch_.file(name)) << text;
    return scratch_.file(name);
  }

  pdeq::test::TempDir scratch_{"config"};
};

// ---- files
// --------------------------------------------------------------------------------------------------

TEST_F(LoadConfigTest, ReadsFileAndRecordsSource) {
  const std::string path = write("a.json", R"({"model": {"name": "resnet56"}, "train": {"epochs": 5}})");
  const Config c = load_config(path);
  EXPECT_EQ(c.model.name, "resnet56");
  EXPECT_EQ(c.train.epochs, 5);
  EXPECT_EQ(c.train.lr, 0.1);
  EXPECT_EQ(c.source, path);
}

TEST_F(LoadConfigTest, MissingFileNamesPath) {
  const std::string path = scratch_.file("absent.json");
  PDEQ_ASSERT_THROWS_WITH(load_config(path), path + ": cannot open config file");
  PDEQ_ASSERT_THROWS_WITH(load_config(scratch_.str()),
                          scratch_.str() + ": cannot open config file (it is a directory)");
}

TEST_F(LoadConfigTest, SyntaxErrorNamesFileAndLine) {
  const std::string path = write("bad.json", "{\n  \"train\": {\"epochs\": 3,}\n}\n");
  PDEQ_ASSERT_THROWS_WITH(load_config(path), path + ": invalid JSON: parse error at line 2, column 25");
  const std::string empty = write("empty.json", "");
  PDEQ_ASSERT_THROWS_WITH(load_config(empty), empty + ": invalid JSON: ");
}

// Found by the config fuzzer: a number beyond double's range made nlohmann throw out_of_range, which escaped
// as an unknown exception instead of a ConfigError naming the file.
TEST_F(LoadConfigTest, NumberOverflowIsAnInvalidJsonErrorNamingTheFile) {
  const std::string path =
      write("overflow.json", "{\"train\": {\"weight_decay\": 1e99999999999999999999}}\n");
  PDEQ_ASSERT_THROWS_WITH(load_config(path),
                          path + ": invalid JSON: number overflow parsing '1e99999999999999999999'");
}

TEST_F(LoadConfigTest, DuplicateKeyIsAnError) {
  const std::string path = write("dup.json", R"({"train": {"epochs": 3, "lr": 0.1, "epochs": 4}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(path), path + ": train.epochs: duplicate key");
  const std::string top = write("dup_top.json", R"({"train": {}, "model": {}, "train": {}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(top), top + ": train: duplicate key");
  // The same key in different objects is fine.
  const std::string ok =
      write("ok.json", R"({"quant": {"schedule": {"enabled": true}}, "model": {"name": "x"},
                                             "data": {"augment": true}})");
  EXPECT_TRUE(load_config(ok).quant.schedule.enabled);
}

TEST_F(LoadConfigTest, ValidationErrorNamesFile) {
  const std::string path = write("neg.json", R"({"train": {"epochs": -3}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(path), path + ": train.epochs: expected an integer >= 1, got -3");
  const std::string typo = write("typo.json", R"({"model": {"nmae": "resnet20"}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(typo), typo + ": model.nmae: unknown key; did you mean 'name'?");
}

// ---- overrides
// ------------------------------------------------------------------------------------------------

TEST_F(LoadConfigTest, OverridesNestedKeysAndStrings) {
  const std::string path =
      write("a.json", R"({"quant": {"schedule": {"enabled": true}}, "train": {"epochs": 200}})");
  const Config c = load_config(path, {"train.epochs=3", "data.root=/tmp/x", "quant.schedule.enabled=false",
                                      "model.name=resnet56", "train.lr=0.05", "quant.weight_bits=4"});
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.data.root, "/tmp/x");
  EXPECT_FALSE(c.quant.schedule.enabled);
  EXPECT_EQ(c.model.name, "resnet56");
  EXPECT_EQ(c.train.lr, 0.05);
  EXPECT_EQ(c.quant.weight_bits, 4);
  EXPECT_EQ(c.source, path);
}

TEST_F(LoadConfigTest, OverridesApplyInOrder) {
  const std::string path = write("a.json", "{}");
  EXPECT_EQ(load_config(path, {"train.epochs=3", "train.epochs=7"}).train.epochs, 7);
}

TEST_F(LoadConfigTest, OverrideCreatesMissingSections) {
  const std::string path = write("a.json", "{}");
  const Config c = load_config(path, {"quant.schedule.start_bits=8"});
  EXPECT_EQ(c.quant.schedule.start_bits, 8);
  EXPECT_FALSE(c.quant.schedule.enabled);
}

TEST_F(LoadConfigTest, OverrideValueQuotingAndEmptyStrings) {
  const std::string path = write("a.json", "{}");
  // A quoted JSON string stays a string even when it looks like a number; an empty value is "".
  EXPECT_EQ(load_config(path, {"data.root=\"123\""}).data.root, "123");
  EXPECT_EQ(load_config(path, {"data.root=/tmp/x", "data.root="}).data.root, "");
  // '=' inside the value belongs to the value.
  EXPECT_EQ(load_config(path, {"data.root=/tmp/a=b"}).data.root, "/tmp/a=b");
}

TEST_F(LoadConfigTest, OverrideOfWholeSection) {
  const std::string path = write("a.json", "{}");
  const Config c = load_config(path, {R"(quant.schedule={"enabled": true, "period_epochs": 2})"});
  EXPECT_TRUE(c.quant.schedule.enabled);
  EXPECT_EQ(c.quant.schedule.period_epochs, 2);
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {R"(quant.schedule={"period": 2})"}),
                          "--set: quant.schedule.period: unknown key; did you mean 'period_epochs'?");
}

TEST_F(LoadConfigTest, OverrideSyntaxError) {
  const std::string path = write("a.json", "{}");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.epochs"}),
                          "--set: expected key=value (e.g. train.epochs=3), got \"train.epochs\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"=3"}),
                          "--set: expected key=value (e.g. train.epochs=3), got \"=3\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train..epochs=3"}), "got \"train..epochs=3\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.=3"}), "got \"train.=3\"");
}

TEST_F(LoadConfigTest, OverrideOfUnknownKey) {
  const std::string path = write("a.json", "{}");
  PDEQ_ASSERT_THROWS_WITH(
      load_config(path, {"train.epocs=3"}),
      "--set: train.epocs: unknown key; did you mean 'epochs'? (allowed: epochs, optimizer, lr,");
  PDEQ_ASSERT_THROWS_WITH(
      load_config(path, {"trian.epochs=3"}),
      "--set: trian: unknown key; did you mean 'train'? (allowed: model, data, quant, train)");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.epochs.max=3"}),
                          "--set: train.epochs.max: unknown key; train.epochs is a value, not a section");
}

TEST_F(LoadConfigTest, OverrideWithWrongTypeOrRange) {
  const std::string path = write("a.json", R"({"train": {"epochs": 10}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.epochs=abc"}),
                          "--set: train.epochs: expected an integer >= 1, got \"abc\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.epochs=2.5"}),
                          "--set: train.epochs: expected an integer >= 1, got 2.5");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"quant.schedule.enabled=no"}),
                          "--set: quant.schedule.enabled: expected true or false, got \"no\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.lr_schedule=step"}),
                          "--set: train.lr_schedule: expected one of \"cosine\", \"constant\", got \"step\"");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"quant=4"}), "--set: quant: expected an object, got 4");
}

TEST_F(LoadConfigTest, FileErrorsAreNotBlamedOnOverrides) {
  const std::string path = write("a.json", R"({"train": {"epochs": 0}})");
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.lr=0.2"}),
                          path + ": train.epochs: expected an integer >= 1, got 0");
}

TEST_F(LoadConfigTest, OverridesSeeEachOther) {
  // Checked together after all are applied: the second makes the first valid.
  const std::string path = write("a.json", R"({"train": {"epochs": 3}})");
  const Config c = load_config(path, {"train.warmup_epochs=5", "train.epochs=10"});
  EXPECT_EQ(c.train.warmup_epochs, 5.0);
  EXPECT_EQ(c.train.epochs, 10);
  PDEQ_ASSERT_THROWS_WITH(load_config(path, {"train.warmup_epochs=5"}),
                          "--set: train.warmup_epochs: expected a number < train.epochs (3), got 5.0");
}

TEST(ApplyOverrideTest, EditsTheDocumentInPlace) {
  json document = json::parse(R"({"train": {"epochs": 3}})");
  apply_override(document, "train.lr=0.5", "cli");
  apply_override(document, "model.name=resnet32", "cli");
  EXPECT_EQ(document, json::parse(R"({"train": {"epochs": 3, "lr": 0.5}, "model": {"name": "resnet32"}})"));
  PDEQ_ASSERT_THROWS_WITH(apply_override(document, "model.nmae=x", "cli"),
                          "cli: model.nmae: unknown key; did you mean 'name'?");
  json not_object = json::parse(R"({"train": 3})");
  PDEQ_ASSERT_THROWS_WITH(apply_override(not_object, "train.epochs=3", "cli"),
                          "cli: train: expected an object, got 3");
}

// ---- the repository's configs/
// ----------------------------------------------------------------------------------

std::vector<fs::path> repository_configs() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(pdeq::test::source_dir()) / "configs")) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(RepositoryConfigsTest, EveryConfigParsesAndRoundTrips) {
  const auto files = repository_configs();
  ASSERT_GE(files.size(), 5u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    Config c;
    ASSERT_NO_THROW(c = load_config(file.string())) << file;
    EXPECT_TRUE(parse_config(to_json(c), "x") == c);
  }
}

TEST(RepositoryConfigsTest, NamedConfigsFollowTheProtocol) {
  const fs::path dir = fs::path(pdeq::test::source_dir()) / "configs";
  const Config fmnist = load_config((dir / "fashion_mnist_resnet20_w4a4.json").string());
  EXPECT_EQ(fmnist.data.dataset, "fashion_mnist");
  EXPECT_EQ(fmnist.model.name, "resnet20");
  EXPECT_EQ(fmnist.quant.weight_bits, 4);
  EXPECT_EQ(fmnist.quant.act_bits, 4);

  const Config fp = load_config((dir / "cifar10_resnet20_fp.json").string());
  EXPECT_EQ(fp.quant.weight_bits, 32);
  EXPECT_EQ(fp.quant.act_bits, 32);
  EXPECT_EQ(fp.train.epochs, 200);

  // The paper's protocol: 200 epochs, batch 128, SGD lr 0.1 momentum 0.9, wd 1e-4, cosine, 16 -> 4 bits,
  // one bit every 10 epochs, 5k validation images.
  for (const std::string name :
       {"cifar10_resnet20_w4a4.json", "cifar10_resnet56_w4a4.json", "cifar100_resnet56_w4a4.json"}) {
    SCOPED_TRACE(name);
    const Config c = load_config((dir / name).string());
    EXPECT_EQ(c.data.dataset, name.rfind("cifar100", 0) == 0 ? "cifar100" : "cifar10");
    EXPECT_EQ(c.model.name, name.find("resnet56") != std::string::npos ? "resnet56" : "resnet20");
    EXPECT_EQ(c.train.epochs, 200);
    EXPECT_EQ(c.data.batch_size, 128);
    EXPECT_EQ(c.data.val_size, 5000);
    EXPECT_TRUE(c.data.augment);
    EXPECT_EQ(c.train.optimizer, config::Optimizer::kSgd);
    EXPECT_EQ(c.train.lr, 0.1);
    EXPECT_EQ(c.train.momentum, 0.9);
    EXPECT_EQ(c.train.weight_decay, 1e-4);
    EXPECT_EQ(c.train.lr_schedule, config::LrSchedule::kCosine);
    EXPECT_EQ(c.quant.weight_bits, 4);
    EXPECT_EQ(c.quant.act_bits, 4);
    EXPECT_TRUE(c.quant.schedule.enabled);
    EXPECT_EQ(c.quant.schedule.start_bits, 16);
    EXPECT_EQ(c.quant.schedule.step, 1);
    EXPECT_EQ(c.quant.schedule.period_epochs, 10);
  }
}

}  // namespace
}  // namespace pdeq::config
