#!/usr/bin/env bash
# train.memory_format's default (whichever is faster, measured): W4A4 training images/s of each
# image config in NCHW and in channels-last, fp32, synthetic batches, 1 thread (so the other core can be busy),
# 3 rounds (median). Appends JSON lines to docs/results/speed/memory_format_by_config.jsonl.
#   scripts/memory_format_by_config.sh [steps] [rounds]
# The image-folder config needs runs/synthetic_images (scripts/make_image_folder.sh runs/synthetic_images).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-8}
rounds=${2:-3}
bash scripts/build.sh --target pdeq_cli
mkdir -p docs/results/speed
export OMP_WAIT_POLICY=PASSIVE
configs=(cifar10_resnet20_w4a4 cifar10_resnet20_w4a4_tv fashion_mnist_resnet20_w4a4 cifar10_stablenet20_w4a4_cpu
  cifar100_mobilenetv2_w4a4 cifar100_mobilenetv2_sym_w4a4 cifar100_stablenet56_w4a4 image_folder_resnet18_small)
for cfg in "${configs[@]}"; do
  for format in contiguous channels_last; do
    result=$(build/pdeq bench train --config "configs/$cfg.json" --set quant.schedule.enabled=false \
      --set train.threads=1 --set train.memory_format=$format --no-baseline --steps "$steps" --warmup 2 \
      --rounds "$rounds" --json)
    echo "{\"config\":\"$cfg\",\"load_before\":$(cut -d' ' -f1 /proc/loadavg),\"bench\":$result}" |
      tee -a docs/results/speed/memory_format_by_config.jsonl
  done
done
