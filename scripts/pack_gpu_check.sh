#!/usr/bin/env bash
# Bundles what scripts/gpu_check.sh needs on a GPU machine without a package registry: the header-only
# libraries pdeq builds with and GoogleTest's sources, copied from this machine's Debian packages into
# .gpu_check/deps/ (git-ignored, about 8 MB), plus, when given, the reference implementation's checkout.
#
#   scripts/pack_gpu_check.sh [REFERENCE_DIR]    # e.g. a checkout of BGUCompSci/CNNQuantizationThroughPDEs
#
# Bring .gpu_check/ along with the working tree (it is not committed); gpu_check.sh finds it there.
# Contents: include/{CLI,spdlog,fmt,nlohmann,gloo} and zlib.h/zconf.h (Debian 12: CLI11 2.3, spdlog 1.10 used
# header-only on fmt 9 header-only, nlohmann_json 3.11, Gloo's headers for c10d), src/googletest (GoogleTest
# 1.12 sources, built there), and CMake package configs for CLI11, nlohmann_json and spdlog that point at them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=.gpu_check/deps
rm -rf "$out"
mkdir -p "$out/include" "$out/src" "$out/lib/cmake"
for dir in CLI spdlog fmt nlohmann gloo; do cp -rL "/usr/include/$dir" "$out/include/"; done
cp -L /usr/include/zlib.h /usr/include/zconf.h "$out/include/"
cp -rL /usr/src/googletest "$out/src/googletest"

# Header-only targets under the names pdeq's CMakeLists asks for.
config() {  # config NAME TARGET DEFINITIONS
  mkdir -p "$out/lib/cmake/$1"
  cat > "$out/lib/cmake/$1/$1Config.cmake" <<CMAKE
# Written by scripts/pack_gpu_check.sh: header-only $1 from .gpu_check/deps/include.
get_filename_component(_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET $2)
  add_library($2 INTERFACE IMPORTED)
  set_target_properties($2 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "\${_prefix}/include"
                                      INTERFACE_COMPILE_DEFINITIONS "$3")
endif()
CMAKE
}
config CLI11 CLI11::CLI11 ""
config nlohmann_json nlohmann_json::nlohmann_json ""
config fmt fmt::fmt "FMT_HEADER_ONLY"
config spdlog spdlog::spdlog "SPDLOG_HEADER_ONLY;SPDLOG_FMT_EXTERNAL;FMT_HEADER_ONLY"
# spdlog's headers include fmt's: the spdlog target brings the fmt target (pdeq keeps spdlog's fmt ahead of
# LibTorch's own, CMakeLists.txt).
cat >> "$out/lib/cmake/spdlog/spdlogConfig.cmake" <<'CMAKE'
include(CMakeFindDependencyMacro)
find_dependency(fmt)
set_property(TARGET spdlog::spdlog APPEND PROPERTY INTERFACE_LINK_LIBRARIES fmt::fmt)
CMAKE
for name in CLI11 nlohmann_json fmt spdlog; do
  cat > "$out/lib/cmake/$name/${name}ConfigVersion.cmake" <<'CMAKE'
set(PACKAGE_VERSION_COMPATIBLE TRUE)
CMAKE
done

if [[ $# -ge 1 ]]; then
  rm -rf .gpu_check/reference
  cp -rL "$1" .gpu_check/reference
  rm -rf .gpu_check/reference/.git
fi
du -sh .gpu_check
echo "pack_gpu_check: bring .gpu_check/ along with the working tree; run scripts/gpu_check.sh there" >&2
