#include <pdeq/deploy/export.h>

#include <pdeq/deploy/fold.h>
#include <pdeq/deploy/graph_builder.h>
#include <pdeq/models/mobilenetv2.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace pdeq::deploy {
namespace {

using models::InvertedResidualImpl;
using models::SymmetricInvertedResidualImpl;

/// One block of the net with its module name ("layer3.1"); exactly one kind is set.
struct MobileBlock {
  std::string name;
  std::shared_ptr<InvertedResidualImpl> ordinary;
  std::shared_ptr<SymmetricInvertedResidualImpl> symmetric;

  quant::FakeQuantizeImpl& act_in() const { return ordinary ? *ordinary->act_in : *symmetric->act_in; }
  nn::TVSmooth tv_in() const { return ordinary ? ordinary->tv_in : symmetric->tv_in; }
  double step_size() const {
    return ordinary ? ordinary->options.step_size() : symmetric->options.step_size();
  }
  bool has_residual() const { return symmetric || ordinary->has_residual(); }
  /// act_in's codes of the block input x, as the trained block computes them.
  torch::Tensor quantized_input(const torch::Tensor& x) const {
    auto tv = tv_in();
    return act_in().quantize(tv ? tv->forward(x) : x);
  }
  torch::Tensor forward(const torch::Tensor& x) const {
    return ordinary ? ordinary->forward(x) : symmetric->forward(x);
  }
};

std::vector<MobileBlock> collect_blocks(models::MobileNetV2Impl& net) {
  std::vector<MobileBlock> blocks;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    for (size_t j = 0; j < net.layers[i]->size(); ++j) {
      const auto module = net.layers[i]->ptr(j);
      MobileBlock block{"layer" + std::to_string(i + 1) + "." + std::to_string(j),
                        std::dynamic_pointer_cast<InvertedResidualImpl>(module),
                        std::dynamic_pointer_cast<SymmetricInvertedResidualImpl>(module)};
      TORCH_CHECK_VALUE(block.ordinary || block.symmetric, block.name,
                        ": only InvertedResidual and SymmetricInvertedResidual blocks can be exported");
      blocks.push_back(std::move(block));
    }
  }
  TORCH_CHECK_VALUE(!blocks.empty(), "the model has no inverted residual blocks to export");
  return blocks;
}

/// y = x, as a BatchNorm-shaped affine map on `channels` channels (for folding a convolution without one).
ChannelAffine identity_affine(int64_t channels) {
  return {torch::ones({channels}, torch::kDouble), torch::zeros({channels}, torch::kDouble)};
}

/// The quantized weight Q(w) = codes x scale[o] as float64 [O, I, k, k].
torch::Tensor dequantized(const WeightCodes& weight) {
  return weight.codes.to(torch::kDouble) * weight.scale.view({-1, 1, 1, 1});
}

/// A float convolution with `weight` (float64 [O, I, k, k]) followed by `bn`, times `factor`, as one weight
/// and bias (float32).
std::pair<torch::Tensor, torch::Tensor> fold_float(const torch::Tensor& weight, const ChannelAffine& bn,
                                                   double factor) {
  return {(weight * (bn.scale * factor).view({-1, 1, 1, 1})).to(torch::kFloat),
          (bn.shift * factor).to(torch::kFloat)};
}

}  // namespace

