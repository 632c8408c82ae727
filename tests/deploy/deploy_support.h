// Small quantized networks (ResNets, a StableNet, MobileNetV2s), trained briefly on a synthetic task, that
// the deploy tests export.
#pragma once

#include <pdeq/config/config.h>
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/resnet.h>

#include "model_support.h"

#include <torch/torch.h>

#include <optional>
#include <utility>
#include <vector>

namespace pdeq::test {

/// Images [n, 3, 16, 16] ~ N(0, 1) with +1.5 added to one quadrant of channel 0; the label is the quadrant.
inline std::pair<torch::Tensor, torch::Tensor> quadrant_batch(int64_t n) {
  auto images = torch::randn({n, 3, 16, 16});
  const auto labels = torch::randint(0, 4, {n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t q = labels[i].item<int64_t>();
    images[i][0].narrow(0, 8 * (q / 2), 8).narrow(1, 8 * (q % 2), 8).add_(1.5);
  }
  return {images, labels};
}

/// Two stages ({8 x 2}, {16 x 2, stride 2}): identity and projection shortcuts; with `symmetric` the
/// second block of each stage is a SymmetricBlock (h = 0.5), as the paper's stable ResNets. `tv`: TV
/// smoothing layers where its options place them.
inline std::shared_ptr<models::ResNetImpl> small_resnet(bool symmetric, int64_t bits = 4,
                                                        std::optional<models::TVOptions> tv = std::nullopt) {
  auto model = w4a4(3, 4);
  model.weight_quant.bits(bits);
  model.act_quant.bits(bits);
  model.tv = std::move(tv);
  models::ResNetOptions options({{8, 2, 1}, {16, 2, 2}}, model);
  if (symmetric) {
    options.block([](const models::BlockOptions& block) {
      return models::symmetric_block(models::BlockOptions(block).step_size(0.5));
    });
  }
  return std::make_shared<models::ResNetImpl>(options);
}

/// The same two stages as a StableNet (Transition::kConcatPool): every block works at its input width and
/// resolution, the first block of stage 2 concatenates its input (8 -> 16 channels) and pools 2x2; with
/// `symmetric` every block is a SymmetricBlock (h = 0.5), else an ordinary BasicBlock.
inline std::shared_ptr<models::ResNetImpl> small_stablenet(
    bool symmetric, int64_t bits = 4, std::optional<models::TVOptions> tv = std::nullopt) {
  auto model = w4a4(3, 4);
  model.weight_quant.bits(bits);
  model.act_quant.bits(bits);
  model.tv = std::move(tv);
  const models::BlockFactory block = [symmetric](const models::BlockOptions& options) {
    return symmetric ? models::symmetric_block(models::BlockOptions(options).step_size(0.5))
                     : models::basic_block(options);
  };
  return std::make_shared<models::ResNetImpl>(models::ResNetOptions({{8, 2, 1}, {16, 2, 2}}, model)
                                                  .transition(models::Transition::kConcatPool)
                                                  .first_block(block)
                                                  .block(block));
}

/// ResNet-50's layout in small: stages {4 x 2}, {8 x 2, stride 2} of Bottlenecks (1x1, 3x3, 1x1, outputs
/// 4x the stage width: 16 and 32 channels), projection shortcuts on the first block of each stage.
inline std::shared_ptr<models::ResNetImpl> small_bottleneck_resnet(
    int64_t bits = 4, std::optional<models::TVOptions> tv = std::nullopt) {
  auto model = w4a4(3, 4);
  model.weight_quant.bits(bits);
  model.act_quant.bits(bits);
  model.tv = std::move(tv);
  return std::make_shared<models::ResNetImpl>(models::ResNetOptions({{4, 2, 1}, {8, 2, 2}}, model)
                                                  .first_block(models::bottleneck_block)
                                                  .block(models::bottleneck_block)
                                                  .expansion(models::kBottleneckExpansion));
}

/// MobileNetV2's layout in small: a 16-channel stem, stages {t 1, 8 x 1}, {t 2, 8 x 2, stride 2}, {t 2,
/// 16 x 2, stride 2} and a 32-channel head on 16x16 images: the first block of each stage without a
/// residual, the second with one; with `symmetric` the second blocks are SymmetricInvertedResiduals
/// (h = 0.5), as the paper's stable MobileNetV2.
inline std::shared_ptr<models::MobileNetV2Impl> small_mobilenetv2(
    bool symmetric, int64_t bits = 4, std::optional<models::TVOptions> tv = std::nullopt) {
  auto model = w4a4(3, 4);
  model.weight_quant.bits(bits);
  model.act_quant.bits(bits);
  model.tv = std::move(tv);
  model.stable = symmetric;
  model.step_size = symmetric ? 0.5 : 1.0;
  return std::make_shared<models::MobileNetV2Impl>(
      model, std::vector<models::InvertedResidualStage>{{1, 8, 1, 1}, {2, 8, 2, 2}, {2, 16, 2, 2}}, 32);
}

/// The meta a .pdeqint file of small_resnet needs (save_int_graph and load_int_graph check it): a valid
/// config, the input shape of quadrant_batch and its 4 classes.
inline nlohmann::json small_resnet_meta() {
  return {{"config", config::to_json(config::Config{})}, {"input_shape", {3, 16, 16}}, {"num_classes", 4}};
}

/// `steps` SGD steps on quadrant batches of 32 (BatchNorm statistics and alphas move as in real training).
inline void train_briefly(models::ClassifierImpl& net, int64_t steps) {
  torch::optim::SGD optimizer(net.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  net.train();
  for (int64_t step = 0; step < steps; ++step) {
    const auto [images, labels] = quadrant_batch(32);
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(net.forward(images), labels).backward();
    optimizer.step();
  }
  net.eval();
}

}  // namespace pdeq::test
