// ModelOptions the model and analysis tests build their networks from (one definition, not one per file).
#pragma once

#include <pdeq/models/registry.h>

#include <cstdint>

namespace pdeq::test {

/// A float model for `num_classes` classes on `in_channels`-channel images.
inline models::ModelOptions classes(int64_t num_classes, int64_t in_channels = 3) {
  models::ModelOptions options;
  options.num_classes = num_classes;
  options.in_channels = in_channels;
  return options;
}

/// The same with 4-bit weights and activations (W4A4, the paper's main setting).
inline models::ModelOptions w4a4(int64_t in_channels = 3, int64_t num_classes = 10) {
  models::ModelOptions options = classes(num_classes, in_channels);
  options.weight_quant.bits(4);
  options.act_quant.bits(4);
  return options;
}

}  // namespace pdeq::test
