#include <pdeq/deploy/bench.h>

#include <pdeq/config/config.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>
#include <pdeq/models/registry.h>
#include <pdeq/train/from_config.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>

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

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double load_average() {
  std::ifstream file("/proc/loadavg");
  double load = -1.0;
  file >> load;
  return load;
}

}  // namespace

nlohmann::json bench_infer(const std::filesystem::path& path, const InferBenchOptions& options) {
  TORCH_CHECK_VALUE(options.rounds > 0 && options.seconds > 0, "rounds and seconds must be positive");
  const IntegerModel model(load_int_graph(path));
  const auto& meta = model.graph().meta;
  TORCH_CHECK_VALUE(meta.contains("config") && meta.contains("input_shape") && meta.contains("num_classes"),
                    path.string(), ": the file lacks meta.config, input_shape or num_classes");
  config::Config config = config::parse_config(meta["config"], path.string() + " (meta.config)");
  config.quant.weight_bits = config.quant.act_bits = quant::kFullPrecisionBits;
  const auto shape = meta["input_shape"].get<std::vector<int64_t>>();
  TORCH_CHECK_VALUE(shape.size() == 3, path.string(), ": input_shape must be [C, H, W]");
  auto float_model = models::make_model(
      config.model.name, train::model_options(config, meta["num_classes"].get<int64_t>(), shape[0]));
  float_model->eval();

  nlohmann::json results = nlohmann::json::array();
  const double load = load_average();
  const int previous_threads = at::get_num_threads();
  torch::NoGradGuard no_grad;
  for (const int64_t threads : options.threads) {
    at::set_num_threads(static_cast<int>(threads));
    for (const int64_t batch : options.batch_sizes) {
      const auto images = torch::randn({batch, shape[0], shape[1], shape[2]});
      std::vector<double> integer, floating;
      for (int64_t r = 0; r < options.rounds; ++r) {
        integer.push_back(images_per_second([&] { model.forward(images); }, batch, options.seconds));
        floating.push_back(images_per_second([&] { float_model->forward(images); }, batch, options.seconds));
      }
      const double i = median(integer), f = median(floating);
      results.push_back({{"threads", threads},
                         {"batch", batch},
                         {"int8_images_per_second", i},
                         {"float_images_per_second", f},
                         {"speedup", i / f}});
    }
  }
  at::set_num_threads(previous_threads);
  return {{"model", path.string()},
          {"network", config.model.name},
          {"engine", "onednn"},
          {"load_average_at_start", load},
          {"rounds", options.rounds},
          {"results", results}};
}

}  // namespace pdeq::deploy
