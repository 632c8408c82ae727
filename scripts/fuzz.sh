#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, -fsanitize=fuzzer,address,undefined, in build-fuzz/) and
# runs them.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh config 300      # one target (config idx cifar run_dir planetoid checkpoint image_folder int_format sweep), 300 s
#   scripts/fuzz.sh config 3600 1000000   # at most 3600 s, stopping after 10^6 inputs
#   FUZZ_JOBS=2 scripts/fuzz.sh checkpoint 2400   # two fuzzer processes sharing one corpus (one per core)
#   FUZZ_ARGS="-len_control=0" scripts/fuzz.sh image_folder 900   # extra libFuzzer flags (here: long inputs
#                                                                 # from the start instead of growing slowly)
#
# ASAN_OPTIONS from the environment reach the targets: for the targets dominated by ASan's allocator
# bookkeeping (checkpoint), ASAN_OPTIONS=malloc_context_size=0:quarantine_size_mb=16 about doubles the inputs
# per second; errors are still caught, with shorter allocation stacks in the reports.
#
# The seed corpus of each target is tests/fuzz/corpus/<target> (checked in); what the fuzzer adds goes to
# build-fuzz/corpus/<target>. Crashes, leaks and timeouts land in build-fuzz/artifacts/ and make the script
# fail; a reproducer becomes a regression test of the ordinary suite. Runs at nice 10 (a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(config idx cifar run_dir planetoid checkpoint image_folder int_format sweep)
which=${1:-all}
seconds=${2:-60}
max_runs=${3:--1}  # libFuzzer's -runs (per job): -1 = until the time is up
jobs=${FUZZ_JOBS:-1}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_JOBS must be a positive integer, got '$jobs'" >&2; exit 2; }
if [[ "$which" != all ]]; then
  [[ " ${targets[*]} " == *" $which "* ]] || { echo "fuzz.sh: unknown target '$which' (${targets[*]})" >&2; exit 2; }
  targets=("$which")
fi

bash scripts/setup.sh --fuzz
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: needs clang and libFuzzer (Debian: apt-get install clang libfuzzer-14-dev)" >&2
  exit 1
fi
if [[ ! -f build-fuzz/build.ninja ]]; then
  cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
nice -n 10 cmake --build build-fuzz -j"${BUILD_JOBS:-2}" --target "${targets[@]/%/_fuzz}"

mkdir -p build-fuzz/artifacts
# The targets that read files write each input to a scratch folder under TMPDIR (image_folder: four files and
# four folders per input); in memory (/dev/shm) rather than on disk, unless TMPDIR is set.
if [[ -z "${TMPDIR:-}" && -d /dev/shm && -w /dev/shm ]]; then
  export TMPDIR=/dev/shm
fi
status=0
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$t
  if [[ "$t" == checkpoint || "$t" == image_folder || "$t" == int_format ]]; then
    # Seeds that need LibTorch or OpenCV to write (a valid checkpoint or .pdeqint file, encoded images): made
    # by the target itself.
    seeds=build-fuzz/seeds/$t
    mkdir -p "$seeds"
    PDEQ_FUZZ_SEED_DIR="$seeds" "build-fuzz/${t}_fuzz"
  fi
  logs=()
  pids=()
  for ((job = 1; job <= jobs; job++)); do
    log=build-fuzz/$t.log
    ((jobs == 1)) || log=build-fuzz/$t.$job.log
    logs+=("$log")
    echo "fuzz.sh: $t for ${seconds}s (log: $log)" >&2
    # -rss_limit_mb: LibTorch's allocator plus ASan's shadow; -timeout: a hang is a defect too; -reload: the
    # jobs pick up each other's new corpus entries.
    OMP_NUM_THREADS=1 nice -n 10 "build-fuzz/${t}_fuzz" "$corpus" "$seeds" -dict=tests/fuzz/pdeq.dict \
      -max_total_time="$seconds" -runs="$max_runs" -timeout=10 -rss_limit_mb=4096 -reload=60 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" ${FUZZ_ARGS:-} >"$log" 2>&1 &
    pids+=($!)
  done
  for k in "${!pids[@]}"; do
    if ! wait "${pids[$k]}"; then
      status=1
      echo "fuzz.sh: $t FOUND A DEFECT: see ${logs[$k]} and build-fuzz/artifacts/$t-*" >&2
    fi
  done
  runs=$(grep -h 'stat::number_of_executed_units' "${logs[@]}" | awk '{s += $2} END {print s + 0}')
  echo "fuzz.sh: $t: $runs inputs" >&2
done
exit $status
