#include <pdeq/deploy/export.h>

#include <pdeq/deploy/fold.h>
#include <pdeq/deploy/graph_builder.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/tv_smoothing.h>

#include <limits>
#include <memory>
#include <optional>

namespace pdeq::deploy {
namespace {

using models::BasicBlockImpl;
using models::BottleneckImpl;
using models::SymmetricBlockImpl;

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

}  // namespace

IntGraph export_resnet(models::ResNetImpl& model, const std::vector<torch::Tensor>& calibration,
                       const ExportOptions& options) {
  auto* net = &model;
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
  std::vector<CalibrationRange> branch(blocks.size()), shortcut(blocks.size());
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
        relevant = torch::min(relevant, next.highest() - s);
      }
      branch[k].update(relevant);
    }
  }

  GraphBuilder builder;
  // Float stem: BN folded into the convolution.
  builder.float_stem(*net->conv1, *net->bn1, net->options.model().stem == models::Stem::kImageNet);
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
    ConvGeometry second_at{1, 1, 1};  // K2, and K^T: stride 1, padding 1
    if (b.bottleneck) {
      // 1x1 reduction, 3x3 (strided) convolution, each to its quantizer's codes; the 1x1 expansion feeds the
      // add.
      auto& n = *b.bottleneck;
      const auto mid1 = activation_grid(*n.act_mid1, b.name + ".act_mid1");
      const auto mid2 = activation_grid(*n.act_mid2, b.name + ".act_mid2");
      const auto w1 = weight_codes(*n.conv1, b.name + ".conv1");
      const int64_t reduced =
          builder.conv_relu_codes(x, fold_conv(w1, batch_norm_affine(*n.bn1)), w1, conv_geometry(*n.conv1),
                                  n.tv_mid1, mid1, b.name, "act_mid1", "tv_mid1");
      const auto w2 = weight_codes(*n.conv2, b.name + ".conv2");
      hidden =
          builder.conv_relu_codes(reduced, fold_conv(w2, batch_norm_affine(*n.bn2)), w2,
                                  conv_geometry(*n.conv2), n.tv_mid2, mid2, b.name, "act_mid2", "tv_mid2");
      second_weight = weight_codes(*n.conv3, b.name + ".conv3");
      second = fold_conv(second_weight, batch_norm_affine(*n.bn3), -h);
      second_at = conv_geometry(*n.conv3);
    } else if (b.basic) {
      const auto mid = activation_grid(*b.basic->act_mid, b.name + ".act_mid");
      const auto w1 = weight_codes(*b.basic->conv1, b.name + ".conv1");
      hidden = builder.conv_relu_codes(x, fold_conv(w1, batch_norm_affine(*b.basic->bn1)), w1,
                                       conv_geometry(*b.basic->conv1), b.basic->tv_mid, mid, b.name,
                                       "act_mid", "tv_mid");
      second_at = conv_geometry(*b.basic->conv2);
      second_weight = weight_codes(*b.basic->conv2, b.name + ".conv2");
      second = fold_conv(second_weight, batch_norm_affine(*b.basic->bn2), -h);
    } else {
      const auto mid = activation_grid(*b.symmetric->act_mid, b.name + ".act_mid");
      const auto k_codes = weight_codes(*b.symmetric->conv, b.name + ".conv");
      hidden = builder.conv_relu_codes(x, fold_conv(k_codes, batch_norm_affine(*b.symmetric->bn1)), k_codes,
                                       conv_geometry(*b.symmetric->conv), b.symmetric->tv_mid, mid, b.name,
                                       "act_mid", "tv_mid");
      // K^T h = conv_transpose2d(h, K, padding 1) = conv2d(h, K flipped spatially, in/out swapped, padding
      // 1); the per-tensor scale carries over unchanged.
      second_weight = k_codes;
      second_weight.codes = k_codes.codes.flip({2, 3}).transpose(0, 1).contiguous();
      second_weight.scale = k_codes.scale[0].expand({second_weight.codes.size(0)}).contiguous();
      second = fold_conv(second_weight, batch_norm_affine(*b.symmetric->bn2), -h);
    }

    // Shortcut S: the input codes themselves (exactly in [0, alpha_in]) or BN(P x_q) at a calibrated grid.
    int64_t s = x;
    CalibrationRange s_bounds{in.lowest(), in.highest()};
    if (b.projection()) {
      s_bounds = shortcut[k].widened(options.range_margin(), -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::infinity());
      const auto [scale, zero_point] = affine_codes(s_bounds.lo, s_bounds.hi);
      auto& projection = *b.projection();
      const auto wp = weight_codes(*projection.conv, b.name + ".shortcut_conv");
      s = builder.qconv(x, fold_conv(wp, batch_norm_affine(*projection.bn)), wp,
                        conv_geometry(*projection.conv), false, scale, zero_point, 255, b.name + ".shortcut");
    }
    // T below -max(S) gives ReLU(S + T) = 0, T above alpha_next - min(S) the clipped maximum: neither bound
    // changes the output, so the branch's grid spans only what matters.
    const bool next_tv = next && blocks[k + 1].tv_in();
    const double ceiling = next && !b.concat_pool() && !next_tv ? next->highest() - s_bounds.lo
                                                                : std::numeric_limits<double>::infinity();
    const CalibrationRange t = branch[k].widened(options.range_margin(), -s_bounds.hi, ceiling);
    const auto [t_scale, t_zero_point] = affine_codes(t.lo, t.hi);
    const int64_t branch_out = builder.qconv(hidden, second, second_weight, second_at, false, t_scale,
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
      add.out_zero_point = next->zero_point;
      add.qmax = next->qmax;
    } else {
      add.kind = OpKind::kAddToFloat;
      add.name = b.name;
    }
    x = builder.add(std::move(add));
  }
  builder.head(x, *net->fc);

  net->train(was_training);
  builder.graph.validate("export");
  return std::move(builder.graph);
}

}  // namespace pdeq::deploy
