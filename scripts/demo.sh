#!/usr/bin/env bash
# demo.sh - the first-run tour that `make demo` gives.
#
# There is no internet access here, so no real DeepSeek-R1 weights can be downloaded: the demo
# builds a small random-weight model with the DeepSeek-R1-Distill-Qwen architecture (its output
# is noise, but every code path is the real one), inspects it, and measures it.
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory -s seek build/bench/make_synth
dir=${SEEK_DEMO_DIR:-$(mktemp -d)}
[ -n "${SEEK_DEMO_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
model="$dir/r1-mini-q4_k_m.gguf"
echo "== making a small random-weight qwen2 (DeepSeek-R1-Distill-Qwen layout) model in Q4_K_M"
build/bench/make_synth --arch qwen2 --preset mini --type Q4_K_M "$model"
echo
echo "== seek show $model"
./seek show "$model" | head -n 40
echo
echo "== seek bench $model"
./seek bench "$model" -p 64 -n 32
