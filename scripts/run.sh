#!/usr/bin/env bash
# The main job on a fresh machine: installs dependencies, builds, trains the default config (Fashion-MNIST,
# ResNet-20, W4A4) into a new run folder and prints its summary.
#   scripts/run.sh [config.json] [extra `pdeq train` arguments, e.g. --set train.epochs=1]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh --target pdeq_cli
config=${1:-configs/fashion_mnist_resnet20_w4a4.json}
shift || true
# A new folder per invocation: a finished run is never overwritten.
out="runs/$(basename "$config" .json)/$(date +%Y%m%d-%H%M%S)"
build/pdeq train --config "$config" --out "$out" "$@"
echo "run folder: $out (metrics.jsonl, summary.json, train_curves.png)" >&2
