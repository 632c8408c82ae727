#!/usr/bin/env bash
# Speed of the graph networks on this machine: `pdeq bench train` (seconds per epoch = one training step + one
# validation pass, vs the float model) for PDE-GCN A4/float and GCN at 1 and 2 threads, and one timed
# 1000-epoch Cora run of the 16-layer, 64-channel symmetric PDE-GCN with evaluation every epoch (seconds per
# 1000 epochs), at 1 thread. Prints JSON lines; writes them to docs/results/graphs/speed.jsonl.
#   scripts/graph_speed.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/graph_speed}
bash scripts/build.sh --target pdeq_cli
mkdir -p docs/results/graphs "$out"
results=docs/results/graphs/speed.jsonl
: >"$results"
for threads in 1 2; do
  for config in cora_pdegcn_sym_a4 cora_gcn_fp; do
    build/pdeq bench train --config "configs/$config.json" --set train.threads=$threads --steps 50 --rounds 3 \
      --json | tee -a "$results"
  done
done
for threads in 1; do  # 2 threads are slower for these small graphs (see the benches above)
  run="$out/cora_sym_a4_1000_t$threads"
  rm -rf "$run"
  build/pdeq train --config configs/cora_pdegcn_sym_a4.json --out "$run" --set train.epochs=1000 \
    --set train.patience=0 --set train.threads=$threads --set train.eval_every=1 >/dev/null 2>"$run.log"
  python3 - "$run/summary.json" "$threads" <<'PY' | tee -a "$results"
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps({"run": "cora_pdegcn_sym_a4", "epochs": s["epochs_run"], "threads": int(sys.argv[2]),
                  "wall_seconds": round(s["wall_seconds"], 2),
                  "seconds_per_epoch": round(s["wall_seconds"] / s["epochs_run"], 4),
                  "test_accuracy": s["test_accuracy"]}))
PY
done
