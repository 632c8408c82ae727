#!/usr/bin/env bash
# Training speed by train.memory_format x train.precision, on this machine:
#  1. `pdeq bench train --all-modes`: ResNet-20 W4A4 and the same model in float, synthetic CIFAR batches of 128,
#     2 threads, every mode alternating model and float `rounds` times (median);
#  2. `pdeq bench data --train-steps`: end-to-end CIFAR-10 training (real files, crop + flip) against one
#     synthetic batch, in every mode.
# Each line records the load average when it started (other engineers share the 2 cores).
# Writes JSON lines to docs/results/speed/{bench_modes,pipeline}.jsonl.
#   scripts/speed_modes.sh [steps] [rounds] [train_steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
rounds=${2:-3}
train_steps=${3:-60}
bash scripts/build.sh --target pdeq_cli
mkdir -p docs/results/speed
export OMP_WAIT_POLICY=PASSIVE
load() { cut -d' ' -f1 /proc/loadavg; }
config=(--config configs/cifar10_resnet20_w4a4.json --set quant.schedule.enabled=false --set train.threads=2)
echo "{\"load_before\":$(load),$(nice -n 5 build/pdeq bench train "${config[@]}" --all-modes --steps "$steps" \
  --rounds "$rounds" --json | cut -c2-)" | tee -a docs/results/speed/bench_modes.jsonl
for precision in fp32 bf16; do
  for format in contiguous channels_last; do
    echo "{\"load_before\":$(load),$(nice -n 5 build/pdeq bench data "${config[@]}" --set train.memory_format=$format \
      --set train.precision=$precision --batches 20 --train-steps "$train_steps" --json | cut -c2-)" |
      tee -a docs/results/speed/pipeline.jsonl
  done
done
