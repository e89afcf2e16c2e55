#!/usr/bin/env bash
# run.sh - `make bench`: kernel speeds against measured bandwidth, then the end-to-end table (tg
# and its fraction of the bandwidth bound, pp128, pp512, TTFT of a 1k prompt, RSS) on synthetic
# DeepSeek-R1-Distill-Qwen-1.5B-shaped models (random weights, made once and kept in bench/.models:
# Q4_K_M 1.1 GB, Q6_K 1.5 GB, Q8_0 1.9 GB, F16 3.6 GB).  SEEK_BENCH_TYPES chooses quantizations.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${SEEK_BENCH_THREADS:-$(nproc)}
echo "== kernels ($threads threads)"
build/bench/bench_kernels -t "$threads"
mkdir -p bench/.models
models=()
for type in ${SEEK_BENCH_TYPES:-Q4_K_M Q6_K Q8_0 F16}; do
    model=bench/.models/synth-1.5b-$type.gguf
    [ -f "$model" ] || build/bench/make_synth --arch qwen2 --preset 1.5b --type "$type" "$model"
    models+=("$model")
done
echo
echo "== end to end ($threads threads)"
/usr/bin/python3 bench/perf_table.py --seek build/seek "${models[@]}"
