// Enum-like config values: each a C++ enum, spelled in files and --set by the names listed here.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::config {

/// `model.tv.weight`: the edge-stopping function of TV smoothing.
enum class TVWeight { kCharbonnier, kPeronaMalik };
/// `model.tv.where`: block inputs, the activations inside blocks, or both.
enum class TVPlacement { kAll, kInput, kInner };
/// `model.transpose`: how symmetric blocks apply K^T.
enum class Transpose { kConv, kConvTranspose };
/// `model.stem`: auto picks by dataset (ImageNet-sized inputs get the ImageNet stem).
enum class Stem { kAuto, kCifar, kImageNet };
/// `model.graph_init`: opening and closing weights of PDE-GCNs.
enum class GraphInit { kLinear, kGlorot };
/// `model.edge_activation`: s in x - h G^T K^T s(K G x).
enum class EdgeActivation { kTanh, kRelu };
/// `data.edge_weights`: weights of a graph's gradient operator.
enum class EdgeWeights { kGcn, kSimilarity, kGcnSimilarity };
/// `train.optimizer`.
enum class Optimizer { kSgd, kAdam, kAdamW };
/// `train.lr_schedule`.
enum class LrSchedule { kCosine, kConstant };
/// `train.lr_step`: how often the schedule moves the learning rate.
enum class LrStep { kEpoch, kStep };
/// `quant.schedule.timing`: when the gradual schedule lowers the bits.
enum class ScheduleTiming { kReference, kEven };
/// `data.normalization`: whose per-channel mean/std image datasets are normalised with.
enum class Normalization { kReference, kDataset };
/// `data.class_weights` of the segmentation loss.
enum class ClassWeights { kNone, kMedianFrequency };
/// `train.memory_format` of image batches and convolution weights.
enum class MemoryFormat { kChannelsLast, kContiguous };
/// `train.precision` of convolutions and linear layers (CPU autocast).
enum class Precision { kFp32, kBf16 };

/// Every value of `E` with its name, in declaration order.
template <class E>
const std::vector<std::pair<E, std::string>>& choices();

#define PDEQ_CONFIG_CHOICES(E, ...)                                         \
  template <>                                                               \
  inline const std::vector<std::pair<E, std::string>>& choices<E>() {       \
    static const std::vector<std::pair<E, std::string>> names{__VA_ARGS__}; \
    return names;                                                           \
  }
PDEQ_CONFIG_CHOICES(TVWeight, {TVWeight::kCharbonnier, "charbonnier"},
                    {TVWeight::kPeronaMalik, "perona_malik"})
PDEQ_CONFIG_CHOICES(TVPlacement, {TVPlacement::kAll, "all"}, {TVPlacement::kInput, "input"},
                    {TVPlacement::kInner, "inner"})
PDEQ_CONFIG_CHOICES(Transpose, {Transpose::kConv, "conv"}, {Transpose::kConvTranspose, "conv_transpose"})
PDEQ_CONFIG_CHOICES(Stem, {Stem::kAuto, "auto"}, {Stem::kCifar, "cifar"}, {Stem::kImageNet, "imagenet"})
PDEQ_CONFIG_CHOICES(GraphInit, {GraphInit::kLinear, "linear"}, {GraphInit::kGlorot, "glorot"})
PDEQ_CONFIG_CHOICES(EdgeActivation, {EdgeActivation::kTanh, "tanh"}, {EdgeActivation::kRelu, "relu"})
PDEQ_CONFIG_CHOICES(EdgeWeights, {EdgeWeights::kGcn, "gcn"}, {EdgeWeights::kSimilarity, "similarity"},
                    {EdgeWeights::kGcnSimilarity, "gcn_similarity"})
PDEQ_CONFIG_CHOICES(Optimizer, {Optimizer::kSgd, "sgd"}, {Optimizer::kAdam, "adam"},
                    {Optimizer::kAdamW, "adamw"})
PDEQ_CONFIG_CHOICES(LrSchedule, {LrSchedule::kCosine, "cosine"}, {LrSchedule::kConstant, "constant"})
PDEQ_CONFIG_CHOICES(LrStep, {LrStep::kEpoch, "epoch"}, {LrStep::kStep, "step"})
PDEQ_CONFIG_CHOICES(ScheduleTiming, {ScheduleTiming::kReference, "reference"},
                    {ScheduleTiming::kEven, "even"})
PDEQ_CONFIG_CHOICES(Normalization, {Normalization::kReference, "reference"},
                    {Normalization::kDataset, "dataset"})
PDEQ_CONFIG_CHOICES(ClassWeights, {ClassWeights::kNone, "none"},
                    {ClassWeights::kMedianFrequency, "median_frequency"})
PDEQ_CONFIG_CHOICES(MemoryFormat, {MemoryFormat::kChannelsLast, "channels_last"},
                    {MemoryFormat::kContiguous, "contiguous"})
PDEQ_CONFIG_CHOICES(Precision, {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"})
#undef PDEQ_CONFIG_CHOICES

/// The names of `E`'s values ("sgd", "adam", "adamw").
template <class E>
std::vector<std::string> choice_names() {
  std::vector<std::string> names;
  for (const auto& choice : choices<E>()) names.push_back(choice.second);
  return names;
}

/// The name of `value` as files spell it.
template <class E>
const std::string& to_string(E value) {
  for (const auto& choice : choices<E>())
    if (choice.first == value) return choice.second;
  throw std::invalid_argument("pdeq::config::to_string: a value outside its enum");
}

/// The value named `name`; std::invalid_argument listing the names otherwise (config files are checked by
/// the schema, which phrases the error with file and key).
template <class E>
E from_string(const std::string& name) {
  for (const auto& choice : choices<E>())
    if (choice.second == name) return choice.first;
  std::string allowed;
  for (const auto& n : choice_names<E>()) allowed += (allowed.empty() ? "" : ", ") + n;
  throw std::invalid_argument("expected one of " + allowed + ", got \"" + name + "\"");
}

}  // namespace pdeq::config
