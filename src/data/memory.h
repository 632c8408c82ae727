// Large uint8 buffers for whole datasets (internal header of src/data).
//
// Filling a freshly allocated 150 MB tensor costs one page fault per 4 KiB page, and on virtual machines
// those faults, not the copying, dominate reading a dataset (measured: ~1.5 s for CIFAR-10 train+test, mostly
// in the kernel's fault path). Asking for transparent huge pages cuts the number of faults 512-fold where the
// kernel allows it (THP "madvise" mode, the Debian default); elsewhere the hint is ignored and nothing
// changes.
#pragma once

#include <ATen/ATen.h>

#include <sys/mman.h>
#include <cstddef>
#include <cstdint>

namespace pdeq::data::detail {

/// Best effort: mark the whole 2 MiB pages inside [data, data + bytes) as wanting huge pages.
inline void advise_huge_pages(void* data, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

/// An uninitialised CPU tensor of `sizes`, advised for huge pages before anything touches it.
inline at::Tensor empty_for_dataset(at::IntArrayRef sizes, at::ScalarType dtype) {
  auto tensor = at::empty(sizes, at::TensorOptions().dtype(dtype));
  advise_huge_pages(tensor.data_ptr(), tensor.nbytes());
  return tensor;
}

}  // namespace pdeq::data::detail
