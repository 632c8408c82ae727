#include <pdeq/deploy/export.h>

#include <pdeq/compat/torch.h>
#include <pdeq/config/config.h>
#include <pdeq/deploy/fold.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/onnx_export.h>
#include <pdeq/experiment/from_config.h>
#include <pdeq/experiment/task_factory.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/run/checkpoint.h>
#include <pdeq/run/run_dir.h>
#include <pdeq/train/image_classification.h>
#include <pdeq/train/runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>

namespace pdeq::deploy {
namespace {

namespace fs = std::filesystem;
using models::BasicBlockImpl;
using models::BottleneckImpl;
using models::SymmetricBlockImpl;

/// Running min/max of a tensor over the calibration batches.
struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void update(const torch::Tensor& t) {
    lo = std::min(lo, t.min().item<double>());
    hi = std::max(hi, t.max().item<double>());
  }
  /// Widened by `margin` of its width on both sides, then intersected with [floor, ceiling] (values outside
  /// those bounds give the same network output, see export_classifier).
  Range widened(double margin, double floor, double ceiling) const {
    const double width = hi - lo;
    return {std::max(lo - margin * width, floor), std::min(hi + margin * width, ceiling)};
  }
};

/// One residual block of the net, with the name of its module ("layer2.0"); exactly one kind is set.
struct Block {
  std::string name;
  std::shared_ptr<BasicBlockImpl> basic;
  std::shared_ptr<SymmetricBlockImpl> symmetric;
  std::shared_ptr<BottleneckImpl> bottleneck;
  quant::FakeQuantizeImpl& act_in() const {
    return basic ? *basic->act_in : symmetric ? *symmetric->act_in : *bottleneck->act_in;
  }
  const models::BlockOptions& options() const {
    return basic ? basic->options : symmetric ? symmetric->options : bottleneck->options;
  }
  double step_size() const { return options().step_size(); }
  /// The projection shortcut, or nullptr for the identity.
  models::ProjectionShortcut* projection() const {
    auto* s = basic ? &basic->shortcut : bottleneck ? &bottleneck->shortcut : nullptr;
    return s && s->is_projection() ? s : nullptr;
  }
  /// TV smoothing before act_in (empty unless the model places it there).
  nn::TVSmooth tv_in() const {
    return basic ? basic->tv_in : symmetric ? symmetric->tv_in : bottleneck->tv_in;
  }
  /// act_in's codes of the block input x, as the trained block computes them.
  torch::Tensor quantized_input(const torch::Tensor& x) const {
    auto tv = tv_in();
    return act_in().quantize(tv ? tv->forward(x) : x);
  }
  /// BN(K x_q) of the convolution(s) before the residual add, the inner activations quantized as in training:
  /// the branch T = -h * this, for calibration.
  torch::Tensor branch(const torch::Tensor& x_q) const {
    if (basic) return basic->branch(x_q);
    if (symmetric) return symmetric->branch(x_q);
    auto& n = *bottleneck;
    auto h = n.act_mid1(torch::relu(n.bn1(n.conv1(x_q))));
    h = n.act_mid2(torch::relu(n.bn2(n.conv2(h))));
    return n.bn3(n.conv3(h));
  }
  /// A StableNet transition after the residual step: concatenation of the input's first channels and/or
  /// 2x2 average pooling (Transition::kConcatPool blocks that widen or stride).
  bool concat_pool() const {
    const auto& o = options();
    return o.transition() == models::Transition::kConcatPool &&
           (o.out_channels() != o.in_channels() || o.stride() != 1);
  }
};

std::vector<Block> collect_blocks(models::ResNetImpl& net) {
  std::vector<Block> blocks;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    for (size_t j = 0; j < net.layers[i]->size(); ++j) {
      const std::string name = "layer" + std::to_string(i + 1) + "." + std::to_string(j);
      const auto module = net.layers[i]->ptr(j);
      Block block{name, std::dynamic_pointer_cast<BasicBlockImpl>(module),
                  std::dynamic_pointer_cast<SymmetricBlockImpl>(module),
                  std::dynamic_pointer_cast<BottleneckImpl>(module)};
      TORCH_CHECK_VALUE(block.basic || block.symmetric || block.bottleneck, name,
                        ": only BasicBlock, SymmetricBlock and Bottleneck residual blocks can be exported");
      const auto& o = block.options();
      // The transition widens by the input's first C_out - C_in channels; the graph concatenates whole
      // values, so only C_out = 2 C_in (every StableNet) or no widening is written.
      TORCH_CHECK_VALUE(o.transition() == models::Transition::kProjection ||
                            o.out_channels() == o.in_channels() || o.out_channels() == 2 * o.in_channels(),
                        name, ": a concatenation transition from ", o.in_channels(), " to ", o.out_channels(),
                        " channels (part of the input) cannot be exported; only doubling is supported");
      blocks.push_back(std::move(block));
    }
  }
  TORCH_CHECK_VALUE(!blocks.empty(), "the model has no residual blocks to export");
  return blocks;
}

