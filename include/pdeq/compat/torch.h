// What differs between the LibTorch versions pdeq builds against (Debian's 1.13, the PyPI wheels' 2.x), in
// one place and without version checks: each helper is written so that the same code compiles against both.
#pragma once

#include <ATen/autocast_mode.h>

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

// Autocast state. LibTorch 2.x keeps 1.13's per-backend functions (is_cpu_enabled, ...) but deprecates them
// in favour of per-device ones (is_autocast_enabled(at::kCPU), ...) that 1.13 lacks: these helpers call the
// ones both have, with the deprecation warning silenced here only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/// Whether CPU autocast is on in this thread, and its dtype.
inline bool cpu_autocast_enabled() { return at::autocast::is_cpu_enabled(); }
inline at::ScalarType cpu_autocast_dtype() { return at::autocast::get_autocast_cpu_dtype(); }

/// Switches CPU autocast in this thread on or off, computing in `dtype` while on.
inline void set_cpu_autocast(bool enabled, at::ScalarType dtype) {
  at::autocast::set_cpu_enabled(enabled);
  at::autocast::set_autocast_cpu_dtype(dtype);
}

/// Whether CUDA autocast is on in this thread, and its dtype.
inline bool cuda_autocast_enabled() { return at::autocast::is_enabled(); }
inline at::ScalarType cuda_autocast_dtype() { return at::autocast::get_autocast_gpu_dtype(); }

/// Switches CUDA autocast in this thread on or off, computing in `dtype` while on.
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype) {
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(dtype);
}

#pragma GCC diagnostic pop

}  // namespace pdeq::compat
