// One int8 convolution on oneDNN with 32-bit accumulation and its epilogue (scale, shortcut, clipping,
// rounding) fused: the kernel that lets integer inference reproduce fake-quant codes at int8 speed.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace pdeq::deploy {

/// Whether this build has oneDNN's int8 convolution (CMake option PDEQ_WITH_ONEDNN, Debian's libdnnl-dev).
bool onednn_int8_available();

/// What an OnednnInt8Conv computes. With acc[n, c, y, x] the exact int32 sum of uint8 input codes times int8
/// weight codes (zero points 0):
///   v = multiplier[c] * acc + offset[c] + accumulate_scale * dst_before
/// where dst_before is what dst holds before the call (a shortcut's codes, a projection's float output; with
/// accumulate_scale 0 it is not read), then
///   codes output: dst = round-half-even(clamp(v, 0, qmax)) as uint8; float output: dst = v (ReLU if relu).
/// The accumulator is exact for any width of codes (int32); v is computed in float.
struct Int8ConvSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0;
  /// Channels split into groups (depthwise: groups = in_channels = out_channels); both divisible by it.
  int64_t groups = 1;
  std::vector<int8_t> weight;     ///< [out_channels, in_channels / groups, kernel, kernel], row-major
  std::vector<float> multiplier;  ///< [out_channels], > 0
  std::vector<float> offset;      ///< [out_channels]
  bool codes_output = true;       ///< uint8 codes; else float
  int64_t qmax = 255;             ///< codes output: the largest code
  bool relu = false;              ///< float output: ReLU after the sums
  float accumulate_scale = 0.0f;  ///< dst's values before the call are added, times this
};

/// A convolution built once from its spec; the primitive for each input size is created on first use and
/// cached (thread-safe). Tensors are dense NHWC (channels-last): src uint8 [batch, height, width,
/// in_channels], dst uint8 or float [batch, out_height, out_width, out_channels].
/// Throws std::runtime_error when the build has no oneDNN or oneDNN refuses the configuration.
class OnednnInt8Conv {
 public:
  explicit OnednnInt8Conv(Int8ConvSpec spec);
  ~OnednnInt8Conv();
  OnednnInt8Conv(const OnednnInt8Conv&) = delete;
  OnednnInt8Conv& operator=(const OnednnInt8Conv&) = delete;

  const Int8ConvSpec& spec() const { return spec_; }
  /// Output height or width for an input of `size`.
  int64_t output_size(int64_t size) const {
    return (size + 2 * spec_.padding - spec_.kernel) / spec_.stride + 1;
  }
  void run(int64_t batch, int64_t height, int64_t width, const uint8_t* src, void* dst) const;

 private:
  struct Impl;
  Int8ConvSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pdeq::deploy
