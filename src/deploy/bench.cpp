#include <pdeq/deploy/bench.h>

#include <pdeq/nn/tv_smoothing.h>

#include <pdeq/analysis/statistics.h>

#include <pdeq/config/config.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_graph.h>
#include <pdeq/deploy/int_model.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/models/registry.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <vector>

namespace pdeq::deploy {
namespace {

/// Images/s of `run` on batches of `batch`, timed over at least `seconds` (after one untimed call).
double images_per_second(const std::function<void()>& run, int64_t batch, double seconds) {
  using Clock = std::chrono::steady_clock;
  run();
  int64_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0.0;
  do {
    run();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return static_cast<double>(calls * batch) / elapsed;
}

/// The exported graph in float32: the same ops, BatchNorm folded the same way, weights dequantized, no
/// rounding between layers. The baseline that isolates what int8 kernels buy from what folding buys.
class FloatGraph {
 public:
  explicit FloatGraph(const IntGraph& graph) : graph_(graph) {
    for (const auto& op : graph_.ops) {
      weights_.push_back(
          op.kind == OpKind::kQConv || op.kind == OpKind::kQConvToFloat
              ? (op.weight.to(torch::kDouble) * op.weight_scale.view({-1, 1, 1, 1})).to(torch::kFloat)
              : op.weight);
    }
  }
  torch::Tensor forward(const torch::Tensor& images) const {
    std::vector<torch::Tensor> values{images};
    for (size_t i = 0; i < graph_.ops.size(); ++i) {
      const IntOp& op = graph_.ops[i];
      const auto& x = values[static_cast<size_t>(op.inputs[0])];
      torch::Tensor y;
      switch (op.kind) {
        case OpKind::kFloatStem:
        case OpKind::kFloatConv:
        case OpKind::kQConv:
        case OpKind::kQConvToFloat:
          y = torch::conv2d(x, weights_[i], op.bias, op.stride, op.padding, 1, op.groups);
          if (op.relu) y.relu_();
          if (op.max_pool) y = torch::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
          break;
        case OpKind::kQuantize:
          y = x;
          break;
        case OpKind::kAdd:
        case OpKind::kAddToFloat:
          y = x + values[static_cast<size_t>(op.inputs[1])];
          if (op.relu) y.relu_();
          break;
        case OpKind::kFloatHead:
          y = torch::linear(x.mean({2, 3}), weights_[i], op.bias);
          break;
        case OpKind::kConcat:
          y = torch::cat({x, values[static_cast<size_t>(op.inputs[1])]}, 1);
          break;
        case OpKind::kAvgPool:
          y = torch::avg_pool2d(x, {op.stride, op.stride});
          break;
        case OpKind::kTvSmooth:
          y = nn::functional::tv_smooth(x.contiguous(), op.tau, tv_smooth_options(op));
          break;
      }
      values.push_back(std::move(y));
    }
    return values.back();
  }

 private:
  const IntGraph& graph_;
  std::vector<torch::Tensor> weights_;
};

double load_average() {
  std::ifstream file("/proc/loadavg");
  double load = -1.0;
  file >> load;
  return load;
}

}  // namespace

nlohmann::json bench_infer(const std::filesystem::path& path, const InferBenchOptions& options) {
  TORCH_CHECK_VALUE(options.rounds > 0 && options.seconds > 0, "rounds and seconds must be positive");
  const IntegerModel model(load_int_graph(path), options.residuals);
  const auto& meta = model.graph().meta;  // checked on load: config, input_shape [C, H, W], num_classes
  config::Config config = config::parse_config(meta["config"], path.string() + " (meta.config)");
  config.quant.weight_bits = config.quant.act_bits = quant::kFullPrecisionBits;
  const auto shape = meta["input_shape"].get<std::vector<int64_t>>();
  auto float_model = models::make_model(
      config.model.name, experiment::model_options(config, meta["num_classes"].get<int64_t>(), shape[0]));
  float_model->eval();
  const FloatGraph float_graph(model.graph());

  nlohmann::json results = nlohmann::json::array();
  const double load = load_average();
  const int previous_threads = at::get_num_threads();
  torch::NoGradGuard no_grad;
  for (const int64_t threads : options.threads) {
    at::set_num_threads(static_cast<int>(threads));
    for (const int64_t batch : options.batch_sizes) {
      const auto images = torch::randn({batch, shape[0], shape[1], shape[2]});
      std::vector<double> integer, floating, folded;
      for (int64_t r = 0; r < options.rounds; ++r) {
        integer.push_back(images_per_second([&] { model.forward(images); }, batch, options.seconds));
        floating.push_back(images_per_second([&] { float_model->forward(images); }, batch, options.seconds));
        folded.push_back(images_per_second([&] { float_graph.forward(images); }, batch, options.seconds));
      }
      const double i = analysis::median_of(integer), f = analysis::median_of(floating),
                   g = analysis::median_of(folded);
      results.push_back({{"threads", threads},
                         {"batch", batch},
                         {"int8_images_per_second", i},
                         {"float_images_per_second", f},
                         {"float_folded_images_per_second", g},
                         {"speedup", i / f},
                         {"speedup_vs_folded", i / g}});
    }
  }
  at::set_num_threads(previous_threads);
  return {{"model", path.string()},
          {"network", config.model.name},
          {"engine", "onednn"},
          {"residuals", to_string(options.residuals)},
          {"residual_kernel", model.residual_kernel()},
          {"load_average_at_start", load},
          {"rounds", options.rounds},
          {"results", results}};
}

}  // namespace pdeq::deploy
