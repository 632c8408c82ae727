// Keys that would change nothing for the chosen model or dataset are refused (or, behind an off switch,
// warned about), naming where they came from; every shipped config passes.
#include <pdeq/compat/features.h>
#include <pdeq/experiment/key_use.h>
#include <pdeq/experiment/task_factory.h>

#include <filesystem>
#include <fstream>

#include "test_support.h"

namespace pdeq::experiment {
namespace {

namespace fs = std::filesystem;

config::Config with(const std::string& model, const std::string& dataset,
                    std::vector<std::string> overrides) {
  overrides.insert(overrides.begin(), {"model.name=" + model, "data.dataset=" + dataset});
  return config::config_from_overrides(overrides);
}

TEST(KeyUseTest, KeysTheModelDoesNotReadAreRefusedNamingTheSet) {
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("resnet20", "cifar10", {"model.layers=4"})),
                          "--set model.layers=4: model.layers: has no effect on resnet20; it is read by the "
                          "graph models (pde_gcn, pde_gcn_nonsym, gcn)");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("resnet20", "cifar10", {"model.dropout=0.1"})),
                          "model.dropout: has no effect on resnet20");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("pde_gcn", "cora", {"model.tv.enabled=true"})),
                          "--set model.tv.enabled=true: model.tv.enabled: has no effect on pde_gcn");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("pde_gcn", "cora", {"model.stable=true"})),
                          "model.stable: has no effect on pde_gcn");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("gcn", "cora", {"model.step_size=0.5"})),
                          "model.step_size: has no effect on gcn");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("gcn", "cora", {"model.input_dropout=0.5"})),
                          "model.input_dropout: has no effect on gcn");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("pde_gcn_nonsym", "cora", {"quant.per_channel=true"})),
                          "quant.per_channel: has no effect on pde_gcn_nonsym");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("mobilenetv2", "cifar100", {"model.stem=imagenet"})),
                          "model.stem: has no effect on mobilenetv2");
  // A whole section set at once is named by its own assignment.
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("gcn", "cora", {"model.tv={\"enabled\": true}"})),
                          "--set model.tv={\"enabled\": true}: model.tv.enabled: has no effect on gcn");
}

TEST(KeyUseTest, KeysTheDatasetDoesNotReadAreRefused) {
  PDEQ_ASSERT_THROWS_WITH(
      validate_config(with("resnet20", "cifar10", {"data.edge_weights=similarity"})),
      "data.edge_weights: has no effect on data.dataset cifar10; it is read for the graph "
      "datasets");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("pde_gcn", "cora", {"data.batch_size=64"})),
                          "data.batch_size: has no effect on data.dataset cora");
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("resnet20", "cifar10", {"data.image_size=96"})),
                          "data.image_size: has no effect on data.dataset cifar10; it is read for "
                          "the datasets read from folders (image_folder, camvid, cityscapes)");
  // The folder datasets' keys are checked as `pdeq params` checks them (kNone), so that a build without
  // OpenCV, which refuses to read those datasets (ImageFoldersNeedOpenCV), checks them too.
  PDEQ_ASSERT_THROWS_WITH(validate_config(with("resnet20", "image_folder",
                                               {"data.root=/tmp", "data.class_weights=median_frequency"}),
                                          DataUse::kNone),
                          "data.class_weights: has no effect on data.dataset image_folder; it is read for "
                          "the segmentation datasets (camvid, cityscapes)");
  PDEQ_ASSERT_THROWS_WITH(
      validate_config(with("deeplabv3_resnet18", "camvid", {"data.split_seed=3"}), DataUse::kNone),
      "data.split_seed: has no effect on data.dataset camvid; it is read for the datasets "
      "whose validation split is held out of the training files (all but camvid)");
  // What the segmentation datasets read passes.
  EXPECT_NO_THROW(validate_config(with("deeplabv3_resnet18", "cityscapes",
                                       {"data.split_seed=3", "data.scale_max=1.5", "data.image_size=96",
                                        "model.tv.enabled=true", "quant.per_channel=true"}),
                                  DataUse::kNone));
}

