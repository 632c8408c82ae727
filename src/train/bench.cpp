#include <pdeq/train/run.h>

#include <pdeq/data/datasets.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/from_config.h>
#include <pdeq/train/optimizer.h>
#include <pdeq/train/runtime.h>

#include <torch/nn/functional/loss.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace pdeq::train {
namespace {

struct BenchModel {
  models::Classifier model;
  std::unique_ptr<torch::optim::SGD> optimizer;
};

BenchModel make_bench_model(const config::Config& config, const data::DatasetInfo& info,
                            torch::Device device) {
  BenchModel b{models::make_model(config.model.name, model_options(config, info)), nullptr};
  b.model->to(device);
  b.model->train();
  b.optimizer = make_optimizer(*b.model, config.train);
  return b;
}

// Seconds for `steps` full training steps (forward, loss, backward, SGD update).
double time_steps(BenchModel& b, const torch::Tensor& images, const torch::Tensor& labels, int64_t steps) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    b.optimizer->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(b.model->forward(images), labels);
    loss.backward();
    b.optimizer->step();
  }
  if (images.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

nlohmann::json bench_train(const config::Config& config, const BenchOptions& options) {
  TORCH_CHECK_VALUE(options.steps >= 1, "bench steps must be >= 1, but got ", options.steps);
  TORCH_CHECK_VALUE(options.rounds >= 1, "bench rounds must be >= 1, but got ", options.rounds);
  const int64_t threads = configure_threads_and_seed(config.train);
  const torch::Device device = select_device(config.train.device);
  const auto& info = data::dataset_info(config.data.dataset);
  const int64_t batch = config.data.batch_size;
  const auto images = torch::randn({batch, info.channels, info.height, info.width}).to(device);
  const auto labels = torch::randint(info.num_classes, {batch}, torch::kLong).to(device);

  BenchModel subject = make_bench_model(config, info, device);
  std::optional<BenchModel> baseline;
  std::string baseline_name;
  if (options.baseline) {
    config::Config float_config = config;
    if (!options.baseline_overrides.empty()) {
      // The baseline may be another model (float resnet20 next to a symmetric one), validated like --set.
      auto document = config::to_json(config);
      for (const auto& assignment : options.baseline_overrides)
        config::apply_override(document, assignment, "--baseline-set");
      float_config = config::parse_config(document, "--baseline-set");
    }
    float_config.quant.weight_bits = float_config.quant.act_bits = quant::kFullPrecisionBits;
    baseline = make_bench_model(float_config, info, device);
    baseline_name = float_config.model.name + (float_config.model.stable ? " (stable)" : "");
  }
  time_steps(subject, images, labels, options.warmup);
  if (baseline) time_steps(*baseline, images, labels, options.warmup);

  // Alternating the two models spreads machine noise evenly over both figures.
  std::vector<double> subject_rates, baseline_rates;
  for (int64_t round = 0; round < options.rounds; ++round) {
    subject_rates.push_back(batch * options.steps / time_steps(subject, images, labels, options.steps));
    if (baseline)
      baseline_rates.push_back(batch * options.steps / time_steps(*baseline, images, labels, options.steps));
  }
  nlohmann::json result = {{"model", config.model.name},
                           {"stable", config.model.stable},
                           {"transpose", config.model.transpose},
                           {"dataset", config.data.dataset},
                           {"batch", batch},
                           {"threads", threads},
                           {"device", device.str()},
                           {"weight_bits", config.quant.weight_bits},
                           {"act_bits", config.quant.act_bits},
                           {"steps", options.steps},
                           {"rounds", options.rounds},
                           {"images_per_second", median(subject_rates)},
                           {"images_per_second_rounds", subject_rates}};
  if (baseline) {
    result["float_model"] = baseline_name;
    result["float_images_per_second"] = median(baseline_rates);
    result["float_images_per_second_rounds"] = baseline_rates;
    result["ratio_to_float"] = median(subject_rates) / median(baseline_rates);
  }
  return result;
}

}  // namespace pdeq::train
