#!/usr/bin/env bash
# Loader vs training speed for image folders (and the in-memory CIFAR-10 loader), as JSON lines from
# `pdeq bench data`: decode+augment images/s of 256-px JPEGs at 224 px with 1 and 2 workers, ResNet-18 (ImageNet
# stem, W4A4) training images/s end to end vs on a synthetic batch, and the same fraction for CIFAR-10 ResNet-20.
# Generates runs/synthetic_images (10 classes x 100 + 10 JPEGs) when missing. Writes
# docs/results/image_folder/bench.jsonl.
#   scripts/image_folder_bench.sh [images_root]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-runs/synthetic_images}
[[ -d $root/train ]] || scripts/make_image_folder.sh "$root" 10 100 10 256
mkdir -p docs/results/image_folder
results=docs/results/image_folder/bench.jsonl
: >"$results"
export OMP_WAIT_POLICY=PASSIVE
config=configs/imagenet_resnet18_w4a4.json
common=(--set "data.root=$root" --set data.val_size=0 --set train.threads=2 --json)
for workers in 1 2; do
  build/pdeq bench data --config $config "${common[@]}" --set data.batch_size=64 --set data.workers=$workers \
    --batches 12 | tee -a "$results"
done
# End to end at batch 32: 4 real training steps (decoding on 2 workers beside 2 training threads) vs 4 steps
# on one synthetic batch.
build/pdeq bench data --config $config "${common[@]}" --set data.batch_size=32 --set data.workers=2 \
  --batches 4 --train-steps 4 | tee -a "$results"
if [[ -d ../shared/data/cifar-10-batches-bin || -n ${PDEQ_DATA_DIR:-} ]]; then
  build/pdeq bench data --config configs/cifar10_resnet20_w4a4.json --set train.threads=2 --batches 50 \
    --train-steps 30 --json | tee -a "$results"
fi
