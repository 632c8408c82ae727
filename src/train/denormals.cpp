// No LibTorch headers here: built with OpenMP and without the precompiled header (see CMakeLists.txt).
#include "denormals.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define PDEQ_HAVE_MXCSR 1
#endif

namespace pdeq::train::detail {

bool flush_denormals_on_all_threads(int threads) {
#ifdef PDEQ_HAVE_MXCSR
  // MXCSR is per thread: at::globalContext().setFlushDenormal only reaches the caller, not the OpenMP team
  // that runs convolutions and their gradients. Bit 15 is flush-to-zero, bit 6 denormals-are-zero.
  constexpr unsigned kFtzDaz = 0x8040;
  _mm_setcsr(_mm_getcsr() | kFtzDaz);
#pragma omp parallel num_threads(threads)
  { _mm_setcsr(_mm_getcsr() | kFtzDaz); }
  return true;
#else
  (void)threads;
  return false;
#endif
}

}  // namespace pdeq::train::detail
