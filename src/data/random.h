// Portable random streams for the data pipeline (internal header of src/data).
//
// Shuffles, splits and crops must be identical on every platform and LibTorch version, and a stream must be
// derivable from a tuple such as (seed, epoch, batch index) with full 64-bit keys. std:: distributions are
// implementation-defined and at::CPUGeneratorImpl truncates its seed to 32 bits, so we use SplitMix64
// (Steele, Lea & Flood 2014): one add and two multiply-xorshifts per draw, fully specified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <utility>
#include <vector>

namespace pdeq::data::detail {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t operator()() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

/// One 64-bit key from an ordered tuple: each part goes through a SplitMix64 step, so (s, 1, 2) != (s, 2, 1).
inline uint64_t derive_seed(std::initializer_list<uint64_t> parts) {
  uint64_t key = 0x6a09e667f3bcc909ULL;  // arbitrary non-zero start (sqrt(2) bits)
  for (uint64_t part : parts) key = SplitMix64(key ^ part)();
  return key;
}

/// Unbiased integer in [0, n) from any source of uniform 64-bit words (rejection of the short top range).
template <typename Source>
uint64_t uniform_below(Source& source, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t r = source();
    if (r >= threshold) return r % n;
  }
}

/// A uniformly random permutation of 0..n-1 (Fisher-Yates).
template <typename Source>
std::vector<int64_t> permutation(int64_t n, Source& source) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(source, static_cast<uint64_t>(i + 1)));
    std::swap(order[i], order[j]);
  }
  return order;
}

}  // namespace pdeq::data::detail
