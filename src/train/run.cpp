#include <pdeq/train/run.h>

#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/from_config.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>
#include <pdeq/train/task_factory.h>

#include <spdlog/spdlog.h>

namespace pdeq::train {
namespace fs = std::filesystem;

namespace {

FitResult fit(const config::Config& config, const RunDirectory& run, bool resume, const RunOptions& options) {
  const int64_t threads = configure_threads_and_seed(config.train);
  const torch::Device device = select_device(config.train.device);
  spdlog::info("{} threads, device {}", threads, device.str());
  const auto task = make_task(config, device);
  auto optimizer = make_optimizer(task->module(), config.train);
  auto trainer_opts = trainer_options(config);
  trainer_opts.max_steps = options.max_steps;
  Trainer trainer(*task, *optimizer, run, trainer_opts);
  const nlohmann::json extra = {{"model", config.model.name},
                                {"dataset", config.data.dataset},
                                {"threads", threads},
                                {"device", device.str()}};
  return trainer.fit(resume, extra);
}

}  // namespace

FitResult train_run(const config::Config& config, const fs::path& out, const RunOptions& options) {
  RunDirectory run = RunDirectory::create(out, options.force);
  run.write_json(run.config_path(), config::to_json(config));
  return fit(config, run, /*resume=*/false, options);
}

FitResult resume_run(const fs::path& run_dir, const RunOptions& options) {
  RunDirectory run = RunDirectory::open(run_dir);
  if (run.finished()) {
    throw std::runtime_error("run " + run_dir.string() + " is already finished (see " +
                             run.summary_path().string() + ")");
  }
  const config::Config config = config::load_config(run.config_path().string());
  return fit(config, run, /*resume=*/run.has_checkpoint(), options);
}

nlohmann::json evaluate_run(const fs::path& run_dir, const EvalOptions& options) {
  RunDirectory run = RunDirectory::open(run_dir);
  const config::Config config = config::load_config(run.config_path().string());
  TORCH_CHECK_VALUE(options.checkpoint == "best" || options.checkpoint == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint, "'");
  TORCH_CHECK_VALUE(options.split == "test" || options.split == "val", "split must be test or val, but got '",
                    options.split, "'");
  const int64_t threads = configure_threads_and_seed(config.train);
  const torch::Device device = select_device(config.train.device);
  const auto task = make_task(config, device);
  const fs::path checkpoint = options.checkpoint == "best" ? run.best_checkpoint() : run.last_checkpoint();
  const TrainingState state = load_checkpoint(checkpoint, task->module(), nullptr);
  quant::QuantizerSet quantizers(task->module());
  if (options.weight_bits) quantizers.set_weight_bits(*options.weight_bits);
  if (options.act_bits) quantizers.set_activation_bits(*options.act_bits);
  const EvalSplit split = options.split == "test" ? EvalSplit::kTest : EvalSplit::kVal;
  TORCH_CHECK_VALUE(task->has_split(split), "this run has no ", options.split, " split");
  const EvalStats stats = task->evaluate(split);

  int64_t weight_bits = quant::kFullPrecisionBits, act_bits = quant::kFullPrecisionBits;
  for (const auto& [name, q] : quantizers.weights()) weight_bits = q->bits();
  for (const auto& [name, q] : quantizers.activations()) act_bits = q->bits();
  return {{"run", run_dir.string()},  {"checkpoint", options.checkpoint}, {"epoch", state.epoch},
          {"split", options.split},   {"accuracy", stats.accuracy},       {"loss", stats.loss},
          {"samples", stats.samples}, {"weight_bits", weight_bits},       {"act_bits", act_bits},
          {"threads", threads}};
}

}  // namespace pdeq::train
