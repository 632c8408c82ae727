// What differs between the LibTorch versions pdeq builds against (Debian's 1.13, the PyPI wheels' 2.x), in
// one place: each helper is written so that the same code compiles against both, with a version check only
// where no call exists in both.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <variant>

namespace pdeq::compat {

/// Pointer to the `T` alternative of a LibTorch variant (e.g. Conv2dOptions::padding()), or nullptr. LibTorch
/// 1.13 has its own c10::variant with c10::get_if; 2.x uses std::variant. `using std::get_if` makes the call
/// below a template call under C++17, and argument-dependent lookup adds c10::get_if for a c10::variant.
template <typename T, typename Variant>
const T* get_if(const Variant* variant) {
  using std::get_if;
  return get_if<T>(variant);
}

// Autocast state. LibTorch 1.13 has per-backend functions (is_cpu_enabled, get_autocast_gpu_dtype, ...);
// 2.x has per-device ones (is_autocast_enabled(at::kCPU), ...) and keeps the old names as deprecated
// wrappers that print a warning on every call, which would flood a run's log.
#if TORCH_VERSION_MAJOR >= 2

/// Whether autocast is on for `device` in this thread, and its dtype.
inline bool autocast_enabled(at::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
inline at::ScalarType autocast_dtype(at::DeviceType device) {
  return at::autocast::get_autocast_dtype(device);
}

/// Switches autocast for `device` in this thread on or off, computing in `dtype` while on.
inline void set_autocast(at::DeviceType device, bool enabled, at::ScalarType dtype) {
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
}

#else

inline bool autocast_enabled(at::DeviceType device) {
  return device == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
inline at::ScalarType autocast_dtype(at::DeviceType device) {
  return device == at::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
inline void set_autocast(at::DeviceType device, bool enabled, at::ScalarType dtype) {
  if (device == at::kCPU) {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
}

#endif

}  // namespace pdeq::compat
