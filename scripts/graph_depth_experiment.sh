#!/usr/bin/env bash
# Does forward stability separate the symmetric and the non-symmetric PDE-GCN with depth? Trains both at 4-bit
# activations on Cora at 16 layers (h = 2) and 64 layers (h = 0.5, the same horizon 16 x 2 = 64 x 0.5), one
# seed each, the two variants side by side (1 thread each), then `pdeq analyze stability` per depth. About 5
# minutes at 16 layers and 20 at 64 on 2 cores. Copies the tables and figures to scripts/results/graphs/.
#   scripts/graph_depth_experiment.sh [out_dir] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/graph_depth}
seed=${2:-0}
bash scripts/build.sh --target pdeq_cli

train() {  # config run_dir: trains, resumes a killed run, skips a finished one
  if [[ -f "$2/summary.json" ]]; then return; fi
  if [[ -f "$2/checkpoints/last.pt" ]]; then
    build/pdeq train --resume "$2"
  else
    build/pdeq train --config "$1" --out "$2" --set train.seed="$seed"
  fi
}

for depth in "16:" "64:_deep"; do
  layers=${depth%%:*}
  suffix=${depth#*:}
  train "configs/cora_pdegcn_sym_a4${suffix}.json" "$out/sym_l$layers" > "$out.sym_l$layers.log" 2>&1 &
  sym=$!
  train "configs/cora_pdegcn_nonsym_a4${suffix}.json" "$out/nonsym_l$layers" > "$out.nonsym_l$layers.log" 2>&1 &
  nonsym=$!
  wait $sym
  wait $nonsym
  build/pdeq analyze stability --run "$out/sym_l$layers" --run "$out/nonsym_l$layers" --out "$out/stability_l$layers"
  mkdir -p scripts/results/graphs
  for ext in csv png json; do
    cp "$out/stability_l$layers/stability.$ext" "scripts/results/graphs/depth_stability_a4_l$layers.$ext"
  done
done
