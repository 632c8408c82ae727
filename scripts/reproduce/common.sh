# Shared by the scripts in scripts/reproduce/ (sourced, not run): the --scale choice, building the CLI, training
# that resumes a killed run and skips a finished one, and the provenance line every result carries.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

# parse_common_args "$@": sets scale (paper|cpu), out (run folder root), reference (path or empty), seeds.
parse_common_args() {
  scale=cpu
  out=""
  reference=""
  seeds=1
  while [[ $# -gt 0 ]]; do
    case $1 in
      --scale) scale=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --reference) reference=$2; shift 2 ;;
      --seeds) seeds=$2; shift 2 ;;
      -h | --help) sed -n '2,/^set -/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) echo "$0: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
  done
  if [[ $scale != paper && $scale != cpu ]]; then
    echo "$0: --scale: expected 'paper' or 'cpu', got '$scale'" >&2
    exit 2
  fi
  if [[ -n $reference && ! -f $reference/stable_exp.py ]]; then
    echo "$0: --reference: '$reference' is not a checkout of BGUCompSci/CNNQuantizationThroughPDEs (no stable_exp.py)" >&2
    exit 2
  fi
}

# set_image_protocol: the CIFAR-10 protocol of the image figures at this scale, shared so that the scripts
# reuse each other's runs (same folder, same settings): protocol (pdeq --set arguments), reference_protocol
# (scripts/reproduce/reference_cifar.py arguments), resnet/stablenet/symmetric (configs), names (the pair).
#   cpu: the 5,000 training images pdeq's seeded split puts first (both programs use the same ones), no
#     validation split, 10 epochs, batch 128, SGD 0.1 / 0.9 / 1e-4, per-epoch cosine, bits 16 -> 4 in steps of
#     3 after epochs 1-4 (4 bits from epoch 6 of 10), crop + flip, the official 10,000 test images.
#   paper: the shipped 200-epoch configs (45,000 / 5,000 split, 16 -> 4 bits, one step per 10 epochs).
set_image_protocol() {
  if [[ $scale == cpu ]]; then
    protocol=(--set data.val_size=0 --set data.limit_train=5000 --set data.limit_test=0 --set train.epochs=10
      --set quant.schedule.enabled=true --set quant.schedule.start_bits=16 --set quant.schedule.step=3
      --set quant.schedule.period_epochs=1 --set train.threads=2 --set train.log_every=1000)
    reference_protocol=(--limit-train 5000 --epochs 10 --start-bits 16 --bit-step 3 --period 1)
    resnet=configs/cifar10_resnet20_w4a4_cpu.json
    stablenet=configs/cifar10_stablenet20_w4a4_cpu.json
    symmetric=configs/cifar10_resnet20_sym_w4a4.json
    names=(resnet20 stablenet20)
  else
    protocol=(--set quant.schedule.enabled=true)
    reference_protocol=(--epochs 200 --start-bits 16 --bit-step 1 --period 10)
    resnet=configs/cifar10_resnet56_w4a4.json
    stablenet=configs/cifar10_stablenet56_w4a4.json
    symmetric=""
    names=(resnet56 stablenet56)
  fi
}

build_cli() { bash scripts/build.sh --target pdeq_cli >/dev/null; }

# train_run DIR CONFIG [--set k=v ...]: trains into DIR, continues a killed run, leaves a finished one alone.
train_run() {
  local dir=$1 config=$2
  shift 2
  if [[ -f $dir/summary.json ]]; then return 0; fi
  if [[ -f $dir/checkpoints/last.pt ]]; then
    build/pdeq train --resume "$dir"
  else
    build/pdeq train --config "$config" --out "$dir" "$@"
  fi
}

# provenance: one line naming the commit, the machine and the date, for the results' README.
provenance() {
  local commit cpu
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if ! git diff --quiet HEAD 2>/dev/null; then commit="$commit (with local changes)"; fi
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
  echo "commit $commit; $(nproc) cores, $cpu; $(date -u +%Y-%m-%d)"
}
