#include <pdeq/quant/kernel_path.h>

namespace pdeq::quant {
namespace {

thread_local bool fused_enabled = true;

}  // namespace

bool fused_cpu_kernels_enabled() { return fused_enabled; }

GenericKernels::GenericKernels() : previous_(fused_enabled) { fused_enabled = false; }

GenericKernels::~GenericKernels() { fused_enabled = previous_; }

}  // namespace pdeq::quant
