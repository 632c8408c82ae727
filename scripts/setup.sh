#!/usr/bin/env bash
# Installs pdeq's build and runtime dependencies from Debian packages. Idempotent: quiet and quick when
# everything is present. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libopencv-dev zlib1g-dev
  libopenblas0-pthread dataset-fashion-mnist
  libonnx-dev libprotobuf-dev  # pdeq export --format onnx (optional: without them that format is refused)
)
# scripts/fuzz.sh also needs clang and libfuzzer-14-dev; `scripts/setup.sh --fuzz` installs them.
if [[ "${1:-}" == --fuzz ]]; then packages+=(clang libfuzzer-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "pdeq setup: installing ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "pdeq setup: apt-get not found; install these Debian packages by hand: ${missing[*]}" >&2
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "pdeq setup: not root and no passwordless sudo; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "pdeq setup: done" >&2
