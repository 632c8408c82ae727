// Gradual bit-width lowering (the reference: 16 bits, minus 1 every 10 epochs, down to the target).
#include <pdeq/quant/bit_schedule.h>

#include <pdeq/quant/fake_quantize.h>

#include <algorithm>

namespace pdeq::quant {

int64_t bits_at_epoch(const BitScheduleOptions& options, int64_t epoch) {
  TORCH_CHECK(epoch >= 0, "epoch must be non-negative, but got ", epoch);
  TORCH_CHECK(options.period_epochs() >= 1, "period_epochs must be at least 1, but got ",
              options.period_epochs());
  TORCH_CHECK(options.step() >= 0, "step must be non-negative, but got ", options.step());
  const int64_t target = options.target_bits();
  // Full precision is never scheduled, and a start at or below the target means there is nothing to lower.
  if (!options.enabled() || target >= kFullPrecisionBits || options.start_bits() <= target) {
    return target;
  }
  const int64_t drops = options.reference_timing() ? std::max<int64_t>(epoch - 1, 0) / options.period_epochs()
                                                   : epoch / options.period_epochs();
  return std::max(target, options.start_bits() - options.step() * drops);
}

}  // namespace pdeq::quant