/// quint8 scale and zero point covering [lo, hi] (extended to contain 0, which must be a code).
std::pair<double, int64_t> affine_codes(double lo, double hi) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double scale = hi > lo ? (hi - lo) / 255.0 : 1.0;
  const int64_t zero_point = std::clamp<int64_t>(std::llround(-lo / scale), 0, 255);
  return {scale, zero_point};
}

int64_t first(const torch::ExpandingArray<2>& value) { return (*value)[0]; }

/// The graph under construction: each op writes the next value.
class GraphBuilder {
 public:
  int64_t add(IntOp op) {
    op.output = static_cast<int64_t>(graph.ops.size()) + 1;
    graph.ops.push_back(std::move(op));
    return graph.ops.back().output;
  }
  int64_t qconv(int64_t input, const FoldedConv& folded, const WeightCodes& weight, int64_t stride,
                int64_t padding, bool relu, double scale, int64_t zero_point, int64_t qmax,
                std::string name) {
    IntOp op;
    op.kind = OpKind::kQConv;
    op.name = std::move(name);
    op.inputs = {input};
    op.weight = folded.codes;
    op.weight_scale = folded.weight_scale;
    op.bias = folded.bias;
    op.stride = stride;
    op.padding = padding;
    op.relu = relu;
    op.out_scale = scale;
    op.out_zero_point = zero_point;
    op.qmax = qmax;
    op.weight_bits = weight.bits;
    return add(std::move(op));
  }
  /// A convolution kept in float (ReLU applied) for the TV smoothing that follows it.
  int64_t qconv_to_float(int64_t input, const FoldedConv& folded, const WeightCodes& weight, int64_t stride,
                         int64_t padding, std::string name) {
    const int64_t v = qconv(input, folded, weight, stride, padding, true, 1.0, 0, 255, std::move(name));
    graph.ops.back().kind = OpKind::kQConvToFloat;
    return v;
  }
  /// The trained TVSmooth layer: its steps tau_c and options.
  int64_t tv_smooth(int64_t input, const nn::TVSmoothImpl& tv, std::string name) {
    IntOp op;
    op.kind = OpKind::kTvSmooth;
    op.name = std::move(name);
    op.inputs = {input};
    op.tau = tv.step_sizes().detach().to(torch::kFloat).contiguous();
    const auto options = tv.func_options();
    op.tv_iters = options.iters();
    op.tv_eps = options.eps();
    op.tv_weight = options.weight() == nn::TVWeight::kPeronaMalik ? "perona_malik" : "charbonnier";
    return add(std::move(op));
  }
  /// Float -> the codes of `grid`, named after its quantizer.
  int64_t quantize(int64_t input, const ActivationGrid& grid, std::string name) {
    IntOp op;
    op.kind = OpKind::kQuantize;
    op.name = std::move(name);
    op.inputs = {input};
    op.out_scale = grid.scale;
    op.qmax = grid.qmax;
    return add(std::move(op));
  }
  /// ReLU(BN(K x)) to the codes of `grid`: one int8 convolution, or with TV smoothing between the ReLU and
  /// the quantizer a float convolution, the smoothing and the quantizer (`name` is the quantizer's).
  int64_t conv_relu_codes(int64_t input, const FoldedConv& folded, const WeightCodes& weight, int64_t stride,
                          int64_t padding, const nn::TVSmooth& tv, const ActivationGrid& grid,
                          const std::string& block, const std::string& name) {
    if (!tv) {
      return qconv(input, folded, weight, stride, padding, true, grid.scale, 0, grid.qmax,
                   block + "." + name);
    }
    const int64_t h = qconv_to_float(input, folded, weight, stride, padding, block + "." + name + ".conv");
    const std::string tv_name = name == "act_mid1" ? "tv_mid1" : name == "act_mid2" ? "tv_mid2" : "tv_mid";
    return quantize(tv_smooth(h, *tv, block + "." + tv_name), grid, block + "." + name);
  }
  IntGraph graph;
};

}  // namespace

