#include <pdeq/commands/analyze_tv.h>

#include <pdeq/analysis/tv_report.h>
#include <pdeq/config/config.h>
#include <pdeq/data/loader.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/runtime.h>
#include <pdeq/train/segmentation.h>

#include <algorithm>
#include <fstream>

namespace pdeq::commands {
namespace fs = std::filesystem;

AnalyzeTVResult analyze_tv(const AnalyzeTVOptions& options) {
  const fs::path& run_dir = options.run;
  const fs::path& out = options.out;
  TORCH_CHECK_VALUE(options.checkpoint == "best" || options.checkpoint == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint, "'");
  run::RunDirectory run = run::RunDirectory::open(run_dir);
  const config::Config config = experiment::read_run_config(run);
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  nlohmann::json result = {{"run", run_dir.string()}, {"checkpoint", options.checkpoint}};
  const fs::path checkpoint = options.checkpoint == "best" ? run.best_checkpoint() : run.last_checkpoint();
  if (experiment::is_graph_dataset(config.data.dataset)) {
    // Graph runs: the whole test split is one forward pass; TV smoothing is an image layer.
    TORCH_CHECK_VALUE(!options.layer, "--layer needs an image run (TV smoothing acts on feature maps), but ",
                      run_dir.string(), " trains on ", config.data.dataset);
    // Analyses run on the CPU: the observers copy feature maps and read them element by element.
    const auto task = experiment::make_task(config, torch::kCPU);
    run::load_checkpoint(checkpoint, task->module(), nullptr);
    result["layers"] = analysis::activation_quant_report(task->module(), [&] {
      task->for_each_eval_batch(train::EvalSplit::kTest, [](const train::Task::TraceFn& run) {
        models::ActivationTrace trace;
        run(trace);
      });
    });
  } else {
    const auto task_ptr = experiment::make_image_task(config, torch::kCPU);
    train::ImageClassificationTask& task = *task_ptr;
    run::load_checkpoint(checkpoint, task.module(), nullptr);
    TORCH_CHECK_VALUE(options.images > 0, "images must be positive, but got ", options.images);
    auto* segmentation = dynamic_cast<train::SegmentationTask*>(&task);
    TORCH_CHECK_VALUE(segmentation != nullptr || !task.streams_from_disk(),
                      "analyze tv reads test images from memory; image_folder runs are not supported");
    const auto& test = task.data().test;
    const auto& info = task.data().info;
    // Segmentation: the first test frames as evaluation decodes them (whole frames at data.resize).
    const data::Batch frames =
        segmentation != nullptr
            ? segmentation->first_frames(train::EvalSplit::kTest, std::max(options.images, options.image + 1))
            : data::Batch{};
    const int64_t available = segmentation != nullptr ? frames.images.size(0) : test.images.size(0);
    TORCH_CHECK_VALUE(options.image >= 0 && options.image < available, "image must be in [0, ", available,
                      "), but got ", options.image);
    const int64_t count = std::min(options.images, available);
    const auto normalized = [&](int64_t first, int64_t n) {
      return segmentation != nullptr ? frames.images.narrow(0, first, n)
                                     : data::normalize(test.images.narrow(0, first, n), info.mean, info.std);
    };
    const auto images = normalized(0, count);
    result["images"] = count;
    // What the model holds, not what the config asked for.
    int64_t tv_layers = 0;
    for (const auto& module : task.model()->modules(/*include_self=*/false)) {
      tv_layers += module->as<nn::TVSmooth>() != nullptr ? 1 : 0;
    }
    result["tv_layers"] = tv_layers;
    result["tv_enabled"] = tv_layers > 0;
    result["layers"] = analysis::activation_quant_report(*task.model(), images);
    if (options.layer) {
      result["tv"] =
          analysis::tv_layer_report(*task.model(), normalized(options.image, 1), *options.layer, out);
      result["tv"]["image"] = options.image;
      if (segmentation == nullptr) result["tv"]["label"] = test.labels[options.image].item<int64_t>();
    }
  }
  fs::create_directories(out);  // only now: a bad option leaves nothing behind
  {
    const fs::path csv = out / "quant_mse.csv";
    std::ofstream file(csv);
    if (!file) throw std::runtime_error("cannot write " + csv.string());
    file << "layer,bits,alpha,min,max,std,clipped_fraction,quant_mse\n";
    for (const auto& row : result["layers"]) {
      file << row["layer"].get<std::string>() << "," << row["bits"] << "," << row["alpha"] << ","
           << row["min"] << "," << row["max"] << "," << row["std"] << "," << row["clipped_fraction"] << ","
           << row["quant_mse"] << "\n";
    }
  }
  {
    const fs::path json = out / "tv.json";
    std::ofstream file(json);
    if (!file) throw std::runtime_error("cannot write " + json.string());
    file << result.dump(2) << "\n";
  }
  return {result};
}

}  // namespace pdeq::commands
