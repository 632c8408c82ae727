// pdeq command line: parses arguments, then makes one library call per command.
#include <pdeq/pdeq.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  pdeq::train::prefer_avx512_kernels();  // before any tensor operation
  // Logs go to stderr so that stdout carries only results (JSON, counts).
  spdlog::set_default_logger(spdlog::stderr_color_mt("pdeq"));
  CLI::App app{"pdeq: quantization-aware training of PDE-inspired, forward-stable networks"};
  app.require_subcommand(1);
  std::string config_path, out_dir, resume_dir, run_dir, model_name, checkpoint = "best", split = "test";
  std::vector<std::string> overrides;
  bool force = false, as_json = false, no_baseline = false;
  int64_t max_steps = 0, seeds = 0, num_classes = 10, in_channels = 3, wbits = 32, abits_params = 32;
  std::optional<int64_t> abits, eval_wbits;
  pdeq::train::BenchOptions bench;
  int64_t int_eval_max_batches = 0, calibration_batches = 8;
  pdeq::train::TVAnalysisOptions tv;
  // Data parallelism: --nproc starts local ranks, each joining with --rank/--world-size/--master.
  int nproc = 1;
  std::optional<int64_t> rank;
  int64_t world_size = 1, dist_timeout = 120;
  std::string master;
  const auto add_dist_options = [&](CLI::App* cmd) {
    auto* nproc_opt = cmd->add_option("--nproc", nproc, "data-parallel: start N local ranks (1 thread each)")
                          ->check(CLI::Range(1, 1024));
    auto* rank_opt = cmd->add_option("--rank", rank, "data-parallel: this process's rank (any launcher)")
                         ->check(CLI::NonNegativeNumber);
    auto* world_opt = cmd->add_option("--world-size", world_size, "data-parallel: number of ranks")
                          ->check(CLI::Range(1, 65536));
    auto* master_opt =
        cmd->add_option("--master", master, "data-parallel rendezvous ADDR:PORT (rank 0 listens)")
            ->check([](const std::string& value) {
              try {
                pdeq::dist::parse_master(value);
                return std::string();
              } catch (const std::exception& e) {
                return std::string(e.what());
              }
            });
    cmd->add_option("--dist-timeout", dist_timeout, "data-parallel: seconds before a silent rank is an error")
        ->check(CLI::PositiveNumber);
    rank_opt->needs(world_opt)->needs(master_opt)->excludes(nproc_opt);
    world_opt->needs(rank_opt);
    master_opt->needs(rank_opt);
  };

  auto* train = app.add_subcommand("train", "train a model from a JSON config, or resume a run");
  auto* config_opt =
      train->add_option("--config", config_path, "experiment config (JSON)")->check(CLI::ExistingFile);
  train->add_option("--set", overrides, "override a config value, e.g. train.epochs=3 (repeatable)");
  auto* out_opt = train->add_option("--out", out_dir, "run folder to create");
  auto* resume_opt = train->add_option("--resume", resume_dir, "continue the run in this folder");
  train->add_flag("--force", force, "overwrite an existing run folder");
  train->add_option("--max-steps", max_steps, "stop (resumably) after this many steps");
  train->add_option("--seeds", seeds, "repeat with N seeds; the summary has mean and std")
      ->check(CLI::Range(1, 1000));
  config_opt->excludes(resume_opt)->needs(out_opt);
  resume_opt->excludes(out_opt);
  add_dist_options(train);

  auto* eval = app.add_subcommand("eval", "evaluate a run's checkpoint, optionally at other bit widths");
  auto* eval_run = eval->add_option("--run", run_dir, "run folder");
  // Integer inference of an exported model (pdeq export), optionally compared with its fake-quant run.
  std::string int_model, compare_run;
  auto* eval_model = eval->add_option("--model", int_model, "exported integer model (.pdeqint)")
                         ->check(CLI::ExistingFile)
                         ->excludes(eval_run);
  eval->add_option("--compare-run", compare_run, "with --model: agreement with this run's fake-quant model")
      ->check(CLI::ExistingDirectory)
      ->needs(eval_model);
  std::string residuals = "exact";
  eval->add_option("--residuals", residuals,
                   "with --model: exact (residual adds as fake-quant computes them) | int8 (fastest)")
      ->check(CLI::IsMember({"exact", "int8"}))
      ->needs(eval_model);
  eval->add_option("--max-batches", int_eval_max_batches, "with --model: only the first N batches")
      ->check(CLI::NonNegativeNumber)
      ->needs(eval_model);
  // An exported model has its bit widths baked in.
  eval->add_option("--abits", abits, "activation bits (32: full precision)")
      ->check(CLI::Range(1, 32))
      ->excludes(eval_model);
  eval->add_option("--wbits", eval_wbits, "weight bits (32: full precision)")
      ->check(CLI::Range(2, 32))
      ->excludes(eval_model);
  eval->add_option("--checkpoint", checkpoint, "best | last")->check(CLI::IsMember({"best", "last"}));
  eval->add_option("--split", split, "test | val")->check(CLI::IsMember({"test", "val"}));

  auto* params = app.add_subcommand("params", "parameter count of a model (last line: the integer)");
  params->add_option("--model", model_name, "model name")
      ->required()
      ->check(CLI::IsMember(pdeq::models::model_names()));
  params->add_option("--num-classes", num_classes, "classes")->check(CLI::PositiveNumber);
  params->add_option("--in-channels", in_channels, "input channels")->check(CLI::PositiveNumber);
  params->add_option("--wbits", wbits, "weight bits; < 32 counts the quantizers' scales too")
      ->check(CLI::Range(2, 32));
  params->add_option("--abits", abits_params, "activation bits; < 32 counts the quantizers' scales too")
      ->check(CLI::Range(1, 32));
  params->add_option("--set", overrides, "config value, e.g. model.stable=true (repeatable)");

  auto* bench_cmd = app.add_subcommand("bench", "benchmarks (machine-readable figures)");
  auto* bench_train =
      bench_cmd->add_subcommand("train", "training images/s on synthetic batches vs float (graphs: s/epoch)");
  bench_cmd->require_subcommand(1);
  bench_train->add_option("--config", config_path, "experiment config (JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_train->add_option("--set", overrides, "override a config value (repeatable)");
  bench_train->add_option("--steps", bench.steps, "timed steps per round")->check(CLI::PositiveNumber);
  bench_train->add_option("--warmup", bench.warmup, "untimed steps first");
  bench_train->add_option("--rounds", bench.rounds, "alternating rounds (median reported)")
      ->check(CLI::PositiveNumber);
  bench_train->add_flag("--no-baseline", no_baseline, "skip the full-precision comparison");
  bench_train->add_flag("--all-modes", bench.all_modes,
                        "also measure every train.memory_format x train.precision (table `modes`)");
  bench_train->add_option("--baseline-set", bench.baseline_overrides,
                          "override a value of the baseline's config, e.g. model.stable=false (repeatable)");
  add_dist_options(bench_train);
  auto* bench_data = bench_cmd->add_subcommand("data", "training loader images/s alone (decode + augment)");
  pdeq::train::DataBenchOptions data_bench;
  bench_data->add_option("--config", config_path, "experiment config (JSON)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_data->add_option("--set", overrides, "override a config value (repeatable)");
  bench_data->add_option("--batches", data_bench.batches, "timed batches")->check(CLI::PositiveNumber);
  bench_data
      ->add_option("--train-steps", data_bench.train_steps,
                   "also time N real training steps against synthetic batches")
      ->check(CLI::NonNegativeNumber);
  auto* bench_infer =
      bench_cmd->add_subcommand("infer", "integer vs float inference images/s of an exported model");
  pdeq::deploy::InferBenchOptions infer_bench;
  bench_infer->add_option("--model", int_model, "exported integer model (.pdeqint)")
      ->required()
      ->check(CLI::ExistingFile);
  bench_infer->add_option("--batch", infer_bench.batch_sizes, "batch sizes (repeatable)")
      ->check(CLI::PositiveNumber);
  bench_infer->add_option("--threads", infer_bench.threads, "thread counts (repeatable)")
      ->check(CLI::PositiveNumber);
  bench_infer->add_option("--residuals", residuals, "exact | int8 (see pdeq eval --model)")
      ->check(CLI::IsMember({"exact", "int8"}));
  bench_infer->add_option("--rounds", infer_bench.rounds, "alternating rounds (median reported)")
      ->check(CLI::PositiveNumber);
  bench_infer->add_option("--seconds", infer_bench.seconds, "seconds per measurement")
      ->check(CLI::PositiveNumber);

  auto* export_cmd = app.add_subcommand("export", "a trained run as an integer model (int8 codes + graph)");
  pdeq::deploy::ExportOptions export_options;
  std::string export_format = "pdeq";
  export_cmd->add_option("--run", run_dir, "run folder")->required()->check(CLI::ExistingDirectory);
  export_cmd->add_option("--out", out_dir, "file to write (.pdeqint, or .onnx with --format onnx)")
      ->required();
  export_cmd
      ->add_option(
          "--format", export_format,
          pdeq::deploy::onnx_export_built()
              ? "pdeq (.pdeqint, for pdeq eval/bench) | onnx (QDQ, opset 13)"
              : "pdeq (.pdeqint) | onnx (not in this build: pdeq was configured without libonnx-dev)")
      ->check(CLI::IsMember({"pdeq", "onnx"}));
  export_cmd->add_option("--checkpoint", checkpoint, "best | last")->check(CLI::IsMember({"best", "last"}));
  export_cmd
      ->add_option("--calibration-batches", calibration_batches,
                   "training batches that set the residual branches' int8 ranges (default 8)")
      ->check(CLI::PositiveNumber);

  auto* analyze = app.add_subcommand("analyze", "analyses of trained runs (the paper's figures)");
  analyze->require_subcommand(1);
  auto* stability = analyze->add_subcommand(
      "stability", "per-layer error between quantized and full-precision activations of the same weights");
  pdeq::train::StabilityOptions stability_options;
  std::optional<int64_t> stability_abits;
  stability->add_option("--run", stability_options.runs, "run folder (repeatable: one line per run)")
      ->required()
      ->check(CLI::ExistingDirectory);
  stability
      ->add_option("--abits", stability_abits, "activation bits of the quantized pass (default: the run's)")
      ->check(CLI::Range(1, 31));
  stability->add_option("--split", stability_options.split, "test | val")
      ->check(CLI::IsMember({"test", "val"}));
  stability->add_option("--checkpoint", stability_options.checkpoint, "best | last")
      ->check(CLI::IsMember({"best", "last"}));
  stability->add_option("--max-batches", stability_options.max_batches, "only the first N batches (0: all)")
      ->check(CLI::NonNegativeNumber);
  stability->add_option("--out", out_dir, "folder for stability.csv, .png and .json")->required();

  for (auto* cmd : {eval, params, bench_train, bench_data, bench_infer, stability})
    cmd->add_flag("--json", as_json, "print JSON only");

  auto* analyze_tv =
      analyze->add_subcommand("tv", "TV smoothing of one layer and per-layer quantization error");
  analyze_tv->add_option("--run", run_dir, "run folder")->required();
  analyze_tv->add_option("--out", out_dir, "folder for tv.json, quant_mse.csv and the images")->required();
  analyze_tv->add_option("--layer", tv.layer, "activation quantizer, e.g. layer2.0.act_mid");
  analyze_tv->add_option("--image", tv.image, "test image index")->check(CLI::NonNegativeNumber);
  analyze_tv->add_option("--images", tv.images, "test images for per-layer errors")
      ->check(CLI::PositiveNumber);
  analyze_tv->add_option("--checkpoint", tv.checkpoint, "best | last")
      ->check(CLI::IsMember({"best", "last"}));

  auto* sweep_cmd = app.add_subcommand("sweep", "run every point of a sweep file (resumable, parallel jobs)");
  pdeq::sweep::RunnerOptions sweep_options;
  sweep_cmd->add_option("--config", config_path, "sweep file (JSON)")->required()->check(CLI::ExistingFile);
  sweep_cmd->add_option("--out", out_dir, "sweep folder (one run folder per point)")->required();
  sweep_cmd->add_option("--jobs", sweep_options.jobs, "points run in parallel (threads each: cores / jobs)")
      ->check(CLI::PositiveNumber);
  sweep_cmd->add_option("--cores", sweep_options.cores, "cores to split between the jobs (default: all)")
      ->check(CLI::PositiveNumber);
  sweep_cmd->add_flag("--dry-run", sweep_options.dry_run, "list the points and their state, run nothing");

  auto* report_cmd = app.add_subcommand("report", "results.csv/.md and plots over finished run folders");
  std::vector<std::string> run_patterns;
  pdeq::sweep::ReportOptions report_options;
  report_cmd->add_option("--runs", run_patterns, "run folders, shell glob (quoted; repeatable)")->required();
  report_cmd->add_option("--out", out_dir, "report folder")->required();
  report_cmd->add_option("--best-per", report_options.best_per,
                         "pick the best row by validation accuracy per value of this key (repeatable)");

  // Command-line errors exit 2 (the README's table), not with CLI11's own codes (105, 106, ...); --help is 0.
  const auto usage_error = [&app](const CLI::Error& e) { return app.exit(e) == 0 ? 0 : 2; };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return usage_error(e);
  }
  try {
    std::optional<pdeq::dist::ProcessGroupOptions> distributed;
    if (rank) {
      if (*rank >= world_size) throw CLI::ValidationError("--rank", "must be < --world-size");
      const auto [address, port] = pdeq::dist::parse_master(master);
      distributed = pdeq::dist::ProcessGroupOptions(*rank, world_size)
                        .master_addr(address)
                        .master_port(port)
                        .timeout(std::chrono::seconds(dist_timeout));
    }
    const auto launch_ranks = [&] {
      return pdeq::dist::launch_local(std::filesystem::read_symlink("/proc/self/exe"),
                                      pdeq::dist::without_option({argv + 1, argv + argc}, "nproc"), nproc);
    };
    if (*train && nproc > 1) {
      // What every rank would refuse is refused once, here, before any rank starts.
      if (resume_dir.empty()) {
        auto config = pdeq::config::load_config(config_path, overrides);
        if (seeds > 0) config.train.seeds = seeds;
        pdeq::train::validate_config(config);
        pdeq::train::validate_distributed(config, nproc);
      } else {
        pdeq::train::check_resumable(resume_dir, nproc);
      }
      return launch_ranks();
    }
    if (*bench_train && nproc > 1) return launch_ranks();
    if (*train) {
      if (config_path.empty() && resume_dir.empty()) throw CLI::RequiredError("--config or --resume");
      if (!resume_dir.empty() && !overrides.empty())
        throw CLI::ValidationError("--set cannot change a resumed run");
      if (!resume_dir.empty() && seeds > 0) throw CLI::ValidationError("--seeds cannot change a resumed run");
      const pdeq::train::RunOptions options{force, max_steps, seeds, distributed};
      const auto result =
          resume_dir.empty()
              ? pdeq::train::train_run(pdeq::config::load_config(config_path, overrides), out_dir, options)
              : pdeq::train::resume_run(resume_dir, options);
      if (!result.finished) return result.interrupted ? 130 : 0;
      if (!result.summary.is_null()) std::cout << result.summary.dump(2) << std::endl;  // ranks > 0: nothing
    } else if (*eval && !int_model.empty()) {
      pdeq::deploy::IntEvalOptions options{split, std::nullopt, checkpoint, int_eval_max_batches};
      if (!compare_run.empty()) options.compare_run = compare_run;
      options.residuals = pdeq::deploy::parse_residual_mode(residuals);
      const auto result = pdeq::deploy::evaluate_int_model(int_model, options);
      if (!as_json) std::cerr << "integer accuracy " << 100 * result["accuracy"].get<double>() << "%\n";
      std::cout << result.dump(as_json ? -1 : 2) << std::endl;
    } else if (*export_cmd) {
      export_options.format(export_format).checkpoint(checkpoint);
      export_options.calibration_batches(calibration_batches);
      std::cout << pdeq::deploy::export_run(run_dir, out_dir, export_options).dump(2) << std::endl;
    } else if (*bench_infer) {
      infer_bench.residuals = pdeq::deploy::parse_residual_mode(residuals);
      std::cout << pdeq::deploy::bench_infer(int_model, infer_bench).dump(as_json ? -1 : 2) << std::endl;
    } else if (*eval) {
      if (run_dir.empty()) throw CLI::RequiredError("--run or --model");
      const auto result = pdeq::train::evaluate_run(run_dir, {eval_wbits, abits, checkpoint, split});
      if (!as_json) std::cerr << "accuracy " << 100 * result["accuracy"].get<double>() << "%\n";
      std::cout << result.dump(as_json ? -1 : 2) << std::endl;
    } else if (*params) {
      auto config = pdeq::config::config_from_overrides(overrides);
      config.model.name = model_name;
      config.quant.weight_bits = wbits;
      config.quant.act_bits = abits_params;
      const auto report = pdeq::analysis::param_report(
          model_name, pdeq::train::model_options(config, num_classes, in_channels));
      if (as_json) {
        std::cout << report.dump() << std::endl;
      } else {
        std::cout << report.dump(2) << "\n" << report["params"].get<int64_t>() << std::endl;
      }
    } else if (*stability) {
      stability_options.act_bits = stability_abits;
      const auto report = pdeq::train::analyze_stability(stability_options, out_dir);
      // The per-layer lists are in stability.json/.csv; the terminal gets the comparison.
      nlohmann::json brief = {
          {"out", out_dir}, {"ratios", report["ratios"]}, {"runs", nlohmann::json::array()}};
      for (const auto& run : report["runs"]) {
        brief["runs"].push_back({{"label", run["label"]},
                                 {"mean_error", run["mean_error"]},
                                 {"accuracy", run["accuracy"]},
                                 {"full_precision_accuracy", run["full_precision_accuracy"]}});
      }
      std::cout << brief.dump(as_json ? -1 : 2) << std::endl;
    } else if (*bench_train) {
      bench.baseline = !no_baseline;
      bench.distributed = distributed;
      const auto result = pdeq::train::bench_train(pdeq::config::load_config(config_path, overrides), bench);
      if (!result.is_null()) std::cout << result.dump(as_json ? -1 : 2) << std::endl;  // ranks > 0: nothing
    } else if (*bench_data) {
      const auto result =
          pdeq::train::bench_data(pdeq::config::load_config(config_path, overrides), data_bench);
      std::cout << result.dump(as_json ? -1 : 2) << std::endl;
    } else if (*sweep_cmd) {
      sweep_options.executable = std::filesystem::read_symlink("/proc/self/exe");
      const auto outcome = pdeq::sweep::run_sweep_file(config_path, out_dir, sweep_options);
      if (sweep_options.dry_run) {
        for (const auto& point : outcome.plan) {
          std::cout << point["state"].get<std::string>() << "\t" << point["name"].get<std::string>() << "\n";
        }
        std::cout << outcome.total << " points, " << outcome.done << " done" << std::endl;
        return 0;
      }
      std::cout << nlohmann::json{{"out", out_dir},
                                  {"points", outcome.total},
                                  {"done", outcome.done},
                                  {"failed", outcome.failed},
                                  {"interrupted", outcome.interrupted}}
                       .dump()
                << std::endl;
      if (outcome.stopped) return 130;
      return outcome.failed > 0 ? 1 : 0;
    } else if (*report_cmd) {
      const auto report =
          pdeq::sweep::write_report(pdeq::sweep::collect_runs(run_patterns), out_dir, report_options);
      std::cout << pdeq::sweep::markdown_table(report);
    } else if (*analyze_tv) {
      std::cout << pdeq::train::analyze_tv_run(run_dir, out_dir, tv).dump(2) << std::endl;
    }
  } catch (const pdeq::config::ConfigError& e) {
    std::cerr << "pdeq: config error: " << e.what() << std::endl;
    return 2;
  } catch (const CLI::Error& e) {
    return usage_error(e);
  } catch (const c10::ValueError& e) {
    // An option value that is only checkable once the run is open (e.g. a --layer the model lacks).
    std::cerr << "pdeq: error: " << e.what_without_backtrace() << std::endl;
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "pdeq: error: " << e.what_without_backtrace() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pdeq: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
