#!/usr/bin/env bash
# The CPU-sized version of the paper's stability experiment: ResNet-20 vs StableNet-20 (symmetric), W4A4 from
# the first step, 10 epochs on CIFAR-10, then `pdeq analyze stability` on both. About 20-30 minutes per model
# on 2 cores. Copies the figure and the tables to docs/results/ (what docs/models.md shows).
#   scripts/stability_experiment.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/stability_cpu}
bash scripts/build.sh --target pdeq_cli
for model in resnet20 stablenet20; do
  if [[ ! -f "$out/$model/summary.json" ]]; then
    if [[ -f "$out/$model/checkpoints/last.pt" ]]; then
      build/pdeq train --resume "$out/$model"
    else
      build/pdeq train --config "configs/cifar10_${model}_w4a4_cpu.json" --out "$out/$model"
    fi
  fi
done
build/pdeq analyze stability --run "$out/resnet20" --run "$out/stablenet20" --out "$out/analysis"
mkdir -p docs/results
cp "$out/analysis/stability.png" docs/results/stability_cifar10_resnet20_vs_stablenet20.png
cp "$out/analysis/stability.csv" docs/results/stability_cifar10_resnet20_vs_stablenet20.csv
cp "$out/analysis/stability.json" docs/results/stability_cifar10_resnet20_vs_stablenet20.json
