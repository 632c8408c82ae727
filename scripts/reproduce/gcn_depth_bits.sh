#!/usr/bin/env bash
# The paper's graph finding: the symmetric (diffusive) PDE-GCN keeps its accuracy at low activation bits and
# depth where the non-symmetric one loses it. Runs two sweeps on Cora, symmetric vs non-symmetric x activation
# bits {32, 8, 4, 2} x depth, and `pdeq report` on each (accuracy vs bits, one line per model and depth):
#   - the authors' placement (configs/cora_pdegcn_authors_a4.json: x and e quantized, mid-rise, a = 6.0, the
#     optimiser groups and h of their Cora driver), as their final network code runs it;
#   - pdeq's tuned placement (configs/cora_pdegcn_sym_a4.json: G x and e quantized, a = 0.1).
# Writes docs/results/graphs/depth_bits_<scale>/{authors,pdeq}/.
#
#   scripts/reproduce/gcn_depth_bits.sh [--scale cpu|paper] [--out DIR]
#
# --scale cpu (default): 300 epochs, depths 8 / 16, one seed (configs/sweeps/cora_pdegcn_paper_cpu.json,
#   cora_pdegcn_tuned_cpu.json); about 40 minutes of one core per sweep. paper: 1,000 epochs (authors) / 300
#   (pdeq), depths 8 / 16 / 32 / 64, 5 / 10 seeds (cora_pdegcn_paper.json, cora_pdegcn_tuned.json).
source "$(dirname "$0")/common.sh"
parse_common_args "$@"
out=${out:-runs/reproduce/cora_$scale}
results=docs/results/graphs/depth_bits_$scale
build_cli
if [[ $scale == cpu ]]; then
  sweeps=(authors:configs/sweeps/cora_pdegcn_paper_cpu.json pdeq:configs/sweeps/cora_pdegcn_tuned_cpu.json)
else
  sweeps=(authors:configs/sweeps/cora_pdegcn_paper.json pdeq:configs/sweeps/cora_pdegcn_tuned.json)
fi
status=0
for entry in "${sweeps[@]}"; do
  name=${entry%%:*}
  file=${entry#*:}
  build/pdeq sweep --config "$file" --out "$out/$name" --jobs "$(nproc)" || status=$?
  build/pdeq report --runs "$out/$name/*" --out "$out/$name/report" >/dev/null
  mkdir -p "$results/$name"
  cp "$out/$name/report/results.md" "$out/$name/report/results.csv" "$out/$name/report/acc_vs_bits.png" "$results/$name/"
  echo "sweep $file: $(provenance)" > "$results/$name/PROVENANCE"
done
echo "wrote $results/"
exit $status