TEST(KeyUseTest, ImageFoldersNeedOpenCV) {
  const auto config = with("resnet20", "image_folder", {"data.root=" + fs::temp_directory_path().string()});
  if (compat::opencv_built()) {
    // Whatever else validation says of this folder, it says nothing of OpenCV.
    try {
      validate_config(config);
    } catch (const std::exception& e) {
      EXPECT_EQ(std::string(e.what()).find("OpenCV"), std::string::npos) << e.what();
    }
    return;
  }
  PDEQ_ASSERT_THROWS_WITH(
      validate_config(config),
      "--set data.dataset=image_folder: data.dataset: image_folder (decoding JPEG, PNG and "
      "BMP files) needs OpenCV, and this pdeq was built without it (PDEQ_WITH_OPENCV=OFF)");
  // A command that reads no data (pdeq params) is not refused.
  EXPECT_NO_THROW(validate_config(config, DataUse::kNone));
}

TEST(KeyUseTest, KeysTheModelReadsPassAndDefaultsNeverCount) {
  EXPECT_NO_THROW(validate_config(with("resnet20", "cifar10",
                                       {"model.tv.enabled=true", "model.stable=true", "model.step_size=0.1",
                                        "quant.per_channel=true", "model.stem=imagenet"})));
  EXPECT_NO_THROW(
      validate_config(with("mobilenetv2", "cifar100", {"model.tv.enabled=true", "model.tv.where=input"})));
  EXPECT_NO_THROW(validate_config(
      with("pde_gcn", "cora",
           {"model.layers=4", "model.quantize_gradient=true", "data.edge_weights=similarity"})));
  EXPECT_NO_THROW(validate_config(with("gcn", "cora", {"model.layers=2", "model.dropout=0.5"})));
  // The default value, written out (as every resolved config.json does), is no setting.
  EXPECT_NO_THROW(
      validate_config(with("resnet20", "cifar10", {"model.layers=16", "model.tv.enabled=false"})));
}

TEST(KeyUseTest, KeysBehindAnOffSwitchAreWarnedAbout) {
  const auto warnings = keys_waiting_for_a_switch(
      with("resnet20", "cifar10", {"model.tv.iters=3", "model.transpose=conv_transpose"}));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "--set model.transpose=conv_transpose: model.transpose has no effect while model.stable "
            "is false");
  EXPECT_EQ(warnings[1],
            "--set model.tv.iters=3: model.tv.iters has no effect while model.tv.enabled is false");
  EXPECT_TRUE(
      keys_waiting_for_a_switch(with("resnet20", "cifar10", {"model.tv.enabled=true", "model.tv.iters=3"}))
          .empty());
}

TEST(KeyUseTest, ErrorsOfAFileNameTheFile) {
  const pdeq::test::TempDir dir("key_use");
  const std::string file = dir.file("x.json");
  std::ofstream(file) << R"({"model": {"name": "resnet20", "layers": 8}})";
  PDEQ_ASSERT_THROWS_WITH(validate_config(config::load_config(file)),
                          file + ": model.layers: has no effect on resnet20");
  // The same key from --set names the --set, not the file.
  PDEQ_ASSERT_THROWS_WITH(validate_config(config::load_config(file, {"model.layers=9"})),
                          "--set model.layers=9: model.layers");
}

TEST(KeyUseTest, EveryShippedConfigUsesOnlyKeysItsModelReads) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(pdeq::test::source_dir()) / "configs")) {
    if (entry.path().extension() != ".json") continue;
    SCOPED_TRACE(entry.path().string());
    const config::Config config = config::load_config(entry.path().string());
    // Keys only: a build without OpenCV refuses to read the folder datasets (ImageFoldersNeedOpenCV).
    EXPECT_NO_THROW(validate_config(config, DataUse::kNone));
    EXPECT_TRUE(keys_waiting_for_a_switch(config).empty());
    ++count;
  }
  EXPECT_GE(count, 10u);
}

}  // namespace
}  // namespace pdeq::experiment
