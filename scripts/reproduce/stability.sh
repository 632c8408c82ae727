#!/usr/bin/env bash
# The paper's stability finding (Sec. 5, Fig. 4): symmetric networks keep the quantization error from growing
# through the layers. Trains ResNet-20, StableNet-20 and the symmetric ResNet-20 at W4A4 with the gradual bit
# schedule, and ResNet-20 / StableNet-20 in full precision; runs `pdeq analyze stability` on the W4A4 runs;
# with --reference, trains the reference implementation's own ResNet-20 and StableNet-20 on the same images
# and schedule (scripts/reproduce/reference_cifar.py, python3 with torch and torchvision). Writes the table,
# figure and data to docs/results/stability/<scale>/.
#
#   scripts/reproduce/stability.sh [--scale cpu|paper] [--out DIR] [--reference REF_CHECKOUT] [--seeds N]
#
# --scale: the protocol of set_image_protocol in common.sh. cpu (default): 5,000 CIFAR-10 images, 10 epochs,
#   16 -> 4 bits over the first half; minutes per pdeq run on 2 idle cores, about 20 minutes for the reference's
#   StableNet-20 (its transposed convolutions are slow on LibTorch 1.13's CPU). paper: ResNet-56 / StableNet-56,
#   the shipped 200-epoch configs; hours per run on a CPU, meant for a GPU machine.
source "$(dirname "$0")/common.sh"
parse_common_args "$@"
out=${out:-runs/reproduce/cifar10_$scale}
results=docs/results/stability/$scale
data=${PDEQ_DATA_DIR:-../shared/data}/cifar-10-batches-bin
build_cli
mkdir -p "$out" "$results"

set_image_protocol

for seed in $(seq 0 $((seeds - 1))); do
  run=$out/seed$seed
  train_run "$run/${names[0]}_w4a4" "$resnet" "${protocol[@]}" --set train.seed="$seed"
  train_run "$run/${names[1]}_w4a4" "$stablenet" "${protocol[@]}" --set train.seed="$seed"
  if [[ -n $symmetric ]]; then
    train_run "$run/resnet20_sym_w4a4" "$symmetric" "${protocol[@]}" --set train.seed="$seed"
  fi
  for name in "${names[@]}"; do
    config=$resnet
    if [[ $name == stable* ]]; then config=$stablenet; fi
    train_run "$run/${name}_fp" "$config" "${protocol[@]}" --set quant.weight_bits=32 --set quant.act_bits=32 \
      --set train.seed="$seed"
  done
  analyzed=("$run/${names[0]}_w4a4" "$run/${names[1]}_w4a4")
  if [[ -n $symmetric ]]; then analyzed+=("$run/resnet20_sym_w4a4"); fi
  args=()
  for r in "${analyzed[@]}"; do args+=(--run "$r"); done
  build/pdeq analyze stability "${args[@]}" --out "$run/analysis" >/dev/null
  if [[ -n $reference ]]; then
    for bits in 4 32; do
      for name in "${names[@]}"; do
        tag=w4a4
        if [[ $bits == 32 ]]; then tag=fp; fi
        if [[ ! -f $run/reference_${name}_$tag.json ]]; then
          python3 scripts/reproduce/reference_cifar.py "$reference" "$data" "$run/reference_${name}_$tag.json.part" \
            --arch "$name" --bits "$bits" --seed "$seed" "${reference_protocol[@]}" > "$run/reference_${name}_$tag.log"
          mv "$run/reference_${name}_$tag.json.part" "$run/reference_${name}_$tag.json"
        fi
      done
    done
  fi
done

python3 scripts/reproduce/stability_table.py "$out" "$results" "$(provenance)" "$0 $*"
cp "$out/seed0/analysis/stability.png" "$results/stability_pdeq_seed0.png"
cp "$out/seed0/analysis/stability.csv" "$results/stability_pdeq_seed0.csv"
echo "wrote $results/README.md"
