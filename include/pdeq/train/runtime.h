// Process-wide LibTorch settings a run depends on: threads, seed, device.
#pragma once

#include <torch/types.h>

#include <string>

namespace pdeq::train {

/// Tunes the allocator for training (see runtime.cpp), sets LibTorch's intra-op threads (Debian's build
/// defaults to one; 0 means all cores) and seeds the global generator. Returns the threads in force.
int64_t configure_threads_and_seed(int64_t threads, uint64_t seed);

/// LibTorch 1.13 runs its AVX2 kernels on AVX-512 CPUs unless ATEN_CPU_CAPABILITY asks for more (it guards
/// against the clock drop of older Intel parts). Sets ATEN_CPU_CAPABILITY=avx512 when the CPU has AVX-512
/// (F, VL, BW, DQ) and the variable is unset; returns whether it did. ATen reads the variable once, at the
/// first tensor operation: call this before any (the pdeq app does, first thing in main).
bool prefer_avx512_kernels();

/// The device a run computes on: "cpu", "cuda" (GPU 0), "cuda:N", or "auto" (GPU 0 when this LibTorch has
/// CUDA and a GPU is present, else the CPU). Throws c10::ValueError for another name, or for cuda on a build
/// or machine without it (or without GPU N).
torch::Device select_device(const std::string& name);

}  // namespace pdeq::train
