#!/usr/bin/env bash
# Configures and builds pdeq (Release, Ninja when available).
#
#   scripts/build.sh [--libtorch debian|pypi] [-DOPTION=VALUE ...] [cmake --build args, e.g. --target pdeq_cli]
#
# --libtorch debian (the default): Debian's LibTorch 1.13, in build/.
# --libtorch pypi: LibTorch 2.x from the torch wheel in .venv-libtorch/ (scripts/setup.sh --libtorch pypi), in
#   build-pypi/; Torch_DIR is the wheel's share/cmake/Torch (torch.utils.cmake_prefix_path). That wheel has CUDA, so this build compiles
#   pdeq's CUDA kernels with nvcc (docs/libtorch.md).
# -D options go to the configure step (e.g. -DPDEQ_WITH_OPENCV=OFF); PDEQ_BUILD_DIR overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
libtorch=debian
configure=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --libtorch) libtorch=${2:?--libtorch needs debian or pypi}; shift 2 ;;
    -D*) configure+=("$1"); shift ;;
    *) break ;;
  esac
done
case "$libtorch" in
  debian) dir=${PDEQ_BUILD_DIR:-build} ;;
  pypi)
    dir=${PDEQ_BUILD_DIR:-build-pypi}
    python=.venv-libtorch/bin/python
    if [[ ! -x $python ]]; then
      echo "pdeq build: $python not found; run scripts/setup.sh --libtorch pypi first" >&2
      exit 1
    fi
    # CMAKE_PREFIX_PATH = the wheel's torch/ folder, not only Torch_DIR: TorchConfig looks for libtorch.so and
    # for Caffe2's config with find_library/find_package, which search the system folders (where Debian's
    # LibTorch 1.13 lives) before their PATHS; a prefix path is searched before them.
    torch_root=$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
    configure+=("-DCMAKE_PREFIX_PATH=$torch_root" "-DTorch_DIR=$torch_root/share/cmake/Torch")
    ;;
  *) echo "pdeq build: --libtorch $libtorch: expected debian or pypi" >&2; exit 2 ;;
esac
generator=()
if [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${configure[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" "$@"
