// `pdeq eval`: accuracy of a run's checkpoint (optionally at other bit widths), or of an exported integer
// model (optionally against the run it came from).
#pragma once

#include <pdeq/deploy/int_model.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace pdeq::commands {

struct EvalOptions {
  std::filesystem::path run;           ///< a run folder (fake-quant model) ...
  std::filesystem::path model;         ///< ... or an exported integer model (.pdeqint)
  std::optional<int64_t> weight_bits;  ///< runs: override the checkpoint's bit widths (32: full precision)
  std::optional<int64_t> act_bits;
  std::string checkpoint = "best";  ///< best | last
  std::string split = "test";       ///< test | val
  /// Integer models: the run whose fake-quant model is compared on the same batches.
  std::optional<std::filesystem::path> compare_run;
  deploy::ResidualMode residuals = deploy::ResidualMode::kExact;
  int64_t max_batches = 0;  ///< integer models: > 0 evaluates only the first N batches
  /// Integer models: not empty, the folder for the first batch's images, logits and labels (.npy).
  std::filesystem::path dump_batch;
  /// Runs: not empty, the device to evaluate on instead of the run's train.device (`--device`).
  std::string device;
};

struct EvalResult {
  double accuracy = 0.0;
  /// The whole report: runs {run, checkpoint, epoch, split, accuracy, loss, samples, weight_bits, act_bits,
  /// threads, device}; integer models deploy::evaluate_int_model's fields.
  nlohmann::json report;
  nlohmann::json to_json() const { return report; }
};

EvalResult eval(const EvalOptions& options);

}  // namespace pdeq::commands
