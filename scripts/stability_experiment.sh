#!/usr/bin/env bash
# The CPU-sized version of the paper's stability experiment: ResNet-20 vs StableNet-20 (symmetric), W4A4 from
# the first step, 10 epochs on CIFAR-10, then `pdeq analyze stability` on both. About 20-30 minutes per model
# on 2 cores. Copies the figure and the tables to docs/results/ (what docs/models.md shows).
#   scripts/stability_experiment.sh [out_dir]
set -euo pipefail
source "$(dirname "$0")/reproduce/common.sh"  # train_run, build_cli; works from the repository root
out=${1:-runs/stability_cpu}
build_cli
for model in resnet20 stablenet20; do
  train_run "$out/$model" "configs/cifar10_${model}_w4a4_cpu.json"
done
build/pdeq analyze stability --run "$out/resnet20" --run "$out/stablenet20" --out "$out/analysis"
mkdir -p docs/results
cp "$out/analysis/stability.png" docs/results/stability_cifar10_resnet20_vs_stablenet20.png
cp "$out/analysis/stability.csv" docs/results/stability_cifar10_resnet20_vs_stablenet20.csv
cp "$out/analysis/stability.json" docs/results/stability_cifar10_resnet20_vs_stablenet20.json
