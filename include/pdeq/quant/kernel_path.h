// Which implementation pdeq's custom operations run: the fused CPU kernels, or the device-generic path.
//
// The fake quantizer, TV smoothing, the CSR product and dropout each have a fused CPU kernel (float and
// double, hand-vectorised, OpenMP) and a device-generic path built from ATen operations, which every other
// device (CUDA included) and dtype takes. A GenericKernels scope sends CPU tensors down the generic path too,
// so that tests compare the two on this machine: what a GPU computes is checked without a GPU.
#pragma once

namespace pdeq::quant {

/// False on a thread inside a GenericKernels scope: the custom operations then take their device-generic
/// paths for CPU tensors too. True otherwise (the fused CPU kernels where the tensors allow).
bool fused_cpu_kernels_enabled();

/// RAII: on this thread, for its lifetime, CPU tensors take the device-generic paths. The choice is made in
/// the forward pass; the backward pass of a node follows the path its forward took.
///
/// Example:
///   { pdeq::quant::GenericKernels generic; y = model->forward(x); }  // what CUDA would compute
class GenericKernels {
 public:
  GenericKernels();
  ~GenericKernels();
  GenericKernels(const GenericKernels&) = delete;
  GenericKernels& operator=(const GenericKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace pdeq::quant