IntGraph export_classifier(models::ClassifierImpl& model, const std::vector<torch::Tensor>& calibration,
                           const ExportOptions& options) {
  auto* net = dynamic_cast<models::ResNetImpl*>(&model);
  TORCH_CHECK_VALUE(
      net != nullptr,
      "this model cannot be exported: the integer export supports the ResNets (resnet20/32/44/56/110, "
      "resnet18/34, ordinary or symmetric blocks; resnet50/101/152), and the StableNets; MobileNetV2, "
      "DeepLabV3 and graph networks are not supported yet");
  TORCH_CHECK_VALUE(!calibration.empty(), "calibration needs at least one batch of images");
  const std::vector<Block> blocks = collect_blocks(*net);
  for (const auto& block : blocks) {
    if (block.symmetric) {
      TORCH_CHECK_VALUE(
          block.symmetric->conv->weight_quant->options.channels() == 0, block.name,
          ".conv: per-channel weight scales of a symmetric block's K cannot be carried by K^T (the "
          "int8 kernels scale output channels only); train with quant.per_channel=false");
    }
  }
  const bool was_training = net->is_training();
  net->eval();
  torch::NoGradGuard no_grad;

  // Calibration: the ranges of the tensors the trained network keeps in float before each residual add.
  std::vector<Range> branch(blocks.size()), shortcut(blocks.size());
  for (const auto& images : calibration) {
    models::ActivationTrace trace;
    net->forward_traced(images, &trace);
    TORCH_INTERNAL_ASSERT(trace.activations.size() == blocks.size() + 1, "unexpected trace of ",
                          trace.activations.size(), " entries");
    for (size_t k = 0; k < blocks.size(); ++k) {
      const auto& b = blocks[k];
      const auto x_q = b.quantized_input(trace.activations[k]);
      const auto t = b.branch(x_q) * (-b.step_size());
      const auto s = b.projection() ? (*b.projection())(x_q) : x_q;
      if (b.projection()) shortcut[k].update(s);
      // Only the part of T that can change ReLU(S + T) clipped to the next quantizer's range matters:
      // T < -S gives 0 and T > alpha_next - S the clipped maximum, so T is calibrated clamped to those
      // bounds pixel by pixel (a narrower, finer int8 grid than the raw range of T).
      auto relevant = torch::max(t, -s);
      // After a transition the sum is pooled (or smoothed) before the next quantizer clips it, so no upper
      // bound holds.
      if (k + 1 < blocks.size() && !b.concat_pool() && !blocks[k + 1].tv_in()) {
        const auto next = activation_grid(blocks[k + 1].act_in(), blocks[k + 1].name + ".act_in");
        relevant = torch::min(relevant, next.scale * static_cast<double>(next.qmax) - s);
      }
      branch[k].update(relevant);
    }
  }

  GraphBuilder builder;
  // Float stem: BN folded into the convolution.
  {
    const auto& conv = *net->conv1;
    const auto bn = batch_norm_affine(*net->bn1);
    const auto* padding = compat::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
    TORCH_INTERNAL_ASSERT(padding != nullptr, "stem padding must be explicit");
    IntOp stem;
    stem.kind = OpKind::kFloatStem;
    stem.name = "stem";
    stem.inputs = {0};
    torch::Tensor shift = bn.shift;
    if (conv.bias.defined()) shift = shift + conv.bias.detach().to(torch::kDouble) * bn.scale;
    stem.weight = (conv.weight.detach().to(torch::kDouble) * bn.scale.view({-1, 1, 1, 1})).to(torch::kFloat);
    stem.bias = shift.to(torch::kFloat);
    stem.stride = first(conv.options.stride());
    stem.padding = first(*padding);
    stem.relu = true;
    stem.max_pool = net->options.model().stem == models::Stem::kImageNet;
    builder.add(std::move(stem));
  }
  // The current block's quantized input (its act_in output).
  int64_t x = builder.quantize(
      blocks[0].tv_in() ? builder.tv_smooth(1, *blocks[0].tv_in(), blocks[0].name + ".tv_in") : 1,
      activation_grid(blocks[0].act_in(), blocks[0].name + ".act_in"), blocks[0].name + ".act_in");
  for (size_t k = 0; k < blocks.size(); ++k) {
    const Block& b = blocks[k];
    const auto in = activation_grid(b.act_in(), b.name + ".act_in");
    const bool last = k + 1 == blocks.size();
    std::optional<ActivationGrid> next;
    if (!last) next = activation_grid(blocks[k + 1].act_in(), blocks[k + 1].name + ".act_in");
    const double h = b.step_size();

    // Branch: H = ReLU(BN1(K1 x_q)) at act_mid's grid, then T = -h BN2(K2 h_q).
    int64_t hidden;
    FoldedConv second;
    WeightCodes second_weight;
    int64_t second_padding = 1;
    if (b.bottleneck) {
      // 1x1 reduction, 3x3 (strided) convolution, each to its quantizer's codes; the 1x1 expansion feeds the
      // add.
      auto& n = *b.bottleneck;
      const auto mid1 = activation_grid(*n.act_mid1, b.name + ".act_mid1");
      const auto mid2 = activation_grid(*n.act_mid2, b.name + ".act_mid2");
      const auto w1 = weight_codes(*n.conv1, b.name + ".conv1");
      const int64_t reduced =
          builder.conv_relu_codes(x, fold_conv(w1, batch_norm_affine(*n.bn1)), w1, n.conv1->options.stride(),
                                  n.conv1->options.padding(), n.tv_mid1, mid1, b.name, "act_mid1");
      const auto w2 = weight_codes(*n.conv2, b.name + ".conv2");
      hidden = builder.conv_relu_codes(reduced, fold_conv(w2, batch_norm_affine(*n.bn2)), w2,
                                       n.conv2->options.stride(), n.conv2->options.padding(), n.tv_mid2, mid2,
                                       b.name, "act_mid2");
      second_weight = weight_codes(*n.conv3, b.name + ".conv3");
      second = fold_conv(second_weight, batch_norm_affine(*n.bn3), -h);
      second_padding = n.conv3->options.padding();
    } else if (b.basic) {
      const auto mid = activation_grid(*b.basic->act_mid, b.name + ".act_mid");
      const auto w1 = weight_codes(*b.basic->conv1, b.name + ".conv1");
      hidden = builder.conv_relu_codes(x, fold_conv(w1, batch_norm_affine(*b.basic->bn1)), w1,
                                       b.basic->conv1->options.stride(), 1, b.basic->tv_mid, mid, b.name,
                                       "act_mid");
      second_weight = weight_codes(*b.basic->conv2, b.name + ".conv2");
      second = fold_conv(second_weight, batch_norm_affine(*b.basic->bn2), -h);
    } else {
      const auto mid = activation_grid(*b.symmetric->act_mid, b.name + ".act_mid");
      const auto k_codes = weight_codes(*b.symmetric->conv, b.name + ".conv");
      hidden = builder.conv_relu_codes(x, fold_conv(k_codes, batch_norm_affine(*b.symmetric->bn1)), k_codes,
                                       1, 1, b.symmetric->tv_mid, mid, b.name, "act_mid");
      // K^T h = conv_transpose2d(h, K, padding 1) = conv2d(h, K flipped spatially, in/out swapped, padding
      // 1); the per-tensor scale carries over unchanged.
      second_weight = k_codes;
      second_weight.codes = k_codes.codes.flip({2, 3}).transpose(0, 1).contiguous();
      second_weight.scale = k_codes.scale[0].expand({second_weight.codes.size(0)}).contiguous();
      second = fold_conv(second_weight, batch_norm_affine(*b.symmetric->bn2), -h);
    }

    // Shortcut S: the input codes themselves (exactly in [0, alpha_in]) or BN(P x_q) at a calibrated grid.
    int64_t s = x;
    Range s_bounds{0.0, in.scale * static_cast<double>(in.qmax)};
    if (b.projection()) {
      s_bounds = shortcut[k].widened(options.range_margin(), -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::infinity());
      const auto [scale, zero_point] = affine_codes(s_bounds.lo, s_bounds.hi);
      auto& projection = *b.projection();
      const auto wp = weight_codes(*projection.conv, b.name + ".shortcut_conv");
      s = builder.qconv(x, fold_conv(wp, batch_norm_affine(*projection.bn)), wp,
                        projection.conv->options.stride(), 0, false, scale, zero_point, 255,
                        b.name + ".shortcut");
    }
    // T below -max(S) gives ReLU(S + T) = 0, T above alpha_next - min(S) the clipped maximum: neither bound
    // changes the output, so the branch's grid spans only what matters.
    const bool next_tv = next && blocks[k + 1].tv_in();
    const double ceiling = next && !b.concat_pool() && !next_tv
                               ? next->scale * static_cast<double>(next->qmax) - s_bounds.lo
                               : std::numeric_limits<double>::infinity();
    const Range t = branch[k].widened(options.range_margin(), -s_bounds.hi, ceiling);
    const auto [t_scale, t_zero_point] = affine_codes(t.lo, t.hi);
    const int64_t branch_out = builder.qconv(hidden, second, second_weight, 1, second_padding, false, t_scale,
                                             t_zero_point, 255, b.name + ".branch");

    IntOp add;
    add.inputs = {s, branch_out};
    add.relu = true;
    if (b.concat_pool()) {
      // StableNet transition: y = ReLU(x_q - h T) in float, widened by the input's values and pooled in
      // float as the trained network does, then quantized once by the next block's act_in.
      const int64_t input = x;
      add.kind = OpKind::kAddToFloat;
      add.name = b.name + ".residual";
      int64_t y = builder.add(std::move(add));
      if (b.options().out_channels() != b.options().in_channels()) {
        IntOp concat;
        concat.kind = OpKind::kConcat;
        concat.name = b.name + ".concat";
        concat.inputs = {y, input};
        y = builder.add(std::move(concat));
      }
      if (b.options().stride() != 1) {
        IntOp pool;
        pool.kind = OpKind::kAvgPool;
        pool.name = b.name + ".pool";
        pool.inputs = {y};
        pool.stride = b.options().stride();
        y = builder.add(std::move(pool));
      }
      if (next) {
        if (next_tv) y = builder.tv_smooth(y, *blocks[k + 1].tv_in(), blocks[k + 1].name + ".tv_in");
        y = builder.quantize(y, *next, blocks[k + 1].name + ".act_in");
      }
      x = y;
      continue;
    }
    if (next_tv) {
      // y = ReLU(S + T) in float, smoothed, then quantized once by the next block's act_in.
      add.kind = OpKind::kAddToFloat;
      add.name = b.name + ".residual";
      const int64_t y = builder.add(std::move(add));
      x = builder.quantize(builder.tv_smooth(y, *blocks[k + 1].tv_in(), blocks[k + 1].name + ".tv_in"), *next,
                           blocks[k + 1].name + ".act_in");
      continue;
    }
    if (next) {
      add.kind = OpKind::kAdd;
      add.name = blocks[k + 1].name + ".act_in";
      add.out_scale = next->scale;
      add.qmax = next->qmax;
    } else {
      add.kind = OpKind::kAddToFloat;
      add.name = b.name;
    }
    x = builder.add(std::move(add));
  }
  IntOp head;
  head.kind = OpKind::kFloatHead;
  head.name = "fc";
  head.inputs = {x};
  head.weight = net->fc->weight.detach().to(torch::kFloat).clone();
  head.bias = net->fc->bias.detach().to(torch::kFloat).clone();
  builder.add(std::move(head));

  net->train(was_training);
  builder.graph.validate("export");
  return std::move(builder.graph);
}

