#!/usr/bin/env bash
# Runs pdeq's ONNX export in ONNX Runtime and compares it with pdeq's own integer model (docs/deploy.md#onnx).
#
#   scripts/check_onnx.sh [--pdeq BIN] [--python PY] [--no-install] [--speed] [--run DIR]... [--keep DIR]
#
# Without --run it trains six small Fashion-MNIST runs (1 epoch on 512 images, W4A4: resnet20, symmetric
# resnet20, stablenet20, symmetric stablenet20, mobilenetv2, symmetric mobilenetv2) into a temporary folder. For each run: `pdeq export` to
# .pdeqint and to ONNX, `pdeq eval --model x.pdeqint --max-batches 1 --dump-batch DIR` (the first test batch's
# normalised images and the integer model's logits, exact residuals), then ONNX Runtime (CPU, default graph
# optimisations) on the same images: agreement of the predictions (>= 99.9% required) and the logits (median
# difference per image <= 1e-4 of the largest logit; the fraction of images within 1e-3 is reported). --speed also times ORT (1 thread, batches 1 and 128) next to
# `pdeq bench infer` (the integer model in both residual modes and the float model).
# The Python is --python, else $PDEQ_ONNX_PYTHON, else build/venv-onnx/bin/python, created with
# `pip install onnxruntime numpy` when it is missing, unless --no-install (the CTest test), which skips instead.
# Exit codes: 0 every run agrees, 1 a difference (listed), 77 skipped (no onnxruntime with --no-install, no
# Fashion-MNIST, or a pdeq built without ONNX), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
pdeq=build/pdeq python="${PDEQ_ONNX_PYTHON:-}" install=1 speed=0 keep="" runs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pdeq) pdeq="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    --speed) speed=1; shift ;;
    --run) runs+=("$2"); shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "usage: $0 [--pdeq BIN] [--python PY] [--no-install] [--speed] [--run DIR]... [--keep DIR]" >&2; exit 2 ;;
  esac
done

has_ort() { [[ -n "$1" ]] && "$1" -c 'import onnxruntime, numpy' 2>/dev/null; }
if [[ -z "$python" ]]; then
  python=build/venv-onnx/bin/python
  if ! has_ort "$python"; then
    if [[ $install == 0 ]]; then
      echo "SKIPPED: no Python with onnxruntime (run scripts/check_onnx.sh once to create build/venv-onnx," \
           "or set PDEQ_ONNX_PYTHON)"
      exit 77
    fi
    python3 -m venv build/venv-onnx
    build/venv-onnx/bin/pip install --quiet onnxruntime numpy
  fi
fi
if ! has_ort "$python"; then
  echo "$python cannot import onnxruntime and numpy" >&2
  exit 1
fi

if [[ -n "$keep" ]]; then
  mkdir -p "$keep"
  scratch=$(cd "$keep" && pwd)
