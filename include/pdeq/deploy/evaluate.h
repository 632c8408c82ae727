// `pdeq eval --model x.pdeqint`: integer-only accuracy on a split, optionally against the fake-quant run.
#pragma once

#include <pdeq/deploy/int_model.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace pdeq::deploy {

struct IntEvalOptions {
  std::string split = "test";  ///< test | val
  /// The run the model was exported from (or any run of the same network): its fake-quant model is run on
  /// the same batches, and the report adds prediction agreement, both accuracies, and per layer the largest
  /// difference between the integer and the fake-quant activation, in quantization steps of that layer.
  std::optional<std::filesystem::path> compare_run;
  std::string checkpoint = "best";  ///< of compare_run
  int64_t max_batches = 0;          ///< > 0: only the first N batches
  ResidualMode residuals = ResidualMode::kExact;
  /// Not empty: a folder that receives the first batch as NumPy files, for running the same inputs in
  /// another runtime (scripts/check_onnx.sh): images.npy (float32 [N, C, H, W], normalised as the model
  /// expects), logits.npy (float32 [N, classes], the integer model's) and labels.npy (int64 [N]).
  std::filesystem::path dump_batch;
};

/// Accuracy of the integer model on the dataset named in its file (in-memory datasets: CIFAR,
/// (Fashion-)MNIST). JSON: accuracy, samples, split, engine, residuals; with compare_run also
/// fake_quant_accuracy, agreement (fraction of equal predictions), accuracy_difference, max_logit_difference,
/// layers [{name, max_step_difference, mismatched_fraction}] and max_step_difference.
nlohmann::json evaluate_int_model(const std::filesystem::path& model, const IntEvalOptions& options = {});

}  // namespace pdeq::deploy
