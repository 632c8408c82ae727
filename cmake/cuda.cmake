# CUDA kernels: compiled when the LibTorch found has CUDA (the PyPI torch wheel for Linux does; Debian's 1.13
# does not). Every src/**/*.cu goes into the object library pdeq_cuda, whose objects are part of pdeq; the .cu
# files and the library's own sources see the compile definition PDEQ_WITH_CUDA. docs/libtorch.md.
if(TORCH_CUDA_LIBRARIES)
  set(PDEQ_TORCH_HAS_CUDA ON)
else()
  set(PDEQ_TORCH_HAS_CUDA OFF)
endif()
option(PDEQ_WITH_CUDA "Compile pdeq's CUDA kernels with nvcc (needs a LibTorch with CUDA)" ${PDEQ_TORCH_HAS_CUDA})
if(PDEQ_WITH_CUDA AND NOT PDEQ_TORCH_HAS_CUDA)
  message(FATAL_ERROR "PDEQ_WITH_CUDA=ON, but the LibTorch found (${Torch_DIR}) was built without CUDA")
endif()
message(STATUS "pdeq: CUDA kernels ${PDEQ_WITH_CUDA}")
if(NOT PDEQ_WITH_CUDA)
  return()
endif()

# LibTorch's config (Caffe2's public/cuda.cmake) has found the toolkit (CUDA_HOME, CUDACXX or /usr/local/cuda),
# enabled the CUDA language and set CMAKE_CUDA_ARCHITECTURES to OFF (it passes its own -gencode
# flags to FindCUDA only), so pdeq's kernels take their architectures from PDEQ_CUDA_ARCHITECTURES. The default,
# sm_75 code plus its PTX, runs on every GPU since Turing: the driver compiles the PTX for newer ones on first
# use (and caches it). A build for one GPU names it, e.g. -DPDEQ_CUDA_ARCHITECTURES=90 (scripts/gpu_check.sh).
set(PDEQ_CUDA_ARCHITECTURES 75 CACHE STRING "CUDA architectures of pdeq's kernels (CMake CUDA_ARCHITECTURES syntax)")
message(STATUS "pdeq: CUDA architectures ${PDEQ_CUDA_ARCHITECTURES}")
if(CCACHE_PROGRAM)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()
enable_language(CUDA)
# LibTorch 2.x headers need C++20 (its target asks cxx_std_20 of C++ sources; nvcc needs to be told).
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

file(GLOB_RECURSE PDEQ_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.cu)
if(PDEQ_CUDA_SOURCES)
  # An object library of its own: nvcc gets neither the library's precompiled header nor its GCC warning flags.
  add_library(pdeq_cuda OBJECT ${PDEQ_CUDA_SOURCES})
  target_include_directories(pdeq_cuda PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(pdeq_cuda PRIVATE ${TORCH_LIBRARIES})
  target_compile_definitions(pdeq_cuda PRIVATE PDEQ_WITH_CUDA)
  set_target_properties(pdeq_cuda PROPERTIES CUDA_ARCHITECTURES "${PDEQ_CUDA_ARCHITECTURES}")
  target_compile_options(pdeq_cuda PRIVATE --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra)
  target_sources(pdeq PRIVATE $<TARGET_OBJECTS:pdeq_cuda>)
endif()
target_compile_definitions(pdeq PRIVATE PDEQ_WITH_CUDA)