else
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi
if [[ ${#runs[@]} == 0 ]]; then
  if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
    echo "SKIPPED: no Fashion-MNIST in /usr/share/datasets/fashion-mnist for the short runs"
    exit 77
  fi
  # name and --set overrides of each short run
  specs=("resnet20" "resnet20_sym model.stable=true" "stablenet20 model.name=stablenet20"
         "stablenet20_sym model.name=stablenet20 model.stable=true model.step_size=0.5"
         "mobilenetv2 model.name=mobilenetv2"
         "mobilenetv2_sym model.name=mobilenetv2 model.stable=true model.step_size=0.5")
  for spec in "${specs[@]}"; do
    read -r name sets <<<"$spec"
    args=()
    for s in $sets; do args+=(--set "$s"); done
    "$pdeq" train --config configs/fashion_mnist_resnet20_w4a4.json --out "$scratch/$name" \
      --set train.epochs=1 --set data.val_size=128 --set data.limit_train=512 --set data.limit_test=256 \
      --set train.threads=2 "${args[@]}" >"$scratch/$name.train.log" 2>&1 ||
      { cat "$scratch/$name.train.log"; exit 1; }
    runs+=("$scratch/$name")
  done
fi

status=0
for run in "${runs[@]}"; do
  name=$(basename "$run")
  out="$scratch/$name.export"
  mkdir -p "$out"
  "$pdeq" export --run "$run" --out "$out/model.pdeqint" >"$out/export.log" 2>&1 ||
    { cat "$out/export.log"; exit 1; }
  if ! "$pdeq" export --run "$run" --out "$out/model.onnx" --format onnx >"$out/export_onnx.log" 2>&1; then
    if grep -q "built without ONNX support" "$out/export_onnx.log"; then
      echo "SKIPPED: this pdeq was built without ONNX support (libonnx-dev)"
      exit 77
    fi
    cat "$out/export_onnx.log"
    exit 1
  fi
  "$pdeq" eval --model "$out/model.pdeqint" --max-batches 1 --dump-batch "$out/batch" --json \
    >"$out/eval.json" 2>"$out/eval.log" || { cat "$out/eval.log"; exit 1; }
  if [[ $speed == 1 ]]; then
    "$pdeq" bench infer --model "$out/model.pdeqint" --residuals exact --batch 1 --batch 128 --threads 1 \
      --rounds 3 --seconds 0.5 --json >"$out/bench_exact.json" 2>/dev/null
    "$pdeq" bench infer --model "$out/model.pdeqint" --residuals int8 --batch 1 --batch 128 --threads 1 \
      --rounds 3 --seconds 0.5 --json >"$out/bench_int8.json" 2>/dev/null
  fi
  "$python" - "$name" "$out" "$speed" <<'PY' || status=1
import json, os, statistics, sys, time
import numpy as np
import onnxruntime as ort

name, out, speed = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
images = np.load(os.path.join(out, "batch", "images.npy"))
expected = np.load(os.path.join(out, "batch", "logits.npy"))
labels = np.load(os.path.join(out, "batch", "labels.npy"))

def session(threads=0):
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(out, "model.onnx"), options, providers=["CPUExecutionProvider"])

logits = session().run(["logits"], {"image": images})[0]
agreement = float(np.mean(logits.argmax(1) == expected.argmax(1)))
largest = float(np.abs(expected).max())
per_image = np.abs(logits - expected).max(1)
# ORT's convolutions sum scaled float products, pdeq's exact integers: where a sum lies within float
# rounding of a code boundary the code flips, and that image's later logits move (a few images in a hundred
# on 28x28 ResNet-20s); the others are the same up to float rounding.
same = float(np.mean(per_image <= 1e-3 * largest))
median = float(np.median(per_image))
accuracy = float(np.mean(logits.argmax(1) == labels))
problems = []
if agreement < 0.999:
    problems.append(f"predictions agree on {agreement:.4f} < 0.999")
if median > 1e-4 * largest:
    problems.append(f"median logit difference {median:.3g} > 1e-4 of the largest logit {largest:.3g}")
line = (f"check_onnx {name}: {len(images)} images, onnxruntime {ort.__version__}: agreement {agreement:.4f}, "
        f"logits within 1e-3 of the largest ({largest:.3g}) on {same:.4f} of the images, largest difference "
        f"{per_image.max():.3g}, median {median:.2g}; accuracy {accuracy:.4f}")
if speed:
    single = session(threads=1)
    figures = {}
    for batch in (1, 128):
        x = np.ascontiguousarray(np.resize(images, (batch,) + images.shape[1:]))
        single.run(["logits"], {"image": x})  # warm-up
        rates = []
        for _ in range(3):
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < 0.5:
                single.run(["logits"], {"image": x})
                runs += 1
            rates.append(runs * batch / (time.perf_counter() - start))
        figures[batch] = statistics.median(rates)
    line += "; ORT 1 thread img/s: " + ", ".join(f"batch {b} {r:.0f}" for b, r in figures.items())
    for mode in ("exact", "int8"):
        path = os.path.join(out, f"bench_{mode}.json")
        bench = json.load(open(path))
        parts = [f"batch {row['batch']} int {row['int8_images_per_second']:.0f} "
                 f"float {row['float_images_per_second']:.0f}" for row in bench["results"]]
        if parts:
            line += f"; pdeq {mode}: " + ", ".join(parts)
print(line)
for p in problems:
    print(f"MISMATCH {name}: {p}")
sys.exit(1 if problems else 0)
PY
done
exit $status
