#include "cli.h"

#include <pdeq/deploy/onnx_export.h>
#include <pdeq/distributed/launch.h>
#include <pdeq/models/registry.h>

#include <filesystem>

namespace pdeq::cli {
namespace {

const std::string& executable() {
  static const std::string path = std::filesystem::read_symlink("/proc/self/exe").string();
  return path;
}

void append(std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  args.push_back(flag);
  args.push_back(value);
}

void append_distributed(std::vector<std::string>& args, const DistributedOptions& d) {
  if (d.nproc > 1) append(args, "--nproc", std::to_string(d.nproc));
  if (d.rank) {
    append(args, "--rank", std::to_string(*d.rank));
    append(args, "--world-size", std::to_string(d.world_size));
    append(args, "--master", d.master);
  }
  append(args, "--dist-timeout", std::to_string(d.timeout_seconds));
}

void add_distributed_options(CLI::App* cmd, DistributedOptions& d) {
  auto* nproc = cmd->add_option("--nproc", d.nproc, "data-parallel: start N local ranks (1 thread each)")
                    ->check(CLI::Range(1, 1024));
  auto* rank = cmd->add_option("--rank", d.rank, "data-parallel: this process's rank (any launcher)")
                   ->check(CLI::NonNegativeNumber);
  auto* world = cmd->add_option("--world-size", d.world_size, "data-parallel: number of ranks")
                    ->check(CLI::Range(1, 65536));
  auto* master = cmd->add_option("--master", d.master, "data-parallel rendezvous ADDR:PORT (rank 0 listens)")
                     ->check([](const std::string& value) {
                       try {
                         pdeq::distributed::parse_master(value);
                         return std::string();
                       } catch (const std::exception& e) {
                         return std::string(e.what());
                       }
                     });
  cmd->add_option("--dist-timeout", d.timeout_seconds,
                  "data-parallel: seconds before a silent rank is an error")
      ->check(CLI::PositiveNumber);
  rank->needs(world)->needs(master)->excludes(nproc);
  world->needs(rank);
  master->needs(rank);
}

/// `--device`: where the command computes (the config's train.device otherwise; the schema checks the name).
CLI::Option* add_device(CLI::App* cmd, std::string& device, const std::string& what) {
  return cmd->add_option("--device", device, "auto | cpu | cuda | cuda:N: " + what);
}

CLI::Option* add_checkpoint(CLI::App* cmd, std::string& checkpoint) {
  return cmd->add_option("--checkpoint", checkpoint, "best | last")->check(CLI::IsMember({"best", "last"}));
}

/// Image models first, then graph models, then segmentation models.
std::vector<std::string> all_model_names() {
  auto names = pdeq::models::model_names(pdeq::models::ModelInput::kImage);
  for (const auto& name : pdeq::models::model_names(pdeq::models::ModelInput::kGraph)) names.push_back(name);
  for (const auto& name : pdeq::models::model_names(pdeq::models::ModelInput::kSegmentation))
    names.push_back(name);
  return names;
}

}  // namespace

std::vector<std::string> command_line(const TrainOptions& o) {
  std::vector<std::string> args{executable(), "train"};
  if (!o.resume.empty()) append(args, "--resume", o.resume.string());
  if (!o.config.empty()) append(args, "--config", o.config.string());
  if (!o.out.empty()) append(args, "--out", o.out.string());
  for (const auto& value : o.overrides) append(args, "--set", value);
  if (o.force) args.push_back("--force");
  if (o.max_steps > 0) append(args, "--max-steps", std::to_string(o.max_steps));
  if (o.seeds > 0) append(args, "--seeds", std::to_string(o.seeds));
  if (!o.device.empty()) append(args, "--device", o.device);
  append_distributed(args, o.distributed);
  return args;
}

std::vector<std::string> command_line(const BenchTrainOptions& o, bool as_json) {
  std::vector<std::string> args{executable(), "bench", "train"};
  append(args, "--config", o.config.string());
  for (const auto& value : o.overrides) append(args, "--set", value);
  append(args, "--steps", std::to_string(o.steps));
  append(args, "--warmup", std::to_string(o.warmup));
  append(args, "--rounds", std::to_string(o.rounds));
  if (!o.baseline) args.push_back("--no-baseline");
  if (o.all_modes) args.push_back("--all-modes");
  for (const auto& value : o.baseline_overrides) append(args, "--baseline-set", value);
  append_distributed(args, o.distributed);
  if (as_json) args.push_back("--json");
  return args;
}

Cli::Cli(CLI::App& app) {
  app.require_subcommand(1);
  const auto add_json = [this](CLI::App* cmd) { cmd->add_flag("--json", as_json, "print JSON only"); };

  train_cmd = app.add_subcommand("train", "train a model from a JSON config, or resume a run");
  auto* config_opt =
      train_cmd->add_option("--config", train.config, "experiment config (JSON)")->check(CLI::ExistingFile);
  train_cmd->add_option("--set", train.overrides,
                        "override a config value, e.g. train.epochs=3 (repeatable)");
  auto* out_opt = train_cmd->add_option("--out", train.out, "run folder to create");
  auto* resume_opt = train_cmd->add_option("--resume", train.resume, "continue the run in this folder");
  train_cmd->add_flag("--force", train.force, "overwrite an existing run folder");
  train_cmd->add_option("--max-steps", train.max_steps, "stop (resumably) after this many steps");
  train_cmd->add_option("--seeds", train.seeds, "repeat with N seeds; the summary has mean and std")
      ->check(CLI::Range(1, 1000));
  add_device(train_cmd, train.device, "a new run's train.device, or where a resumed run continues");
  config_opt->excludes(resume_opt)->needs(out_opt);
  resume_opt->excludes(out_opt);
  add_distributed_options(train_cmd, train.distributed);

  eval_cmd = app.add_subcommand("eval", "evaluate a run's checkpoint, optionally at other bit widths");
  auto* eval_run = eval_cmd->add_option("--run", eval.run, "run folder");
  // Integer inference of an exported model (pdeq export), optionally compared with its fake-quant run.
  auto* eval_model = eval_cmd->add_option("--model", eval.model, "exported integer model (.pdeqint)")
                         ->check(CLI::ExistingFile)
                         ->excludes(eval_run);
  eval_cmd
      ->add_option("--compare-run", eval.compare_run,
                   "with --model: agreement with this run's fake-quant model")
      ->check(CLI::ExistingDirectory)
      ->needs(eval_model);
  eval_cmd
      ->add_option("--residuals", residuals,
                   "with --model: exact (residual adds as fake-quant computes them; int32 sums on oneDNN) | "
                   "exact-float (the same on float kernels) | int8 (requantised adds)")
      ->check(CLI::IsMember({"exact", "exact-float", "int8"}))
      ->needs(eval_model);
  eval_cmd->add_option("--max-batches", eval.max_batches, "with --model: only the first N batches")
      ->check(CLI::NonNegativeNumber)
      ->needs(eval_model);
  eval_cmd
      ->add_option("--dump-batch", eval.dump_batch,
                   "with --model: write the first batch's images, logits and labels (.npy) to this folder")
      ->needs(eval_model);
  // An exported model has its bit widths baked in.
  eval_cmd->add_option("--abits", eval.act_bits, "activation bits (32: full precision)")
      ->check(CLI::Range(1, 32))
      ->excludes(eval_model);
  eval_cmd->add_option("--wbits", eval.weight_bits, "weight bits (32: full precision)")
      ->check(CLI::Range(2, 32))
      ->excludes(eval_model);
  add_checkpoint(eval_cmd, eval.checkpoint);
  eval_cmd->add_option("--split", eval.split, "test | val")->check(CLI::IsMember({"test", "val"}));
  add_device(eval_cmd, eval.device, "with --run: instead of the run's train.device")->excludes(eval_model);
  eval_run->excludes(eval_model);
  add_json(eval_cmd);

  params_cmd = app.add_subcommand("params", "parameter count of a model (last line: the integer)");
  params_cmd->add_option("--model", params.model, "model name")
      ->required()
      ->check(CLI::IsMember(all_model_names()));
  params_cmd->add_option("--num-classes", params.num_classes, "classes")->check(CLI::PositiveNumber);
  params_cmd->add_option("--in-channels", params.in_channels, "input channels (graph models: node features)")
      ->check(CLI::PositiveNumber);
  params_cmd->add_option("--wbits", params.weight_bits, "weight bits; < 32 counts the quantizers' scales too")
      ->check(CLI::Range(2, 32));
  params_cmd
      ->add_option("--abits", params.act_bits, "activation bits; < 32 counts the quantizers' scales too")
      ->check(CLI::Range(1, 32));
  params_cmd->add_option("--set", params.overrides, "config value, e.g. model.stable=true (repeatable)");
  add_json(params_cmd);

  auto* bench_cmd = app.add_subcommand("bench", "benchmarks (machine-readable figures)");
  bench_cmd->require_subcommand(1);
  bench_train_cmd =
      bench_cmd->add_subcommand("train", "training images/s on synthetic batches vs float (graphs: s/epoch)");
  bench_train_cmd->add_option("--config", bench_train.config, "experiment config (JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_train_cmd->add_option("--set", bench_train.overrides, "override a config value (repeatable)");
  bench_train_cmd->add_option("--steps", bench_train.steps, "timed steps per round")
      ->check(CLI::PositiveNumber);
  bench_train_cmd->add_option("--warmup", bench_train.warmup, "untimed steps first");
  bench_train_cmd->add_option("--rounds", bench_train.rounds, "alternating rounds (median reported)")
      ->check(CLI::PositiveNumber);
  bench_train_cmd->add_flag("--no-baseline", no_baseline, "skip the full-precision comparison");
  bench_train_cmd->add_flag("--all-modes", bench_train.all_modes,
                            "also measure every train.memory_format x train.precision (table `modes`)");
  bench_train_cmd->add_option(
      "--baseline-set", bench_train.baseline_overrides,
      "override a value of the baseline's config, e.g. model.stable=false (repeatable)");
  add_device(bench_train_cmd, bench_train_device, "as --set train.device=...");
  add_distributed_options(bench_train_cmd, bench_train.distributed);
  add_json(bench_train_cmd);

  bench_data_cmd = bench_cmd->add_subcommand("data", "training loader images/s alone (decode + augment)");
  bench_data_cmd->add_option("--config", bench_data.config, "experiment config (JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_data_cmd->add_option("--set", bench_data.overrides, "override a config value (repeatable)");
  bench_data_cmd->add_option("--batches", bench_data.batches, "timed batches")->check(CLI::PositiveNumber);
  bench_data_cmd
      ->add_option("--train-steps", bench_data.train_steps,
                   "also time N real training steps against synthetic batches")
      ->check(CLI::NonNegativeNumber);
  add_device(bench_data_cmd, bench_data_device, "as --set train.device=...");
  add_json(bench_data_cmd);

  bench_infer_cmd =
      bench_cmd->add_subcommand("infer", "integer vs float inference images/s of an exported model");
  bench_infer_cmd->add_option("--model", bench_infer.model, "exported integer model (.pdeqint)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_infer_cmd->add_option("--batch", bench_infer.bench.batch_sizes, "batch sizes (repeatable)")
      ->check(CLI::PositiveNumber);
  bench_infer_cmd->add_option("--threads", bench_infer.bench.threads, "thread counts (repeatable)")
      ->check(CLI::PositiveNumber);
  bench_infer_cmd->add_option("--residuals", residuals, "exact | exact-float | int8 (see pdeq eval --model)")
      ->check(CLI::IsMember({"exact", "exact-float", "int8"}));
  bench_infer_cmd->add_option("--rounds", bench_infer.bench.rounds, "alternating rounds (median reported)")
      ->check(CLI::PositiveNumber);
  bench_infer_cmd->add_option("--seconds", bench_infer.bench.seconds, "seconds per measurement")
      ->check(CLI::PositiveNumber);
  add_json(bench_infer_cmd);

  export_cmd = app.add_subcommand("export", "a trained run as an integer model (int8 codes + graph)");
  export_cmd->add_option("--run", export_options.run, "run folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  export_cmd->add_option("--out", export_options.out, "file to write (.pdeqint, or .onnx with --format onnx)")
      ->required();
  export_cmd
      ->add_option(
          "--format", export_format,
          pdeq::deploy::onnx_export_built()
              ? "pdeq (.pdeqint, for pdeq eval/bench) | onnx (QDQ, opset 13)"
              : "pdeq (.pdeqint) | onnx (not in this build: pdeq was configured without libonnx-dev)")
      ->check(CLI::IsMember({"pdeq", "onnx"}));
  add_checkpoint(export_cmd, export_checkpoint);
  export_cmd
      ->add_option("--calibration-batches", calibration_batches,
                   "training batches that set the residual branches' int8 ranges (default 8)")
      ->check(CLI::PositiveNumber);

  auto* analyze_cmd = app.add_subcommand("analyze", "analyses of trained runs (the paper's figures)");
  analyze_cmd->require_subcommand(1);
  stability_cmd = analyze_cmd->add_subcommand(
      "stability", "per-layer error between quantized and full-precision activations of the same weights");
  stability_cmd->add_option("--run", stability.runs, "run folder (repeatable: one line per run)")
      ->required()
      ->check(CLI::ExistingDirectory);
  stability_cmd
      ->add_option("--abits", stability.act_bits,
                   "activation bits of the quantized pass (default: the run's)")
      ->check(CLI::Range(1, 31));
  stability_cmd->add_option("--split", stability.split, "test | val")->check(CLI::IsMember({"test", "val"}));
  add_checkpoint(stability_cmd, stability.checkpoint);
  stability_cmd->add_option("--max-batches", stability.max_batches, "only the first N batches (0: all)")
      ->check(CLI::NonNegativeNumber);
  stability_cmd->add_option("--out", stability.out, "folder for stability.csv, .png and .json")->required();
  add_device(stability_cmd, stability.device, "instead of each run's train.device");
  add_json(stability_cmd);

  tv_cmd = analyze_cmd->add_subcommand("tv", "TV smoothing of one layer and per-layer quantization error");
  tv_cmd->add_option("--run", tv.run, "run folder")->required();
  tv_cmd->add_option("--out", tv.out, "folder for tv.json, quant_mse.csv and the images")->required();
  tv_cmd->add_option("--layer", tv.layer, "activation quantizer, e.g. layer2.0.act_mid");
  tv_cmd->add_option("--image", tv.image, "test image index")->check(CLI::NonNegativeNumber);
  tv_cmd->add_option("--images", tv.images, "test images for per-layer errors")->check(CLI::PositiveNumber);
  add_checkpoint(tv_cmd, tv.checkpoint);

  segmentation_cmd = analyze_cmd->add_subcommand(
      "segmentation",
      "per-class IoU (iou.csv, iou.json) and frames / labels / predictions (segmentation.png)");
  segmentation_cmd->add_option("--run", segmentation.run, "segmentation run folder")->required();
  segmentation_cmd->add_option("--out", segmentation.out, "folder for iou.json, iou.csv and segmentation.png")
      ->required();
  segmentation_cmd->add_option("--split", segmentation.split, "test | val")
      ->check(CLI::IsMember({"test", "val"}));
  segmentation_cmd->add_option("--frames", segmentation.frames, "frames in segmentation.png (default 4)")
      ->check(CLI::PositiveNumber);
  add_checkpoint(segmentation_cmd, segmentation.checkpoint);

  sweep_cmd = app.add_subcommand("sweep", "run every point of a sweep file (resumable, parallel jobs)");
  sweep_cmd->add_option("--config", sweep.file, "sweep file (JSON)")->required()->check(CLI::ExistingFile);
  sweep_cmd->add_option("--out", sweep.out, "sweep folder (one run folder per point)")->required();
  sweep_cmd->add_option("--jobs", sweep.jobs, "points run in parallel (threads each: cores / jobs)")
      ->check(CLI::PositiveNumber);
  sweep_cmd->add_option("--cores", sweep.cores, "cores to split between the jobs (default: all)")
      ->check(CLI::PositiveNumber);
  sweep_cmd->add_flag("--dry-run", sweep.dry_run, "list the points and their state, run nothing");

  report_cmd = app.add_subcommand("report", "results.csv/.md and plots over finished run folders");
  report_cmd->add_option("--runs", report.runs, "run folders, shell glob (quoted; repeatable)")->required();
  report_cmd->add_option("--out", report.out, "report folder")->required();
  report_cmd->add_option("--best-per", report.report.best_per,
                         "pick the best row by validation accuracy per value of this key (repeatable)");

  schema_cmd =
      app.add_subcommand("schema", "every config key with its default and allowed values (Markdown)");
}

void Cli::resolve() {
  eval.residuals = deploy::parse_residual_mode(residuals);
  bench_infer.bench.residuals = deploy::parse_residual_mode(residuals);
  bench_train.baseline = !no_baseline;
  // The benchmarks take config values; --device is one more (a rank of --nproc gets it back as --set).
  if (!bench_train_device.empty()) bench_train.overrides.push_back("train.device=" + bench_train_device);
  if (!bench_data_device.empty()) bench_data.overrides.push_back("train.device=" + bench_data_device);
  export_options.exporter.format(export_format)
      .checkpoint(export_checkpoint)
      .calibration_batches(calibration_batches);
}

}  // namespace pdeq::cli
