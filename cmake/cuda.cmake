# CUDA kernels: compiled when the LibTorch found has CUDA (the PyPI torch wheel for Linux does; Debian's 1.13
# does not). Every src/**/*.cu goes into the object library pdeq_cuda, whose objects are part of pdeq; the .cu
# files and the library's own sources see the compile definition PDEQ_WITH_CUDA. docs/libtorch.md.
if(TORCH_CUDA_LIBRARIES)
  set(PDEQ_TORCH_HAS_CUDA ON)
else()
  set(PDEQ_TORCH_HAS_CUDA OFF)
endif()
# The PyPI wheels' libtorch_cuda finds its CUDA libraries (NCCL, cuDNN, ...) in the nvidia-* wheels beside it
# through its own RPATH at run time. The linker resolves those same dependencies at link time and would take
# the toolkit's older ones from /usr/local/cuda/lib (on the programs' RPATH for cudart), missing symbols that
# the wheel's NCCL has: -rpath-link puts the wheels' folders first.
file(GLOB PDEQ_TORCH_NVIDIA_LIBRARY_DIRS LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
foreach(dir ${PDEQ_TORCH_NVIDIA_LIBRARY_DIRS})
  get_filename_component(dir "${dir}" REALPATH)
  target_link_options(pdeq INTERFACE "LINKER:-rpath-link,${dir}")
endforeach()
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
# LibTorch's config appends -gencode flags for its own architecture list to CMAKE_CUDA_FLAGS, including ones
# that nvcc 13 no longer knows (compute_50); pdeq's kernels take theirs from PDEQ_CUDA_ARCHITECTURES alone.
string(REGEX REPLACE "-gencode arch=compute_[0-9a-z]+,code=sm_[0-9a-z]+" "" CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS}")
# LibTorch 2.x headers need C++20 (its target asks cxx_std_20, which CMake maps to CUDA20 for .cu sources).
# CMake 3.25 (Debian 12) predates nvcc 13 and does not list its C++20 dialect; nvcc has had -std=c++20 since 12.0.
if(NOT "cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
endif()
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

# Data-parallel training on GPUs uses c10d's NCCL backend where this LibTorch has it (its torch_cuda target then
# defines USE_C10D_NCCL) and NCCL's header is at hand: the wheel's nvidia/nccl first (the NCCL it was built
# with), then the toolkit's. Only process_group.cpp includes c10d's NCCL header.
get_target_property(PDEQ_TORCH_CUDA_DEFINITIONS torch_cuda INTERFACE_COMPILE_DEFINITIONS)
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${TORCH_INSTALL_PREFIX}/../nvidia/nccl/include ${CUDAToolkit_INCLUDE_DIRS})
if("USE_C10D_NCCL" IN_LIST PDEQ_TORCH_CUDA_DEFINITIONS AND NCCL_INCLUDE_DIR)
  set_property(SOURCE src/distributed/process_group.cpp DIRECTORY ${PROJECT_SOURCE_DIR}
               APPEND PROPERTY COMPILE_DEFINITIONS PDEQ_WITH_NCCL)
  set_property(SOURCE src/distributed/process_group.cpp DIRECTORY ${PROJECT_SOURCE_DIR}
               APPEND PROPERTY INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  message(STATUS "pdeq: NCCL for data-parallel training on GPUs (${NCCL_INCLUDE_DIR})")
else()
  message(STATUS "pdeq: no NCCL (data-parallel training on cpu only)")
endif()
