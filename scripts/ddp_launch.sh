#!/usr/bin/env bash
# Multi-node data-parallel launch: run this once on every node (by hand, ssh, or a scheduler's per-node task).
# It starts the node's ranks as `pdeq train ... --rank R --world-size W --master ADDR:PORT`, global rank
# R = node_rank * nproc_per_node + local rank, and waits for them. Node 0's local rank 0 is rank 0: it serves
# the TCPStore on ADDR:PORT and alone writes the run folder (a resume reads it on every rank, so keep --out on
# a shared filesystem to resume).
#
#   scripts/ddp_launch.sh --nodes 2 --node-rank 0 --nproc-per-node 1 --master 10.0.0.1:29500 -- \
#       --config configs/cifar10_resnet20_w4a4.json --out runs/ddp --set train.threads=8
#   (and --node-rank 1 on the second node with the same other arguments)
#
# Slurm: srun --ntasks-per-node=1 scripts/ddp_launch.sh --nodes "$SLURM_NNODES" --node-rank "$SLURM_NODEID" ...
# Ctrl-C/SIGTERM is forwarded to the node's ranks: they agree at their next step, checkpoint and exit 130. If a
# rank dies, the others fail at their next collective (exit 1); this script then stops its node's ranks too.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1 node_rank=0 per_node=1 master="" pdeq=build/pdeq timeout=120
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --node-rank) node_rank=$2; shift 2 ;;
    --nproc-per-node) per_node=$2; shift 2 ;;
    --master) master=$2; shift 2 ;;
    --pdeq) pdeq=$2; shift 2 ;;
    --dist-timeout) timeout=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "ddp_launch.sh: unknown option $1 (the pdeq train arguments go after --)" >&2; exit 2 ;;
  esac
done
if [[ -z "$master" ]]; then echo "ddp_launch.sh: --master ADDR:PORT is required" >&2; exit 2; fi
if (( node_rank < 0 || node_rank >= nodes )); then
  echo "ddp_launch.sh: --node-rank must be in [0, $nodes), got $node_rank" >&2; exit 2
fi

world=$(( nodes * per_node ))
pids=()
stop() { for p in "${pids[@]}"; do kill -s "$1" "$p" 2>/dev/null || true; done; }
trap 'stop INT' INT
trap 'stop TERM' TERM
for (( i = 0; i < per_node; ++i )); do
  rank=$(( node_rank * per_node + i ))
  # setsid: a terminal's Ctrl-C reaches this script only, which forwards it once.
  setsid "$pdeq" train "$@" --rank "$rank" --world-size "$world" --master "$master" \
    --dist-timeout "$timeout" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do
  # A forwarded signal interrupts `wait`; wait again until the rank has really ended (bash keeps its status).
  while kill -0 "$p" 2>/dev/null; do wait "$p" || true; done
  code=0
  wait "$p" || code=$?
  if (( code != 0 && status == 0 )); then
    status=$code
    # A rank that exited 130 was interrupted like the others, which are checkpointing: a second signal would
    # abort them. Any other failure: stop the node's other ranks.
    (( code != 130 )) && stop TERM
  fi
done
exit "$status"
