#!/usr/bin/env bash
# Include-what-you-use check: every library, app and test source must compile on its own, without the
# precompiled header that the normal build force-includes (<torch/torch.h> + nlohmann/json). Parses each file
# with `clang++ -fsyntax-only` and the flags of build/compile_commands.json minus the PCH ones.
#
#   scripts/check_includes.sh [regex]     # e.g. scripts/check_includes.sh 'src/train/'
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/compile_commands.json ]] || bash scripts/build.sh >/dev/null
python3 - "${1:-.}" <<'PY'
import json, re, shlex, subprocess, sys
pattern = re.compile(sys.argv[1])
failed = checked = 0
for entry in json.load(open("build/compile_commands.json")):
    source = entry["file"]
    if not pattern.search(source) or "pch" in source or "/build" in source:
        continue
    args = shlex.split(entry["command"])[1:]
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-include", "-o", "-MF", "-MT"):
            skip = True  # drops the force-included PCH header and output paths
            continue
        if a in ("-c", "-MD", "-Winvalid-pch", "-fpch-preprocess") or a.endswith(".o") or a == source:
            continue
        keep.append(a)
    checked += 1
    result = subprocess.run(["clang++", "-fsyntax-only", "-Wno-unknown-warning-option", *keep, source],
                            cwd=entry["directory"], capture_output=True, text=True)
    if result.returncode != 0:
        failed += 1
        print(f"FAIL {source}\n{result.stderr[:3000]}", flush=True)
print(f"check_includes: {checked - failed}/{checked} files compile without the precompiled header")
sys.exit(1 if failed else 0)
PY
