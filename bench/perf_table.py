"""perf_table.py - the end-to-end table of docs/performance.md: for each model, decode (tg) speed
and its fraction of the memory-bandwidth bound, prompt speed at 128 and 512 tokens, time to the
first token of a 1024-token prompt, and resident memory, all from `seek bench --json`.

    /usr/bin/python3 bench/perf_table.py [--seek BIN] [--label TEXT] MODEL.gguf...

--seek may name an older build (for before/after rows): when its bench has no --ttft, the TTFT
column is 1024 / (pp tokens/s of one 1024-token pass) instead, marked with '*'.  Each figure is
the best of a few repetitions (bench -r); the shared machine's speed drifts, so rows taken
minutes apart differ by up to 10-20% without any change of code.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(seek, model, *args):
    out = subprocess.run([seek, "bench", model, "--json"] + [str(a) for a in args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def row(seek, model, label):
    tg = bench(seek, model, "-p", 16, "-n", 64, "-r", 3)
    pp128 = bench(seek, model, "-p", 128, "-n", 1, "-r", 2)
    pp512 = bench(seek, model, "-p", 512, "-n", 1, "-r", 1)
    try:
        t = bench(seek, model, "-p", 1, "-n", 1, "--ttft", 1024)
        ttft = "%.1f s" % (t["ttft_ms"] / 1000)
    except subprocess.CalledProcessError:  # an older bench without --ttft
        t = bench(seek, model, "-p", 1024, "-n", 1)
        ttft = "%.1f s*" % (1024 / t["pp_tps"])
    name = os.path.basename(model).replace(".gguf", "")
    return "| %s | %s | %.2f | %.0f%% (%.1f GB/s) | %.1f | %.1f | %s | %.2f GB | %s |" % (
        name, label, tg["tg_tps"], 100 * tg["tg_bw_fraction"], tg["mem_bw_gbs"], pp128["pp_tps"],
        pp512["pp_tps"], ttft, tg["rss_bytes"] / 1e9, tg.get("kv_type", "f32"))


def main():
    args = sys.argv[1:]
    seek, label, models = os.path.join(ROOT, "build", "seek"), "now", []
    i = 0
    while i < len(args):
        if args[i] == "--seek":
            seek, i = args[i + 1], i + 2
        elif args[i] == "--label":
            label, i = args[i + 1], i + 2
        else:
            models.append(args[i])
            i += 1
    print("| model | build | tg t/s | of bandwidth bound | pp128 t/s | pp512 t/s | TTFT 1k | RSS | KV |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in models:
        print(row(seek, m, label), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
