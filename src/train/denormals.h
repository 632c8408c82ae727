// Flush-to-zero for every thread that runs LibTorch CPU kernels (internal).
#pragma once

namespace pdeq::train::detail {

/// Sets FTZ/DAZ on the calling thread and on each of the `threads` OpenMP workers LibTorch uses. Returns
/// false on CPUs without SSE control registers (nothing changes there).
bool flush_denormals_on_all_threads(int threads);

}  // namespace pdeq::train::detail
