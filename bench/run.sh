#!/usr/bin/env bash
# run.sh - `make bench`: kernel speeds against measured bandwidth, then the end-to-end pp/tg table
# on a synthetic DeepSeek-R1-Distill-Qwen-1.5B-shaped model (random weights, made once and kept in
# bench/.models; about 1.1 GB for Q4_K_M).  Set SEEK_BENCH_TYPES to choose quantizations.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${SEEK_BENCH_THREADS:-$(nproc)}
echo "== kernels ($threads threads)"
build/bench/bench_kernels -t "$threads"
mkdir -p bench/.models
for type in ${SEEK_BENCH_TYPES:-Q4_K_M}; do
    model=bench/.models/qwen2-1.5b-$type.gguf
    [ -f "$model" ] || build/bench/make_synth --arch qwen2 --preset 1.5b --type "$type" "$model"
    echo
    echo "== seek bench $model (pp512, tg128, $threads threads)"
    ./seek bench "$model" -p 512 -n 128 -t "$threads"
done
