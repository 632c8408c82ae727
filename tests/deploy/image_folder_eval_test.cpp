// An exported model evaluated on the image folder it was trained on (streamed from disk with the eval
// transforms), agreeing with its fake-quant run.
#include <pdeq/deploy/evaluate.h>
#include <pdeq/deploy/export.h>
#include <pdeq/experiment/run.h>

#include "image_folder_support.h"
#include "test_support.h"

namespace {

using namespace pdeq;

TEST(ImageFolderEvalTest, ExportedModelReadsTheFolderAndAgreesWithTheRun) {
  test::TempDir scratch("imgfolder_eval");
  torch::manual_seed(0);
  test::write_colour_tree(scratch.path() / "data", 24, 6);
  auto config = test::colour_config(scratch.path() / "data");
  config.train.epochs = 6;
  config.quant.weight_bits = 4;  // 4-bit weights x 8-bit codes: pairs of products fit 16 bits without VNNI
  config.quant.act_bits = 8;
  const auto run = scratch.path() / "run";
  const auto result = experiment::train_run(config, run);
  ASSERT_TRUE(result.finished);
  ASSERT_GE(result.summary["test_accuracy"].get<double>(), 0.9);  // chance is 0.5

  deploy::export_run(run, scratch.path() / "m.pdeqint");
  deploy::IntEvalOptions options;
  options.compare_run = run;
  const auto report = deploy::evaluate_int_model(scratch.path() / "m.pdeqint", options);
  SCOPED_TRACE(report.dump());
  EXPECT_EQ(report["samples"], 12);  // root/val: 6 per class
  EXPECT_EQ(report["agreement"], 1.0);
  EXPECT_DOUBLE_EQ(report["accuracy"].get<double>(), result.summary["test_accuracy"].get<double>());

  options.split = "val";  // held out of root/train: data.val_size = 8
  options.compare_run.reset();
  EXPECT_EQ(deploy::evaluate_int_model(scratch.path() / "m.pdeqint", options)["samples"], 8);
}

}  // namespace
