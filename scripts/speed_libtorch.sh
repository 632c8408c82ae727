#!/usr/bin/env bash
# Training speed on LibTorch 1.13 (Debian, build/) and 2.x (PyPI wheel) side by side, in one run on this machine:
# `pdeq bench train --all-modes` ResNet-20 W4A4 and its float twin, synthetic CIFAR batches of 128, 2 threads,
# every train.memory_format x train.precision pair; the two builds alternate `repeats` times, and each line
# records the load average when it started (other jobs share the cores).
#   scripts/speed_libtorch.sh [steps] [rounds] [repeats] [build-2.x folder, default build-pypi]
# Writes JSON lines (with "libtorch") to docs/results/speed/libtorch.jsonl and prints a table of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
rounds=${2:-3}
repeats=${3:-2}
new=${4:-build-pypi}
for binary in build/pdeq "$new/pdeq"; do
  [[ -x $binary ]] || { echo "speed_libtorch: $binary missing (scripts/build.sh [--libtorch pypi])" >&2; exit 1; }
done
mkdir -p docs/results/speed
out=docs/results/speed/libtorch.jsonl
export OMP_WAIT_POLICY=PASSIVE
load() { cut -d' ' -f1 /proc/loadavg; }
config=(--config configs/cifar10_resnet20_w4a4.json --set quant.schedule.enabled=false --set train.threads=2
        --set data.batch_size=128)
commit=$(git rev-parse --short HEAD)
lines=()
for ((r = 0; r < repeats; ++r)); do
  for binary in build/pdeq "$new/pdeq"; do
    version=2.x
    [[ $binary == build/pdeq ]] && version=1.13
    line="{\"libtorch\":\"$version\",\"commit\":\"$commit\",\"load_before\":$(load),$("$binary" bench train \
      "${config[@]}" --all-modes --steps "$steps" --rounds "$rounds" --json | cut -c2-)"
    echo "$line" >>"$out"
    lines+=("$line")
  done
done
printf '%s\n' "${lines[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
modes = {}
for r in rows:
    for m in r["modes"]:
        key = (m["memory_format"], m["precision"])
        modes.setdefault(key, {}).setdefault(r["libtorch"], []).append(m)
print("| mode | 1.13 W4A4 | 1.13 float | 2.x W4A4 | 2.x float | 2.x / 1.13 (W4A4) |")
print("|---|---|---|---|---|---|")
for (fmt, prec), by in sorted(modes.items()):
    def med(v, k):
        return statistics.median(m[k] for m in by.get(v, [])) if by.get(v) else float("nan")
    a, b = med("1.13", "images_per_second"), med("2.x", "images_per_second")
    print(f"| {fmt} {prec} | {a:.0f} | {med(\"1.13\", \"float_images_per_second\"):.0f} | {b:.0f} | "
          f"{med(\"2.x\", \"float_images_per_second\"):.0f} | {b / a:.2f} |")
print("load average before each run:", [r["load_before"] for r in rows])
'
