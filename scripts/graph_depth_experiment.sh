#!/usr/bin/env bash
# Does forward stability separate the symmetric and the non-symmetric PDE-GCN with depth? Trains both at 4-bit
# activations on Cora at 16 layers (h = 2) and 64 layers (h = 0.5, the same horizon 16 x 2 = 64 x 0.5), one
# seed each, the two variants side by side (1 thread each), then `pdeq analyze stability` per depth; then the
# 64-layer pair once more with K (and K2) learning 10x faster (lr 1e-2 instead of 1e-3), so that they leave
# their identity initialisation. About 6 minutes on 2 cores. Copies the tables and figures to
# docs/results/graphs/depth_stability_a4_{l16,l64,l64_klr}.*.
#   scripts/graph_depth_experiment.sh [out_dir] [seed]
set -euo pipefail
source "$(dirname "$0")/reproduce/common.sh"  # train_run, build_cli; works from the repository root
out=${1:-runs/graph_depth}
seed=${2:-0}
build_cli

train() {  # config run_dir [--set ...]: the seed's run, resumed if killed, skipped if finished
  local config=$1 dir=$2
  shift 2
  train_run "$dir" "$config" --set train.seed="$seed" "$@"
}

# name:config suffix:extra override (the K group's lr; empty = the config's)
for setting in "l16::" "l64:_deep:" "l64_klr:_deep:train.layer_group.lr=0.01"; do
  IFS=: read -r name suffix override <<<"$setting"
  extra=()
  if [[ -n "$override" ]]; then extra=(--set "$override"); fi
  train "configs/cora_pdegcn_sym_a4${suffix}.json" "$out/sym_$name" "${extra[@]}" > "$out.sym_$name.log" 2>&1 &
  sym=$!
  train "configs/cora_pdegcn_nonsym_a4${suffix}.json" "$out/nonsym_$name" "${extra[@]}" > "$out.nonsym_$name.log" 2>&1 &
  nonsym=$!
  wait $sym
  wait $nonsym
  build/pdeq analyze stability --run "$out/sym_$name" --run "$out/nonsym_$name" --out "$out/stability_$name"
  mkdir -p docs/results/graphs
  for ext in csv png json; do
    cp "$out/stability_$name/stability.$ext" "docs/results/graphs/depth_stability_a4_$name.$ext"
  done
done
