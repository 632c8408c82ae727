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
};

/// Bits in force during `epoch` (0-based): max(target, start - step*floor(epoch/period)); full precision
/// targets (>= 32) are never scheduled.
int64_t bits_at_epoch(const BitScheduleOptions& options, int64_t epoch);

}  // namespace pdeq::quant
