#include <pdeq/commands/analyze_segmentation.h>

#include <pdeq/analysis/segmentation_figure.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/runtime.h>
#include <pdeq/train/segmentation.h>

#include <fstream>

namespace pdeq::commands {
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  if (!file) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

AnalyzeSegmentationResult analyze_segmentation(const AnalyzeSegmentationOptions& options) {
  TORCH_CHECK_VALUE(options.checkpoint == "best" || options.checkpoint == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint, "'");
  TORCH_CHECK_VALUE(options.split == "test" || options.split == "val", "split must be test or val, but got '",
                    options.split, "'");
  TORCH_CHECK_VALUE(options.frames > 0, "frames must be positive, but got ", options.frames);
  const auto run = run::RunDirectory::open(options.run);
  const config::Config config = experiment::read_run_config(run);
  TORCH_CHECK_VALUE(experiment::is_segmentation_dataset(config.data.dataset), "run ", options.run.string(),
                    " trains on ", config.data.dataset,
                    ", not a segmentation dataset (camvid, cityscapes); analyze segmentation needs one");
  TORCH_CHECK_VALUE(config.train.seeds == 1, "run ", options.run.string(), " holds ", config.train.seeds,
                    " seeds; analyze one of its seed<i> folders");
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  auto task_ptr = experiment::make_image_task(config, torch::kCPU);
  auto* task = dynamic_cast<train::SegmentationTask*>(task_ptr.get());
  TORCH_INTERNAL_ASSERT(task != nullptr, "a segmentation dataset must give a SegmentationTask");
  const fs::path checkpoint = options.checkpoint == "best" ? run.best_checkpoint() : run.last_checkpoint();
  run::load_checkpoint(checkpoint, task->module(), nullptr);
  const auto split = options.split == "test" ? train::EvalSplit::kTest : train::EvalSplit::kVal;
  TORCH_CHECK_VALUE(task->has_split(split), "run ", options.run.string(), " has no ", options.split,
                    " split");

  task->evaluate(split);
  const auto& info = task->info();
  nlohmann::json report = train::iou_table(task->confusion(split), info.class_names);
  report["run"] = options.run.string();
  report["split"] = options.split;
  report["checkpoint"] = options.checkpoint;
  report["dataset"] = config.data.dataset;
  report["resolution"] = config.data.resize;

  // The picture: the first frames, predicted in eval mode.
  const data::Batch frames = task->first_frames(split, options.frames);
  torch::Tensor predictions;
  {
    task->module().eval();
    torch::NoGradGuard no_grad;
    predictions = task->model()->forward(frames.images).argmax(1);
  }
  const std::string png =
      analysis::segmentation_grid_png(frames.images, frames.labels, predictions, info.info.mean,
                                      info.info.std, info.info.num_classes, info.ignore_index);
  report["frames"] = frames.images.size(0);

  fs::create_directories(options.out);  // only now: a bad option leaves nothing behind
  write_text(options.out / "segmentation.png", png);
  std::string csv = "class,name,iou,pixels\n";
  for (const auto& row : report["classes"]) {
    csv += std::to_string(row["class"].get<int64_t>()) + "," + row["name"].get<std::string>() + "," +
           (row["iou"].is_null() ? std::string() : row["iou"].dump()) + "," + row["pixels"].dump() + "\n";
  }
  write_text(options.out / "iou.csv", csv);
  write_text(options.out / "iou.json", report.dump(2) + "\n");
  return {report};
}

}  // namespace pdeq::commands
