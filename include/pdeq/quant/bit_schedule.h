// Gradual bit-width lowering during training (paper protocol: 16 bits, minus 1 every 10 epochs, to the
// target).
#pragma once

#include <cstdint>

#include <torch/arg.h>

namespace pdeq::quant {

struct BitScheduleOptions {
  explicit BitScheduleOptions(int64_t target_bits) : target_bits_(target_bits) {}
  TORCH_ARG(int64_t, target_bits);
  TORCH_ARG(int64_t, start_bits) = 16;
  TORCH_ARG(int64_t, step) = 1;  ///< bits removed per period
  TORCH_ARG(int64_t, period_epochs) = 10;
  TORCH_ARG(bool, enabled) = true;  ///< false: target bits from epoch 0
  /// true (the reference): the bits drop after training epochs P, 2P, ... (0-based; its `if epoch > 0 and
  /// epoch % 10 == 0` after the epoch), so the start width runs P + 1 epochs and the others P; false: every
  /// width runs P epochs.
  TORCH_ARG(bool, reference_timing) = true;
};

/// Bits in force during `epoch` (0-based): max(target, start - step*k), k = floor(max(epoch - 1, 0)/period)
/// with reference_timing, else floor(epoch/period); full precision targets (>= 32) are never scheduled.
int64_t bits_at_epoch(const BitScheduleOptions& options, int64_t epoch);

}  // namespace pdeq::quant
