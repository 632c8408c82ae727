#include <pdeq/deploy/evaluate.h>

#include <pdeq/train/runtime.h>

#include <pdeq/config/config.h>
#include <pdeq/data/datasets.h>
#include <pdeq/data/loader.h>
#include <pdeq/deploy/compare.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/registry.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/runtime.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>

namespace pdeq::deploy {
namespace fs = std::filesystem;
namespace {

/// A contiguous float32 or int64 tensor as a NumPy .npy file (format 1.0, little-endian, C order).
void write_npy(const fs::path& path, const torch::Tensor& tensor) {
  const auto t = tensor.contiguous();
  TORCH_INTERNAL_ASSERT(t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kLong);
  std::string shape = "(";
  for (const auto d : t.sizes()) shape += std::to_string(d) + ",";
  shape += ")";
  std::string header = std::string("{'descr': '") + (t.scalar_type() == torch::kFloat ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in '\n'.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  TORCH_CHECK(file, "cannot open ", path.string(), " for writing");
  const auto length = static_cast<uint16_t>(header.size());
  file.write("\x93NUMPY\x01\x00", 8);
  file.put(static_cast<char>(length & 0xff)).put(static_cast<char>(length >> 8));
  file << header;
  file.write(static_cast<const char*>(t.data_ptr()),
             static_cast<std::streamsize>(t.numel() * t.element_size()));
  TORCH_CHECK(file, "cannot write ", path.string());
}

}  // namespace

nlohmann::json evaluate_int_model(const fs::path& path, const IntEvalOptions& options) {
  TORCH_CHECK_VALUE(options.split == "test" || options.split == "val", "split must be test or val, but got '",
                    options.split, "'");
  IntegerModel model(load_int_graph(path), options.residuals);
  const auto& meta = model.graph().meta;  // load_int_graph checked that meta.config is a valid config
  const config::Config config = config::parse_config(meta["config"], path.string() + " (meta.config)");
  // Threads and allocator as `pdeq eval --run` sets them for the same config.
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  // The split as training evaluated it (in memory, or an image folder streamed with the eval transforms):
  // the training task's own loader.
  const auto task = experiment::make_image_task(config, torch::kCPU);
  const auto split = options.split == "test" ? train::EvalSplit::kTest : train::EvalSplit::kVal;
  TORCH_CHECK_VALUE(task->has_split(split), "the ", options.split, " split is empty");
  data::BatchLoader* loader = &task->eval_loader(split);
  const data::DatasetInfo& info = task->data().info;
  const auto input_shape = meta["input_shape"].get<std::vector<int64_t>>();
  TORCH_CHECK_VALUE(input_shape == std::vector<int64_t>({info.channels, info.height, info.width}),
                    path.string(), ": the model takes [C, H, W] = ", meta["input_shape"].dump(), ", but ",
                    config.data.dataset, " gives ", info.channels, "x", info.height, "x", info.width,
                    " images");

  // The fake-quant model of the run to compare with, built and loaded as `pdeq eval --run` does.
  models::Classifier reference;
  std::unique_ptr<ModelComparison> comparison;
  if (options.compare_run) {
    const auto run = run::RunDirectory::open(*options.compare_run);
    const config::Config run_config = experiment::read_run_config(run);
    // A comparison layer by layer only means something for the network the file was exported from.
    const auto describe = [](const config::Config& c) {
      return c.model.name + " on " + c.data.dataset + " (W" + std::to_string(c.quant.weight_bits) + "A" +
             std::to_string(c.quant.act_bits) + ")";
    };
    const nlohmann::json run_model = config::to_json(run_config)["model"];
    const nlohmann::json file_model = config::to_json(config)["model"];
    TORCH_CHECK_VALUE(run_model == file_model && run_config.data.dataset == config.data.dataset &&
                          run_config.quant.weight_bits == config.quant.weight_bits &&
                          run_config.quant.act_bits == config.quant.act_bits,
                      "--compare-run ", options.compare_run->string(), " trained ", describe(run_config),
                      (run_model == file_model ? "" : " with other model settings"), ", but ", path.string(),
                      " holds ", describe(config), "; compare a file with the run it was exported from");
    reference = models::make_model(run_config.model.name, experiment::model_options(run_config, info));
    run::load_checkpoint(options.checkpoint == "last" ? run.last_checkpoint() : run.best_checkpoint(),
                         *reference, nullptr);
    comparison = std::make_unique<ModelComparison>(*reference);
  }

  torch::NoGradGuard no_grad;
  double correct = 0.0;
  int64_t samples = 0, batches = 0;
  loader->start_epoch(0);
  while (auto batch = loader->next()) {
    if (options.max_batches > 0 && batches >= options.max_batches) break;
    ++batches;
    const auto logits = comparison ? comparison->add_batch(model, batch->images, batch->labels)
                                   : model.forward(batch->images);
    if (batches == 1 && !options.dump_batch.empty()) {
      fs::create_directories(options.dump_batch);
      write_npy(options.dump_batch / "images.npy", batch->images.to(torch::kFloat));
      write_npy(options.dump_batch / "logits.npy", logits.to(torch::kFloat));
      write_npy(options.dump_batch / "labels.npy", batch->labels.to(torch::kLong));
    }
    correct += logits.argmax(1).eq(batch->labels).sum().item<double>();
    samples += batch->labels.size(0);
  }
  const double n = std::max<int64_t>(samples, 1);
  nlohmann::json result = {{"model", path.string()},
                           {"split", options.split},
                           {"samples", samples},
                           {"accuracy", correct / n},
                           {"engine", "onednn"},
                           {"threads", at::get_num_threads()},
                           {"residuals", to_string(options.residuals)},
                           {"residual_kernel", model.residual_kernel()}};
  if (!options.dump_batch.empty()) result["dump_batch"] = options.dump_batch.string();
  if (comparison) {
    result["compare_run"] = options.compare_run->string();
    result.update(comparison->report(model.graph()));
  }
  return result;
}

}  // namespace pdeq::deploy
