#!/usr/bin/env bash
# Data-parallel scaling on this machine: `pdeq bench train` of resnet20 W4A4 (global batch 128, synthetic
# images) as 2 ranks x 1 thread (`--nproc 2`: images/s of both ranks together and seconds per step inside the
# gradient allreduce) against 1 process x 2 threads and 1 process x 1 thread, alternated `rounds` times.
# Prints JSON lines; writes them to docs/results/ddp/speed.jsonl.
#   scripts/ddp_speed.sh [steps] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-8}
rounds=${2:-3}
bash scripts/build.sh --target pdeq_cli
mkdir -p docs/results/ddp
results=docs/results/ddp/speed.jsonl
: >"$results"
export OMP_WAIT_POLICY=PASSIVE
common=(--config configs/cifar10_resnet20_w4a4.json --set data.batch_size=128 --steps "$steps" --warmup 2
        --rounds 1 --no-baseline --json)
for (( round = 0; round < rounds; ++round )); do
  build/pdeq bench train "${common[@]}" --set train.threads=1 --nproc 2 | sed 's/^{/{"setup":"2 ranks x 1 thread",/' | tee -a "$results"
  build/pdeq bench train "${common[@]}" --set train.threads=2 | sed 's/^{/{"setup":"1 process x 2 threads",/' | tee -a "$results"
  build/pdeq bench train "${common[@]}" --set train.threads=1 | sed 's/^{/{"setup":"1 process x 1 thread",/' | tee -a "$results"
done
