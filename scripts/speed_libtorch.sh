#!/usr/bin/env bash
# Training speed on LibTorch 1.13 (Debian, build/) and 2.x (PyPI wheel) side by side, in one run on this machine:
# `pdeq bench train` ResNet-20 W4A4 and its float twin, synthetic CIFAR batches of 128, 2 threads, in each
# train.memory_format x train.precision pair; the two builds alternate `repeats` times, and each line records
# the load average when it started (other jobs share the cores).
#   scripts/speed_libtorch.sh [--steps N] [--bf16-steps N] [--rounds N] [--repeats N] [--new DIR]
# --bf16-steps (default: --steps) shortens the bf16 modes, which a CPU without AVX-512 BF16 emulates at about a
# tenth of the fp32 speed. --new is the 2.x build folder (default build-pypi).
# Appends JSON lines (with "libtorch") to docs/results/speed/libtorch.jsonl and prints a table of the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=20
bf16_steps=""
rounds=3
repeats=2
new=build-pypi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --bf16-steps) bf16_steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --new) new=$2; shift 2 ;;
    *) echo "speed_libtorch: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bf16_steps=${bf16_steps:-$steps}
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
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_bf16)$' |
        paste -sd, -)
lines=()
for ((r = 0; r < repeats; ++r)); do
  for format in contiguous channels_last; do
    for precision in fp32 bf16; do
      n=$steps
      [[ $precision == bf16 ]] && n=$bf16_steps
      for binary in build/pdeq "$new/pdeq"; do
        version=2.x
        [[ $binary == build/pdeq ]] && version=1.13
        line="{\"libtorch\":\"$version\",\"commit\":\"$commit\",\"cpu\":\"$cpu\",\"cpu_flags\":\"$flags\",\
\"load_before\":$(load),$("$binary" bench train "${config[@]}" --set train.memory_format=$format \
          --set train.precision=$precision --steps "$n" --rounds "$rounds" --json | cut -c2-)"
        echo "$line" >>"$out"
        echo "$line" | cut -c1-160 >&2
        lines+=("$line")
      done
    done
  done
done
printf '%s\n' "${lines[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
by = {}
for r in rows:
    by.setdefault((r["memory_format"], r["precision"]), {}).setdefault(r["libtorch"], []).append(r)
first = rows[0]
print("CPU: %s (%s), commit %s" % (first["cpu"], first["cpu_flags"], first["commit"]))
print("| mode | 1.13 W4A4 | 1.13 float | 2.x W4A4 | 2.x float | 2.x / 1.13 (W4A4) | 2.x / 1.13 (float) |")
print("|---|---|---|---|---|---|---|")
for (fmt, prec), runs in sorted(by.items()):
    def med(version, key):
        return statistics.median(r[key] for r in runs[version]) if runs.get(version) else float("nan")
    old_q, new_q = med("1.13", "images_per_second"), med("2.x", "images_per_second")
    old_f, new_f = med("1.13", "float_images_per_second"), med("2.x", "float_images_per_second")
    print("| %s %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |" % (fmt, prec, old_q, old_f, new_q, new_f,
                                                             new_q / old_q, new_f / old_f))
print("load average before each run:", [r["load_before"] for r in rows])
'
