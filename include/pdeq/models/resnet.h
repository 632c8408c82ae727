// CIFAR-style ResNets (He et al. 2016) with quantized blocks, residual x <- shortcut - h*branch.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/registry.h>

namespace pdeq::models {

Classifier resnet20(const ModelOptions& options);
Classifier resnet32(const ModelOptions& options);
Classifier resnet44(const ModelOptions& options);
Classifier resnet56(const ModelOptions& options);
Classifier resnet110(const ModelOptions& options);
Classifier resnet18(const ModelOptions& options);
Classifier resnet34(const ModelOptions& options);

}  // namespace pdeq::models
