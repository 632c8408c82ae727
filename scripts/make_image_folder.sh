#!/usr/bin/env bash
# A synthetic ImageNet-style folder of 256-px JPEGs for `pdeq bench data` and smoke runs (data are generated,
# never committed): root/{train,val}/class_NNN/img_NNNNN.jpg. Compiles scripts/tools/make_image_folder.cpp
# against OpenCV into build/ first.
#   scripts/make_image_folder.sh ROOT [CLASSES=10] [TRAIN_PER_CLASS=100] [VAL_PER_CLASS=10] [SIZE=256]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: scripts/make_image_folder.sh ROOT [CLASSES] [TRAIN_PER_CLASS] [VAL_PER_CLASS] [SIZE]}
tool=build/make_image_folder
mkdir -p build
if [[ ! -x $tool || scripts/tools/make_image_folder.cpp -nt $tool ]]; then
  c++ -O2 -std=c++17 scripts/tools/make_image_folder.cpp -o "$tool" \
    $(pkg-config --cflags opencv4) -lopencv_imgcodecs -lopencv_imgproc -lopencv_core
fi
"$tool" "$root" "${2:-10}" "${3:-100}" "${4:-10}" "${5:-256}"
echo "$root: $(find "$root" -name '*.jpg' | wc -l) JPEGs, $(du -sh "$root" | cut -f1)"
