#!/usr/bin/env bash
# The paper's TV finding (Sec. 4, its histogram figure): TV smoothing of the feature maps before their
# quantizers narrows their value range and so lowers the quantization error. Trains ResNet-20 at W4A4 with the
# gradual bit schedule without TV and with TV at every site (3 iterations, as in the paper's figure), then
# `pdeq analyze tv` on both: per-quantizer quantization MSE over 1,000 test images, and the value histogram of
# one feature map before and after its TV layer. Writes docs/results/tv/<scale>/. The reference implementation
# has no TV code, so there is no reference column.
#
#   scripts/reproduce/tv.sh [--scale cpu|paper] [--out DIR] [--seeds N] [--layer QUANTIZER]
#
# --scale: the protocol of set_image_protocol in common.sh (the no-TV run is the one stability.sh trains, reused
#   when --out is the same folder). --layer: the quantizer whose input the histogram shows (default
#   layer1.1.act_mid, the second block's inner activation).
layer=layer1.1.act_mid
args=()
while [[ $# -gt 0 ]]; do
  if [[ $1 == --layer ]]; then
    layer=$2
    shift 2
  else
    args+=("$1")
    shift
  fi
done
source "$(dirname "$0")/common.sh"
parse_common_args "${args[@]}"
out=${out:-runs/reproduce/cifar10_$scale}
results=docs/results/tv/$scale
build_cli
mkdir -p "$out" "$results"
set_image_protocol
if [[ $scale == paper ]]; then resnet=configs/cifar10_resnet20_w4a4.json; names=(resnet20); fi
tv=(--set model.tv.enabled=true --set model.tv.iters=3 --set model.tv.where=all)

for seed in $(seq 0 $((seeds - 1))); do
  run=$out/seed$seed
  train_run "$run/${names[0]}_w4a4" "$resnet" "${protocol[@]}" --set train.seed="$seed"
  train_run "$run/${names[0]}_w4a4_tv3" "$resnet" "${protocol[@]}" "${tv[@]}" --set train.seed="$seed"
  for variant in w4a4 w4a4_tv3; do
    build/pdeq analyze tv --run "$run/${names[0]}_$variant" --out "$run/${names[0]}_$variant/tv_analysis" \
      --images 1000 --layer "$layer" --image 0 >/dev/null
  done
done

python3 scripts/reproduce/tv_table.py "$out" "${names[0]}" "$results" "$(provenance)" "$0 $*"
for variant in w4a4 w4a4_tv3; do
  cp "$out/seed0/${names[0]}_$variant/tv_analysis/quant_mse.csv" "$results/quant_mse_$variant.csv"
done
for image in "$out/seed0/${names[0]}_w4a4_tv3/tv_analysis/"*.png; do cp "$image" "$results/"; done
echo "wrote $results/README.md"