IntGraph export_mobilenetv2(models::MobileNetV2Impl& model, const std::vector<torch::Tensor>& calibration,
                            const ExportOptions& options) {
  TORCH_CHECK_VALUE(!calibration.empty(), "calibration needs at least one batch of images");
  const std::vector<MobileBlock> blocks = collect_blocks(model);
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;

  // Calibration: the range of T = y - x_q of each ordinary residual block (the branch the trained network
  // keeps in float before the add), clamped to what the next quantizer can tell apart.
  std::vector<CalibrationRange> branch(blocks.size());
  for (const auto& images : calibration) {
    models::ActivationTrace trace;
    model.forward_traced(images, &trace);
    TORCH_INTERNAL_ASSERT(trace.activations.size() == blocks.size() + 2, "unexpected trace of ",
                          trace.activations.size(), " entries");
    for (size_t k = 0; k < blocks.size(); ++k) {
      const auto& b = blocks[k];
      if (!b.ordinary || !b.has_residual()) continue;
      const auto& x = trace.activations[k];
      const auto s = b.quantized_input(x);
      auto t = b.forward(x) - s;
      // The next act_in clips y = s + t to its range ([0, alpha] unsigned, [-alpha, alpha] signed): t beyond
      // those bounds gives the same codes.
      if (k + 1 < blocks.size() && !blocks[k + 1].tv_in()) {
        const auto next = activation_grid(blocks[k + 1].act_in(), blocks[k + 1].name + ".act_in");
        t = torch::min(torch::max(t, next.lowest() - s), next.highest() - s);
      }
      branch[k].update(t);
    }
  }

  GraphBuilder builder;
  builder.float_stem(*model.conv1, *model.bn1, /*max_pool=*/false);
  // The current block's quantized input (its act_in output).
  const auto input_grid = [&](size_t k) {
    return activation_grid(blocks[k].act_in(), blocks[k].name + ".act_in");
  };
  int64_t x = builder.quantize(
      blocks[0].tv_in() ? builder.tv_smooth(1, *blocks[0].tv_in(), blocks[0].name + ".tv_in") : 1,
      input_grid(0), blocks[0].name + ".act_in");
  for (size_t k = 0; k < blocks.size(); ++k) {
    const MobileBlock& b = blocks[k];
    const auto in = input_grid(k);
    const bool last = k + 1 == blocks.size();
    std::optional<ActivationGrid> next;
    if (!last) next = input_grid(k + 1);
    const bool next_tv = !last && blocks[k + 1].tv_in();
    const std::string next_name = last ? std::string() : blocks[k + 1].name + ".act_in";
    const double h = b.step_size();
    // The block output y (float) to the next block's codes: smoothed first where the next block has TV.
    const auto to_next_codes = [&](int64_t y) {
      if (next_tv) y = builder.tv_smooth(y, *blocks[k + 1].tv_in(), blocks[k + 1].name + ".tv_in");
      return builder.quantize(y, *next, next_name);
    };
    // The residual y = x_q + T (no ReLU in MobileNetV2: the next act_in's clip at 0 stands for it when its
    // grid is unsigned; a signed grid clips at -alpha): codes of the next block, or float before TV smoothing
    // or the head.
    const auto residual = [&](int64_t t) {
      IntOp add;
      add.inputs = {x, t};
      if (next && !next_tv) {
        add.kind = OpKind::kAdd;
        add.name = next_name;
        add.relu = next->zero_point == 0;
        add.out_scale = next->scale;
        add.out_zero_point = next->zero_point;
        add.qmax = next->qmax;
        return builder.add(std::move(add));
      }
      add.kind = OpKind::kAddToFloat;
      add.name = b.name + ".residual";
      const int64_t y = builder.add(std::move(add));
      return next ? to_next_codes(y) : y;
    };

    if (b.symmetric) {
      auto& n = *b.symmetric;
      const auto mid = activation_grid(*n.act_mid, b.name + ".act_mid");
      const auto k1 = weight_codes(*n.conv1, b.name + ".conv1");
      const auto k2 = weight_codes(*n.conv2, b.name + ".conv2");
      const int64_t hidden = k2.codes.size(0);
      // K2 K1 x_q: K1's integer sums exactly, then K2 (depthwise, unpadded) with BN1 and ReLU in float: no
      // quantizer separates the two convolutions in the trained block.
      const int64_t expanded = builder.qconv_to_float(x, fold_conv(k1, identity_affine(hidden)), k1,
                                                      {1, 0, 1}, false, b.name + ".conv1");
      const auto [w2, b2] = fold_float(dequantized(k2), batch_norm_affine(*n.bn1), 1.0);
      int64_t u = builder.float_conv(expanded, w2, b2, {1, 0, hidden}, /*relu=*/true, b.name + ".conv2");
      if (n.tv_mid) u = builder.tv_smooth(u, *n.tv_mid, b.name + ".tv_mid");
      u = builder.quantize(u, mid, b.name + ".act_mid");
      // K1^T K2^T u_q: K2^T = K2 flipped, padding 2 (depthwise: its own transpose, channel by channel), its
      // integer sums exactly; then K1^T (1x1, hidden -> C) with -h BN2 in float.
      WeightCodes k2t = k2;
      k2t.codes = k2.codes.flip({2, 3}).contiguous();
      const int64_t back = builder.qconv_to_float(u, fold_conv(k2t, identity_affine(hidden)), k2t,
                                                  {1, 2, hidden}, false, b.name + ".conv2_transposed");
      const auto [w1t, b1t] =
          fold_float(dequantized(k1).transpose(0, 1), batch_norm_affine(*n.bn2), -h);  // [C, tC, 1, 1]
      const int64_t t = builder.float_conv(back, w1t, b1t, {1, 0, 1}, false, b.name + ".branch");
      x = residual(t);
      continue;
    }

    auto& n = *b.ordinary;
    const auto mid = activation_grid(*n.act_mid, b.name + ".act_mid");
    const auto out = activation_grid(*n.act_out, b.name + ".act_out");
    const auto w1 = weight_codes(*n.conv1, b.name + ".conv1");
    const int64_t u =
        builder.conv_relu_codes(x, fold_conv(w1, batch_norm_affine(*n.bn1)), w1, conv_geometry(*n.conv1),
                                n.tv_mid, mid, b.name, "act_mid", "tv_mid");
    const auto w2 = weight_codes(*n.conv2, b.name + ".conv2");
    const int64_t v =
        builder.conv_relu_codes(u, fold_conv(w2, batch_norm_affine(*n.bn2)), w2, conv_geometry(*n.conv2),
                                n.tv_out, out, b.name, "act_out", "tv_out");
    const auto w3 = weight_codes(*n.conv3, b.name + ".conv3");
    const auto at3 = conv_geometry(*n.conv3);
    if (b.has_residual()) {
      // T = -h BN3(K3 v_q) at a calibrated grid; the add is fused into K3's kernel in exact mode.
      const bool clipped = next && !next_tv;
      constexpr double kNone = std::numeric_limits<double>::infinity();
      const CalibrationRange range =
          branch[k].widened(options.range_margin(), clipped ? next->lowest() - in.highest() : -kNone,
                            clipped ? next->highest() - in.lowest() : kNone);
      const auto [t_scale, t_zero_point] = affine_codes(range.lo, range.hi);
      const int64_t t = builder.qconv(v, fold_conv(w3, batch_norm_affine(*n.bn3), -h), w3, at3, false,
                                      t_scale, t_zero_point, 255, b.name + ".branch");
      x = residual(t);
      continue;
    }
    // No residual: z = BN3(K3 v_q) is the block output, straight to the next act_in's codes (an unsigned
    // grid's clip at 0 is the convolution's ReLU), or float before TV smoothing or the head.
    const auto folded = fold_conv(w3, batch_norm_affine(*n.bn3));
    if (next && !next_tv) {
      x = builder.qconv(v, folded, w3, at3, /*relu=*/next->zero_point == 0, next->scale, next->zero_point,
                        next->qmax, next_name);
      continue;
    }
    const int64_t z = builder.qconv_to_float(v, folded, w3, at3, false, b.name + ".conv3");
    x = next ? to_next_codes(z) : z;
  }
  // Head: float 1x1 conv + BN + ReLU, global average pool, classifier.
  TORCH_INTERNAL_ASSERT(!model.head_conv->bias.defined(), "MobileNetV2's head conv has no bias");
  const auto [head_weight, head_bias] =
      fold_float(model.head_conv->weight.detach().to(torch::kDouble), batch_norm_affine(*model.head_bn), 1.0);
  x = builder.float_conv(x, head_weight, head_bias, {1, 0, 1}, true, "head");
  builder.head(x, *model.fc);

  model.train(was_training);
  builder.graph.validate("export");
  return std::move(builder.graph);
}

}  // namespace pdeq::deploy
