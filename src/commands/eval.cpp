#include <pdeq/commands/eval.h>

#include <pdeq/config/config.h>
#include <pdeq/deploy/evaluate.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/runtime.h>

namespace pdeq::commands {
namespace fs = std::filesystem;

namespace {

EvalResult evaluate_run(const EvalOptions& options) {
  const fs::path& run_dir = options.run;
  run::RunDirectory run = run::RunDirectory::open(run_dir);
  const config::Config config = experiment::read_run_config(run);
  TORCH_CHECK_VALUE(options.checkpoint == "best" || options.checkpoint == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint, "'");
  TORCH_CHECK_VALUE(options.split == "test" || options.split == "val", "split must be test or val, but got '",
                    options.split, "'");
  const int64_t threads = train::configure_threads_and_seed(config.train.threads, config.train.seed);
  const torch::Device device = experiment::run_device(config, options.device);
  TORCH_CHECK_VALUE(config.train.seeds == 1, "run ", run_dir.string(), " holds ", config.train.seeds,
                    " seeds; evaluate one of its seed<i> folders");
  const auto task = experiment::make_task(config, device);
  const fs::path checkpoint = options.checkpoint == "best" ? run.best_checkpoint() : run.last_checkpoint();
  const run::TrainingState state = run::load_checkpoint(checkpoint, task->module(), nullptr);
  quant::QuantizerSet quantizers(task->module());
  if (options.weight_bits) quantizers.set_weight_bits(*options.weight_bits);
  if (options.act_bits) quantizers.set_activation_bits(*options.act_bits);
  const train::EvalSplit split = options.split == "test" ? train::EvalSplit::kTest : train::EvalSplit::kVal;
  TORCH_CHECK_VALUE(task->has_split(split), "this run has no ", options.split, " split");
  const train::EvalStats stats = task->evaluate(split);

  int64_t weight_bits = quant::kFullPrecisionBits, act_bits = quant::kFullPrecisionBits;
  for (const auto& [name, q] : quantizers.weights()) weight_bits = q->bits();
  for (const auto& [name, q] : quantizers.activations()) act_bits = q->bits();
  nlohmann::json report = {{"run", run_dir.string()},    {"checkpoint", options.checkpoint},
                           {"epoch", state.epoch},       {"split", options.split},
                           {"accuracy", stats.accuracy}, {"loss", stats.loss},
                           {"samples", stats.samples},   {"weight_bits", weight_bits},
                           {"act_bits", act_bits},       {"threads", threads},
                           {"device", device.str()}};
  return {stats.accuracy, report};
}

}  // namespace

EvalResult eval(const EvalOptions& options) {
  TORCH_CHECK_VALUE(options.run.empty() != options.model.empty(),
                    "eval needs either a run folder or a model file");
  if (!options.run.empty()) return evaluate_run(options);
  deploy::IntEvalOptions int_options;
  int_options.split = options.split;
  int_options.compare_run = options.compare_run;
  int_options.checkpoint = options.checkpoint;
  int_options.max_batches = options.max_batches;
  int_options.residuals = options.residuals;
  int_options.dump_batch = options.dump_batch;
  const nlohmann::json report = deploy::evaluate_int_model(options.model, int_options);
  return {report.at("accuracy").get<double>(), report};
}

}  // namespace pdeq::commands
