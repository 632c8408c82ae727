#!/usr/bin/env bash
# Reads a short run's TensorBoard event files with TensorBoard's own reader (EventAccumulator) and compares
# every scalar with the run's metrics.jsonl and summary.json (docs/tensorboard.md).
#
#   scripts/check_tensorboard.sh [--pdeq BIN] [--python PY] [--run DIR] [--no-install]
#
# Without --run it trains ResNet-20 W4A4 on 256 Fashion-MNIST images for 1 epoch into a temporary folder.
# The Python is --python, else $PDEQ_TENSORBOARD_PYTHON, else build/venv-tensorboard/bin/python, created with
# `pip install tensorboard` when it is missing, unless --no-install (the CTest test), which skips instead.
# Exit codes: 0 every scalar agrees, 1 a difference (listed), 77 skipped (no tensorboard package with
# --no-install, or no Fashion-MNIST), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
pdeq=build/pdeq python="${PDEQ_TENSORBOARD_PYTHON:-}" run="" install=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pdeq) pdeq="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    *) echo "usage: $0 [--pdeq BIN] [--python PY] [--run DIR] [--no-install]" >&2; exit 2 ;;
  esac
done

has_tensorboard() { [[ -n "$1" ]] && "$1" -c 'import tensorboard.backend.event_processing.event_accumulator' 2>/dev/null; }
if [[ -z "$python" ]]; then
  python=build/venv-tensorboard/bin/python
  if ! has_tensorboard "$python"; then
    if [[ $install == 0 ]]; then
      echo "SKIPPED: no Python with the tensorboard package (run scripts/check_tensorboard.sh once to create" \
           "build/venv-tensorboard, or set PDEQ_TENSORBOARD_PYTHON)"
      exit 77
    fi
    python3 -m venv build/venv-tensorboard
    build/venv-tensorboard/bin/pip install --quiet tensorboard
  fi
fi
if ! has_tensorboard "$python"; then
  echo "$python cannot import tensorboard" >&2
  exit 1
fi

if [[ -z "$run" ]]; then
  if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
    echo "SKIPPED: no Fashion-MNIST in /usr/share/datasets/fashion-mnist for the short run"
    exit 77
  fi
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  run="$scratch/run"
  "$pdeq" train --config configs/fashion_mnist_resnet20_w4a4.json --out "$run" \
    --set train.epochs=1 --set data.val_size=128 --set data.limit_train=256 --set data.limit_test=128 \
    --set train.threads=2 >"$scratch/train.log" 2>&1 || { cat "$scratch/train.log"; exit 1; }
fi

"$python" - "$run" <<'PY'
import json, math, os, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = sys.argv[1]

def tag_of(key):
    """pdeq's scalar_tag: train_X -> X/train, val_X -> X/val, test_X -> X/test, accuracy written acc."""
    for split in ("train", "val", "test"):
        if key.startswith(split + "_") and len(key) > len(split) + 1:
            metric = key[len(split) + 1:]
            if metric.startswith("accuracy"):
                metric = "acc" + metric[len("accuracy"):]
            return metric + "/" + split
    return key

def as_float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]

def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)

rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
summary = json.load(open(os.path.join(run, "summary.json")))
expected = {}
for row in rows:
    for key, value in row.items():
        if key != "epoch" and is_number(value):
            expected[(tag_of(key), row["epoch"])] = value
for key, value in summary.items():
    if key.startswith("test_") and key != "test_samples" and is_number(value):
        expected[(tag_of(key), summary["epochs_run"])] = value

accumulator = EventAccumulator(os.path.join(run, "tensorboard"), size_guidance={"scalars": 0, "histograms": 0})
accumulator.Reload()
tags = accumulator.Tags()
seen, problems, extra = {}, [], {"lr/group_": 0, "alpha/": 0}
for tag in tags["scalars"]:
    for event in accumulator.Scalars(tag):
        key = (tag, event.step)
        if key in seen:
            problems.append(f"{tag} at step {event.step} appears twice")
        seen[key] = event.value
        prefix = next((p for p in extra if tag.startswith(p)), None)
        if prefix is not None:
            extra[prefix] += 1
            if not (math.isfinite(event.value) and event.value > 0):
                problems.append(f"{tag} at step {event.step} is {event.value}")
        elif key not in expected:
            problems.append(f"{tag} at step {event.step} is in the events but not in metrics.jsonl/summary.json")
for key, value in expected.items():
    if key not in seen:
        problems.append(f"{key[0]} at step {key[1]} ({value}) is missing from the events")
    elif seen[key] != as_float32(value):
        problems.append(f"{key[0]} at step {key[1]}: events {seen[key]!r}, metrics {value!r}")
histograms = 0
for tag in tags["histograms"]:
    for event in accumulator.Histograms(tag):
        histograms += 1
        h = event.histogram_value
        if abs(sum(h.bucket) - h.num) > 1e-6 * max(1.0, h.num) or not h.min <= h.max:
            problems.append(f"histogram {tag} at step {event.step}: counts {sum(h.bucket)} != num {h.num}")
if not tags["histograms"]:
    problems.append("no histograms")
for line in problems:
    print("MISMATCH:", line)
print(f"check_tensorboard: {len(expected)} scalars of metrics.jsonl/summary.json, {extra['lr/group_']} learning "
      f"rates, {extra['alpha/']} clipping scales, {histograms} histograms ({len(tags['histograms'])} tags) read by "
      f"TensorBoard's EventAccumulator; {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