nlohmann::json export_run(const fs::path& run_dir, const fs::path& out, const ExportOptions& options) {
  TORCH_CHECK_VALUE(options.format() == "pdeq" || options.format() == "onnx",
                    "format must be pdeq or onnx, but got '", options.format(), "'");
  TORCH_CHECK_VALUE(options.format() == "pdeq" || onnx_export_built(),
                    "--format onnx: this pdeq was built without ONNX support (libonnx-dev was not found "
                    "when it was configured); only the pdeq format is built");
  TORCH_CHECK_VALUE(options.checkpoint() == "best" || options.checkpoint() == "last",
                    "checkpoint must be best or last, but got '", options.checkpoint(), "'");
  TORCH_CHECK_VALUE(!fs::is_directory(out), "--out ", out.string(), " is a directory; give a file name");
  const auto run = run::RunDirectory::open(run_dir);
  const config::Config config = experiment::read_run_config(run);
  TORCH_CHECK_VALUE(config.train.seeds == 1, "run ", run_dir.string(), " holds ", config.train.seeds,
                    " seeds; export one of its seed<i> folders");
  TORCH_CHECK_VALUE(!experiment::is_graph_dataset(config.data.dataset), "graph networks (dataset ",
                    config.data.dataset,
                    ") cannot be exported: the integer export supports image ResNets and StableNets");
  // Refused before anything is built or written: a backbone exported without its head would be a file that
  // looks complete and is not.
  TORCH_CHECK_VALUE(
      !experiment::is_segmentation_dataset(config.data.dataset), "segmentation networks (", config.model.name,
      " on ", config.data.dataset,
      ") cannot be exported: the integer export has no dilated convolutions, ASPP, image pooling or "
      "bilinear upsampling, so it would hold the backbone without its head; nothing was written");
  train::configure_threads_and_seed(config.train.threads, config.train.seed);
  const auto task_ptr = experiment::make_image_task(config, torch::kCPU);
  train::ImageClassificationTask& task = *task_ptr;
  const fs::path checkpoint = options.checkpoint() == "best" ? run.best_checkpoint() : run.last_checkpoint();
  const auto state = run::load_checkpoint(checkpoint, task.module(), nullptr);

  // Calibration on training images without augmentation (never the test split).
  std::vector<torch::Tensor> calibration;
  std::unique_ptr<data::BatchLoader> own;
  data::BatchLoader* loader = &task.train_loader();
  if (!task.streams_from_disk()) {
    own = std::make_unique<data::BatchLoader>(task.data().train,
                                              experiment::eval_loader_options(config.data, task.data().info));
    loader = own.get();
  }
  loader->start_epoch(0);
  int64_t images = 0;
  while (static_cast<int64_t>(calibration.size()) < options.calibration_batches()) {
    auto batch = loader->next();
    if (!batch) break;
    images += batch->images.size(0);
    calibration.push_back(batch->images);
  }
  IntGraph graph = export_classifier(*task.model(), calibration, options);

  int64_t weight_bits = 0, act_bits = 0, int8_convs = 0;
  bool transitions = false;
  int64_t tv_layers = 0;
  for (const auto& op : graph.ops) {
    transitions = transitions || op.kind == OpKind::kConcat || op.kind == OpKind::kAvgPool;
    tv_layers += op.kind == OpKind::kTvSmooth;
    if (op.kind == OpKind::kQConv || op.kind == OpKind::kQConvToFloat) {
      ++int8_convs;
      weight_bits = std::max(weight_bits, op.weight_bits);
    }
    if (op.kind == OpKind::kQuantize || (op.kind == OpKind::kQConv && op.relu) || op.kind == OpKind::kAdd) {
      act_bits = std::max<int64_t>(act_bits, std::llround(std::log2(static_cast<double>(op.qmax) + 1)));
    }
  }
  nlohmann::json float_layers = {"stem (conv + BN + ReLU)", "last residual add", "global average pool + fc"};
  if (transitions) float_layers.push_back("transition adds, channel concatenation and average pooling");
  if (tv_layers > 0) {
    float_layers.push_back(std::to_string(tv_layers) +
                           " TV smoothing layers (the convolution or sum before each kept in float)");
  }
  const auto& info = task.data().info;
  nlohmann::json report = {
      {"run", fs::absolute(run_dir).string()},
      {"checkpoint", options.checkpoint()},
      {"epoch", state.epoch},
      {"model", config.model.name},
      {"dataset", config.data.dataset},
      {"input_shape", calibration.front().sizes().slice(1).vec()},
      {"num_classes", info.num_classes},
      // What a user of the file applies to [0, 1] pixels before the network: (x - mean) / std per channel.
      {"normalization", {{"mean", info.mean}, {"std", info.std}}},
      {"weight_bits", weight_bits},
      {"act_bits", act_bits},
      {"format", options.format()},
      {"engine", options.format() == "onnx"
                     ? "ONNX QDQ, opset " + std::to_string(kOnnxOpset) +
                           " (int8 weights x uint8 activations; residual-feeding convolutions in float)"
                     : "int8 weights x uint8 activations (oneDNN: int32 sums with fused adds in exact mode; "
                       "LibTorch quantized::conv2d in int8 mode)"},
      {"int8_convolutions", int8_convs},
      {"float_layers", float_layers},
      {"calibration_images", images},
      {"ops", graph.ops.size()},
      {"params", graph.parameter_count()}};
  if (weight_bits < 8 || act_bits < 8) {
    report["note"] =
        "codes of " + std::to_string(weight_bits) + "-bit weights and " + std::to_string(act_bits) +
        "-bit activations run on 8-bit kernels (same values, no speed gain from the lower width)";
  }
  graph.meta = report;
  graph.meta["config"] = config::to_json(config);
  if (options.format() == "onnx") {
    save_onnx(graph, out);
  } else {
    save_int_graph(graph, out);
  }
  report["out"] = out.string();
  report["bytes"] = static_cast<int64_t>(fs::file_size(out));
  return report;
}

}  // namespace pdeq::deploy
