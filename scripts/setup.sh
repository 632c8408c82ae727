#!/usr/bin/env bash
# Installs pdeq's build and runtime dependencies from Debian packages. Idempotent: quiet and quick when
# everything is present. Needs root (or sudo) only when something is missing.
#
#   scripts/setup.sh                    # Debian packages, LibTorch 1.13 among them (the default build)
#   scripts/setup.sh --libtorch pypi    # also LibTorch 2.x: the PyPI `torch` wheel (pinned below) in a virtual
#                                       # environment .venv-libtorch/, for scripts/build.sh --libtorch pypi
#   scripts/setup.sh --fuzz             # also clang and libFuzzer for scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# The PyPI route's LibTorch: the newest torch that builds and passes the suite here (docs/libtorch.md). Its wheel
# for Linux is built with CUDA (13.x) and pulls NVIDIA's CUDA libraries as wheels (about 4 GB).
torch_version=2.15.0
libtorch=debian
fuzz=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --libtorch) libtorch=${2:?--libtorch needs debian or pypi}; shift 2 ;;
    --fuzz) fuzz=1; shift ;;
    *) echo "pdeq setup: unknown argument '$1' (expected --libtorch debian|pypi or --fuzz)" >&2; exit 2 ;;
  esac
done
if [[ "$libtorch" != debian && "$libtorch" != pypi ]]; then
  echo "pdeq setup: --libtorch $libtorch: expected debian or pypi" >&2
  exit 2
fi

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libopencv-dev zlib1g-dev
  libopenblas0-pthread dataset-fashion-mnist
  libonnx-dev libprotobuf-dev  # pdeq export --format onnx (optional: without them that format is refused)
  libdnnl-dev  # exact integer inference at int8 speed (optional: without it exact mode runs float kernels)
)
# scripts/fuzz.sh also needs clang and libfuzzer-14-dev; `scripts/setup.sh --fuzz` installs them.
if [[ $fuzz == 1 ]]; then packages+=(clang libfuzzer-14-dev); fi
if [[ $libtorch == pypi ]]; then packages+=(python3-venv); fi

pypi_libtorch() {
  local venv=.venv-libtorch
  if [[ -x $venv/bin/python ]] &&
     [[ "$($venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" == "$torch_version" ]]; then
    return
  fi
  echo "pdeq setup: installing torch==$torch_version into $venv (LibTorch for scripts/build.sh --libtorch pypi)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "torch==$torch_version"
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  if [[ $libtorch == pypi ]]; then pypi_libtorch; fi
  exit 0
fi

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
if [[ $libtorch == pypi ]]; then pypi_libtorch; fi
