// What differs between the LibTorch versions pdeq builds against (Debian's 1.13, the PyPI wheels' 2.x), in one
// place and without version checks: each helper is written so that the same code compiles against both.
#pragma once

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

}  // namespace pdeq::compat
