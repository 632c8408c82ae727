#!/usr/bin/env bash
# Layering check: each area of pdeq includes only the areas below it, as docs/architecture.md draws them.
# Reads every `#include <pdeq/AREA/...>` in include/pdeq/, src/ and apps/; exits 1 listing each include that
# reaches up or sideways.
#
#   scripts/check_layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import os, re, sys

# area -> the areas it may include (its own is always allowed). Keep in step with docs/architecture.md.
ALLOWED = {
    # What differs between builds (LibTorch versions, optional libraries): below everything, includes nothing.
    "compat": set(),
    "config": set(),
    "quant": set(),
    "proc": set(),
    "plot": set(),
    "run": {"plot"},
    "nn": {"quant"},
    "data": set(),
    "distributed": {"proc"},
    "models": {"nn", "quant"},
    "analysis": {"models", "nn", "quant", "plot"},
    # train takes Options, never a Config: experiment/ is the one bridge from config.
    "train": {"run", "plot", "distributed", "proc", "analysis", "data", "models", "nn", "quant"},
    "experiment": {"train", "run", "plot", "distributed", "proc", "analysis", "data", "models", "nn", "quant", "config"},
    "sweep": {"experiment", "train", "run", "plot", "distributed", "proc", "analysis", "data", "models", "nn", "quant", "config"},
    "deploy": {"experiment", "train", "run", "plot", "distributed", "proc", "analysis", "data", "models", "nn", "quant", "config"},
    "commands": {"deploy", "sweep", "experiment", "train", "run", "plot", "distributed", "proc", "analysis", "data", "models", "nn",
                 "quant", "config"},
    "apps": {"commands", "deploy", "sweep", "experiment", "train", "run", "plot", "distributed", "proc", "analysis", "data",
             "models", "nn", "quant", "config"},
}
for area in ALLOWED:
    if area != "compat":
        ALLOWED[area].add("compat")  # every area may include compat
include = re.compile(r'^\s*#\s*include\s*[<"]pdeq/(\w+)/')
bad, checked = [], 0
for top, strip in (("include/pdeq", 2), ("src", 1), ("apps", 0)):
    for folder, _, files in os.walk(top):
        parts = folder.split("/")
        if len(parts) <= strip and top != "apps":
            continue
        area = "apps" if top == "apps" else parts[strip]
        if area not in ALLOWED:
            bad.append(f"{folder}: area '{area}' is not in the layer table of scripts/check_layers.sh")
            continue
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith((".h", ".cpp", ".cuh", ".cu")):
                continue
            checked += 1
            for number, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
                m = include.match(line)
                if m and m.group(1) != area and m.group(1) not in ALLOWED[area]:
                    bad.append(f"{path}:{number}: {area} may not include {m.group(1)} ({line.strip()})")
for line in bad:
    print(line)
print(f"check_layers: {checked} files, {len(bad)} include(s) against the layering")
sys.exit(1 if bad else 0)
PY
