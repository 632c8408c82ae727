// StableNets (Ben-Yair et al. 2022, Sec. 4): ResNets whose every block is the symmetric step
// x <- x - h K^T s(K x), widened by channel concatenation and downsampled by average pooling instead of
// projections, so the whole network is a forward-stable discretisation.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>

namespace pdeq::models {

/// ModelOptions::stable true: every block is a SymmetricBlock (h = step_size); false: the same layout with
/// ordinary two-convolution BasicBlocks (the paper's non-symmetric comparison). In both, the first block of a
/// stage works at its input width and resolution, then concatenates the first C_out - C_in input channels and
/// pools 2x2 when the stage strides (Transition::kConcatPool). Float stem and classifier as ResNet.
/// Trace names as ResNet: "stem", "layer1.0", ...
///
/// Example:
///   pdeq::models::ModelOptions options;
///   options.stable = true;
///   options.step_size = 0.1;
///   auto net = pdeq::models::stablenet20(options);  // 112,858 parameters for 10 classes
Classifier stablenet20(const ModelOptions& options);
/// stablenet20 with twice the blocks per stage (6, 6, 6).
Classifier stablenet20x2(const ModelOptions& options);
Classifier stablenet56(const ModelOptions& options);
/// stablenet56 with twice the blocks per stage (18, 18, 18).
Classifier stablenet56x2(const ModelOptions& options);
/// ImageNet widths (64, 128, 256, 512) with ResNet-34's block counts (3, 4, 6, 3).
Classifier stablenet34(const ModelOptions& options);

}  // namespace pdeq::models
