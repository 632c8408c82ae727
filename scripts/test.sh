#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs dependencies, builds everything, runs CTest.
#
#   scripts/test.sh [ctest args]              # Release build in build/
#   scripts/test.sh --libtorch pypi [ctest args]   # LibTorch 2.x from the PyPI torch wheel, in build-pypi/
#                                             # (scripts/setup.sh --libtorch pypi makes its virtual environment)
#   scripts/test.sh --sanitize [ctest args]   # ASan + UBSan build in build-sanitize/ (-DPDEQ_SANITIZE=ON), e.g.
#                                             # scripts/test.sh --sanitize -R 'Config|FakeQuantize|RunDirectory'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ "${1:-}" == --sanitize ]]; then
  shift
  generator=()
  if [[ ! -f build-sanitize/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  # RelWithDebInfo: sanitizer reports with line numbers, still fast enough to train the tests' tiny models.
  cmake -S . -B build-sanitize "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPDEQ_SANITIZE=ON >/dev/null
  cmake --build build-sanitize -j"$(nproc)"
  cd build-sanitize
  # LibTorch keeps process-lifetime allocations (thread pools, registries) that LeakSanitizer would report at
  # exit; leaks are the fuzzers' business (scripts/fuzz.sh), where they are checked per input.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  ctest --output-on-failure -j"$(nproc)" "$@"
  exit
fi
if [[ "${1:-}" == --libtorch ]]; then
  libtorch=${2:?--libtorch needs debian or pypi}
  shift 2
  bash scripts/setup.sh --libtorch "$libtorch"
  bash scripts/build.sh --libtorch "$libtorch"
  if [[ $libtorch == pypi ]]; then cd "${PDEQ_BUILD_DIR:-build-pypi}"; else cd "${PDEQ_BUILD_DIR:-build}"; fi
  ctest --output-on-failure -j"$(nproc)" "$@"
  exit
fi
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
