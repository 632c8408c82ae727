#include <pdeq/models/stablenet.h>

#include <pdeq/models/resnet.h>

#include <vector>

namespace pdeq::models {
namespace {

// {channels, blocks, stride} per stage, as the reference's StableNet definitions.
const std::vector<StageOptions> kStableNet20{{16, 3, 1}, {32, 3, 2}, {64, 3, 2}};
const std::vector<StageOptions> kStableNet20x2{{16, 6, 1}, {32, 6, 2}, {64, 6, 2}};
const std::vector<StageOptions> kStableNet56{{16, 9, 1}, {32, 9, 2}, {64, 9, 2}};
const std::vector<StageOptions> kStableNet56x2{{16, 18, 1}, {32, 18, 2}, {64, 18, 2}};
const std::vector<StageOptions> kStableNet34{{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}};

Classifier stablenet(const std::vector<StageOptions>& stages, const ModelOptions& options) {
  const BlockFactory block = options.stable ? symmetric_block : basic_block;
  return std::make_shared<ResNetImpl>(
      ResNetOptions(stages, options).transition(Transition::kConcatPool).first_block(block).block(block));
}

}  // namespace

Classifier stablenet20(const ModelOptions& options) { return stablenet(kStableNet20, options); }
Classifier stablenet20x2(const ModelOptions& options) { return stablenet(kStableNet20x2, options); }
Classifier stablenet56(const ModelOptions& options) { return stablenet(kStableNet56, options); }
Classifier stablenet56x2(const ModelOptions& options) { return stablenet(kStableNet56x2, options); }
Classifier stablenet34(const ModelOptions& options) { return stablenet(kStableNet34, options); }

}  // namespace pdeq::models
