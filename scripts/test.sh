#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs dependencies, builds everything, runs CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
