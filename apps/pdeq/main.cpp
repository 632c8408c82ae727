// pdeq command line: parses the arguments (cli.h), makes one library call (pdeq::commands), prints its
// result.
#include "cli.h"

#include <pdeq/config/config.h>
#include <pdeq/train/runtime.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>

#include <iostream>

namespace {

using namespace pdeq::commands;

void print(const nlohmann::json& value, bool as_json) {
  std::cout << value.dump(as_json ? -1 : 2) << std::endl;
}

/// Runs the command `cli` selected; returns the exit code (docs/cli.md).
int run(pdeq::cli::Cli& cli) {
  const auto child_train = [](const TrainOptions& o) { return pdeq::cli::command_line(o); };
  if (*cli.train_cmd) {
    const auto result = train(cli.train, child_train);
    if (!result.summary.is_null()) print(result.to_json(), false);  // ranks > 0 and stopped runs: nothing
    return result.exit_code;
  }
  if (*cli.eval_cmd) {
    const auto result = eval(cli.eval);
    if (!cli.as_json)
      std::cerr << (cli.eval.model.empty() ? "" : "integer ") << "accuracy " << 100 * result.accuracy
                << "%\n";
    print(result.to_json(), cli.as_json);
  } else if (*cli.params_cmd) {
    const auto result = params(cli.params);
    print(result.to_json(), cli.as_json);
    if (!cli.as_json) std::cout << result.params << std::endl;  // the last line: the count alone
  } else if (*cli.bench_train_cmd) {
    const auto result = bench_train(
        cli.bench_train, [&](const BenchTrainOptions& o) { return pdeq::cli::command_line(o, cli.as_json); });
    if (!result.figures.is_null()) print(result.to_json(), cli.as_json);  // ranks > 0: nothing
    return result.exit_code;
  } else if (*cli.bench_data_cmd) {
    print(bench_data(cli.bench_data).to_json(), cli.as_json);
  } else if (*cli.bench_infer_cmd) {
    print(bench_infer(cli.bench_infer).to_json(), cli.as_json);
  } else if (*cli.export_cmd) {
    print(export_model(cli.export_options).to_json(), false);
  } else if (*cli.stability_cmd) {
    print(analyze_stability(cli.stability).to_json(), cli.as_json);
  } else if (*cli.tv_cmd) {
    print(analyze_tv(cli.tv).to_json(), false);
  } else if (*cli.segmentation_cmd) {
    print(analyze_segmentation(cli.segmentation).to_json(), false);
  } else if (*cli.sweep_cmd) {
    const auto result = sweep(cli.sweep, child_train);
    if (cli.sweep.dry_run) {
      for (const auto& point : result.outcome.plan)
        std::cout << point["state"].get<std::string>() << "\t" << point["name"].get<std::string>() << "\n";
      std::cout << result.outcome.total << " points, " << result.outcome.done << " done" << std::endl;
      return 0;
    }
    std::cout << result.to_json().dump() << std::endl;
    return result.exit_code();
  } else if (*cli.report_cmd) {
    std::cout << report(cli.report).markdown;
  } else if (*cli.schema_cmd) {
    std::cout << pdeq::config::reference_markdown();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  pdeq::train::prefer_avx512_kernels();  // before any tensor operation
  // Logs go to stderr so that stdout carries only results (JSON, counts).
  spdlog::set_default_logger(spdlog::stderr_color_mt("pdeq"));
  CLI::App app{"pdeq: quantization-aware training of PDE-inspired, forward-stable networks"};
  pdeq::cli::Cli cli(app);
  // Command-line errors exit 2 (docs/cli.md), not with CLI11's own codes (105, 106, ...); --help is 0.
  const auto usage_error = [&app](const CLI::Error& e) { return app.exit(e) == 0 ? 0 : 2; };
  try {
    app.parse(argc, argv);
    cli.resolve();
  } catch (const CLI::ParseError& e) {
    return usage_error(e);
  }
  try {
    return run(cli);
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
}
