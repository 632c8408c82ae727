#!/usr/bin/env bash
# The GPU check, on a machine with a GPU, a Python whose torch has CUDA, CMake and nvcc, and no package registry:
# builds pdeq against that torch without OpenCV (build-gpu/), runs the test suite (the CUDA tests included), and
# prints `pdeq bench train` W4A4 ResNet-20 on the GPU next to the reference implementation's Python on the
# same GPU. Meant to finish within 8 minutes on 16 cores.
#
#   scripts/pack_gpu_check.sh [REFERENCE_DIR]    # first, on a machine with the Debian packages: .gpu_check/
#   scripts/gpu_check.sh [--reference DIR] [--python PYTHON] [--jobs N] [--ctest-args "..."]
#
# Brought along (not committed): .gpu_check/deps (header-only CLI11, spdlog + fmt, nlohmann_json, Gloo's and
# zlib's headers, GoogleTest's sources; pack_gpu_check.sh) and the reference's checkout (--reference, default
# .gpu_check/reference when packed; without it that column is skipped with a message). Where the machine has
# those libraries installed, .gpu_check/deps is not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
python=${PDEQ_PYTHON:-python3}
reference=""
[[ -d .gpu_check/reference ]] && reference=.gpu_check/reference
jobs=$(nproc)
ctest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reference) reference=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --ctest-args) read -r -a ctest_args <<<"$2"; shift 2 ;;
    *) echo "gpu_check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
stage() { echo "== gpu_check [$((SECONDS - start)) s] $*"; }

stage "torch"
read -r torch_root torch_version cuda_version gpu arch < <("$python" - <<'PY'
import os, torch
gpu = torch.cuda.is_available()
name = torch.cuda.get_device_name(0).replace(" ", "_") if gpu else "none"
arch = "".join(map(str, torch.cuda.get_device_capability(0))) if gpu else "75"
print(os.path.dirname(torch.__file__), torch.__version__, torch.version.cuda or "none", name, arch)
PY
)
echo "torch $torch_version (CUDA $cuda_version) at $torch_root; GPU: $gpu (sm_$arch)"
[[ $cuda_version == none ]] && echo "gpu_check: this torch has no CUDA: a CPU build and CPU tests only"
[[ $gpu == none ]] && echo "gpu_check: no GPU visible to torch: the CUDA tests skip and the GPU benchmarks are not run"

prefix="$torch_root"
configure=()
deps=$PWD/.gpu_check/deps
if [[ -d $deps ]]; then
  stage "GoogleTest from .gpu_check/deps/src/googletest"
  if [[ ! -f .gpu_check/gtest/lib/cmake/GTest/GTestConfig.cmake && ! -f .gpu_check/gtest/lib64/cmake/GTest/GTestConfig.cmake ]]; then
    cmake -S "$deps/src/googletest" -B .gpu_check/gtest-build -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
      -DCMAKE_INSTALL_PREFIX="$PWD/.gpu_check/gtest" -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
    cmake --build .gpu_check/gtest-build -j"$jobs" >/dev/null
    cmake --install .gpu_check/gtest-build >/dev/null
  fi
  prefix="$prefix;$deps;$PWD/.gpu_check/gtest"
  configure+=("-DGLOO_INCLUDE_DIR=$deps/include")
  if [[ ! -f /usr/include/zlib.h ]]; then
    zlib=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
    configure+=("-DZLIB_INCLUDE_DIR=$deps/include" "-DZLIB_LIBRARY=${zlib:-/lib/x86_64-linux-gnu/libz.so.1}")
  fi
fi

stage "configure build-gpu"
mkdir -p build-gpu
generator=()
if [[ ! -f build-gpu/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DPDEQ_WITH_OPENCV=OFF -DPDEQ_WITH_ONNX=OFF \
  "-DCMAKE_PREFIX_PATH=$prefix" "-DTorch_DIR=$torch_root/share/cmake/Torch" "-DPDEQ_CUDA_ARCHITECTURES=$arch" \
  "${configure[@]}" >build-gpu/gpu_check.configure.log 2>&1 || { tail -40 build-gpu/gpu_check.configure.log; exit 1; }
grep "pdeq:" build-gpu/gpu_check.configure.log || true

stage "build (-j$jobs)"
cmake --build build-gpu -j"$jobs" >build-gpu/gpu_check.build.log 2>&1 || { grep -B2 -A12 "error" build-gpu/gpu_check.build.log | head -80; exit 1; }

stage "tests"
test_rc=0
(cd build-gpu && ctest -j"$jobs" --timeout 240 --output-on-failure "${ctest_args[@]}") >build-gpu/gpu_check.test.log 2>&1 || test_rc=$?
grep -E "tests passed|tests failed|Total Test time" build-gpu/gpu_check.test.log || true
grep -A200 "The following tests did not run" build-gpu/gpu_check.test.log | grep -E "Skipped|Disabled" | head -40 || true
grep -A200 "The following tests FAILED" build-gpu/gpu_check.test.log | head -40 || true

stage "benchmarks"
if [[ $gpu == none ]]; then
  echo "gpu_check: no GPU: benchmarks skipped"
else
  bench=(build-gpu/pdeq bench train --config configs/cifar10_resnet20_w4a4.json --set train.device=cuda
         --set data.batch_size=128 --set quant.schedule.enabled=false --steps 30 --warmup 5 --rounds 3 --json)
  pdeq_json=$("${bench[@]}" 2>build-gpu/gpu_check.bench.log | tail -1) || { tail -5 build-gpu/gpu_check.bench.log; pdeq_json=""; }
  ref_json=""
  if [[ -z $reference ]]; then
    echo "gpu_check: no reference checkout (--reference DIR): its column is skipped"
  else
    ref_json=$("$python" scripts/tools/reference_bench.py "$reference" --device cuda --steps 30 --warmup 5 \
               --rounds 3 2>build-gpu/gpu_check.reference.log | tail -1) || { tail -5 build-gpu/gpu_check.reference.log; ref_json=""; }
  fi
  "$python" - "$pdeq_json" "$ref_json" "$gpu" "$torch_version" <<'PY'
import json, sys
pdeq, ref, gpu, version = sys.argv[1:5]
def row(name, text):
    if not text:
        return f"| {name} | not measured | | |"
    r = json.loads(text)
    return (f"| {name} | {r['images_per_second']:.0f} | {r['float_images_per_second']:.0f} | "
            f"{r['ratio_to_float']:.2f} |")
print(f"\nResNet-20 training images/s, batch 128, synthetic CIFAR batches, {gpu.replace('_', ' ')}, torch {version}")
print("| implementation | W4A4 | float | W4A4 / float |\n|---|---|---|---|")
print(row("pdeq (bench train, train.device=cuda)", pdeq))
print(row("reference (Python)", ref))
PY
fi
stage "done"
exit $test_rc
