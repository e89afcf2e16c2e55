#!/usr/bin/python3
"""
test_sample.py - seek's sampler chain (src/sample/sample.c) against an independent numpy reference.

ref_chain() below is the chain of sample.h written from its description, in numpy: penalties in
float32 (the same IEEE operations as the C code, so penalized logits and the order match bit for bit),
the order "logit descending, ties to the lower id", scaled logits s = (l - max) / T in float32,
probability 0 below s = -80, then weights e^s, top_p, min_p and normalization in float64.

Checks:
  probs   ~600 random cases (logits with ties, huge ranges, -inf and NaN entries; random
          temperature, top_k, top_p, min_p, penalties and histories; vocabularies from 1 to 152064,
          so both the sorted and the bucketed top_p paths run) through `tool_sample probs`: the kept
          ids and their order must equal the reference's exactly, each probability within 1e-5
          relative.  Cases where top_p or min_p falls within 1e-5 of a cut (where float32 vs float64
          rounding may legitimately decide either way) are redrawn, so the comparison is exact.
  draw    20000 draws with a fixed seed through `tool_sample draw` for five distributions (small,
          top_k, min_p, and two 20000-token vocabularies on the bucketed path, one with a nucleus of
          ~16k tokens): no token outside the kept set, chi-square of the counts in up to 50 groups of
          equal expected mass below its 1e-4 upper quantile, and each token's frequency within 5
          standard deviations of its probability.

Environment: SEEK_TOOL_SAMPLE (default build/tests/tool_sample).
Last line: "test_sample_py: N passed, M failed".
"""

import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
from harness import REPO, Reporter  # noqa: E402

F32 = np.float32
FLT_MAX = np.finfo(np.float32).max
AMBIG = 1e-5


class Ambiguous(Exception):
    """A cut lies within rounding of top_p or min_p: the case is redrawn."""


def window_of(hist, n, last_n):
    """The tokens the penalties see: valid ids only (others are ignored by sample_accept), the last
    last_n of them (-1: 4096; capped at 65536)."""
    valid = [t for t in hist if 0 <= t < n]
    if last_n == 0:
        return []
    w = 4096 if last_n < 0 else min(last_n, 65536)
    return valid[-w:]


def ref_chain(c):
    """(ids, probs) of the distribution sample_probs describes, ids in the chain's order."""
    n = c["n"]
    l = c["logits"].astype(np.float32).copy()
    rp, pp, fp = F32(c["repeat"]), F32(c["presence"]), F32(c["frequency"])
    if rp != 1 or pp != 0 or fp != 0:
        for t, cnt in Counter(window_of(c["hist"], n, c["last_n"])).items():
            x = l[t]
            x = F32(x / rp) if x > 0 else F32(x * rp)
            x = F32(x - F32(fp * F32(cnt)))
            x = F32(x - pp)
            l[t] = x
    l[np.isnan(l)] = -np.inf
    l[l == np.inf] = FLT_MAX
    m = l.max()
    temp = F32(c["temp"])
    if not temp > 0 or m == -np.inf:
        return np.array([int(np.argmax(l))]), np.array([1.0])
    ids = np.arange(n)
    order = np.lexsort((ids, -l.astype(np.float64)))  # logit descending, then id ascending
    k = c["top_k"]
    if 0 < k < n:
        order = order[:k]
    with np.errstate(over="ignore"):  # huge logit ranges over tiny temperatures: -inf, probability 0
        s = ((l[order] - m) / temp).astype(np.float32)
    live = s >= F32(-80)
    order, s = order[live], s[live]
    w = np.exp(s.astype(np.float64))
    top_p = float(F32(c["top_p"]))
    if top_p < 1:
        cum = np.cumsum(w) / w.sum()
        cut = int(np.argmax(cum >= top_p)) if (cum >= top_p).any() else len(w) - 1
        if abs(cum[cut] - top_p) < AMBIG or (cut > 0 and abs(cum[cut - 1] - top_p) < AMBIG):
            raise Ambiguous()
        order, w = order[: cut + 1], w[: cut + 1]
    min_p = float(F32(c["min_p"]))
    if min_p > 0:
        if (np.abs(w - min_p) < AMBIG * min_p).any():
            raise Ambiguous()
        keep = w >= min_p
        order, w = order[keep], w[keep]
    return order, w / w.sum()


# ---- random cases ----------------------------------------------------------------------------------


def rand_logits(rng, n):
    kind = rng.integers(6)
    if kind == 0:  # gaussian, LLM-like spread
        l = rng.normal(0, rng.uniform(0.1, 8), n)
    elif kind == 1:  # coarse grid: many exact ties
        l = rng.integers(-5, 6, n).astype(np.float64)
    elif kind == 2:  # huge range
        l = rng.uniform(-1e4, 1e4, n)
    elif kind == 3:  # a few strong tokens over a flat body
        l = rng.normal(0, 1, n)
        hot = rng.integers(0, n, max(1, n // 50))
        l[hot] += rng.uniform(5, 15, len(hot))
    elif kind == 4:  # near-uniform: large nuclei
        l = rng.normal(0, 0.05, n)
    else:  # half ties on a fine grid
        l = np.round(rng.normal(0, 2, n) * 4) / 4
    l = l.astype(np.float32)
    if n > 2 and rng.random() < 0.3:
        l[rng.integers(0, n, max(1, n // 10))] = -np.inf
    if n > 2 and rng.random() < 0.1:
        l[rng.integers(0, n, 2)] = np.nan
    if n > 2 and rng.random() < 0.03:
        l[rng.integers(0, n)] = np.inf
    return l


def rand_params(rng, n):
    c = {"n": n}
    c["temp"] = float(F32(0.0 if rng.random() < 0.08 else rng.choice([rng.uniform(0.05, 3), 1.0, 0.6])))
    r = rng.random()
    c["top_k"] = int(0 if r < 0.4 else 1 if r < 0.45 else rng.integers(1, n + 5) if r < 0.85 else
                     rng.integers(513, 3000))
    c["top_p"] = float(F32(1.0 if rng.random() < 0.3 else rng.uniform(0, 1)))
    c["min_p"] = float(F32(0.0 if rng.random() < 0.6 else rng.uniform(0, 0.5)))
    pen = rng.random() < 0.6
    c["repeat"] = float(F32(rng.uniform(0.7, 1.8) if pen else 1.0))
    c["presence"] = float(F32(rng.uniform(-0.5, 1.5) if pen and rng.random() < 0.5 else 0.0))
    c["frequency"] = float(F32(rng.uniform(-0.3, 1.0) if pen and rng.random() < 0.5 else 0.0))
    c["last_n"] = int(rng.choice([0, -1, 1, 4, 64, 200]))
    nh = int(rng.integers(0, 300))
    hot = rng.integers(-1, n + 1, max(1, min(n, 20)))  # a small set repeats; -1 and n are ignored
    c["hist"] = [int(t) for t in rng.choice(hot, nh)] if nh else []
    c["seed"] = int(rng.integers(0, 2**63))
    return c


def fmt(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x.hex()


def encode(c):
    head = [str(c["n"]), fmt(c["temp"]), str(c["top_k"]), fmt(c["top_p"]), fmt(c["min_p"]), fmt(c["repeat"]),
            str(c["last_n"]), fmt(c["presence"]), fmt(c["frequency"]), str(c["seed"])]
    hist = [str(len(c["hist"]))] + [str(t) for t in c["hist"]]
    return " ".join(head) + "\n" + " ".join(hist) + "\n" + " ".join(fmt(v) for v in c["logits"]) + "\n"


def tool_path():
    p = os.environ.get("SEEK_TOOL_SAMPLE") or os.path.join(REPO, "build", "tests", "tool_sample")
    return p if os.path.exists(p) else None


def run_tool(args, text):
    r = subprocess.run([tool_path()] + args, input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("tool_sample %s failed: %s" % (" ".join(args), r.stderr.decode()[-500:]))
    return r.stdout.decode().split("\n")


def make_cases(rng, count):
    sizes = [1, 2, 3, 7, 40, 100, 513, 1000, 3000, 20000]
    cases = []
    while len(cases) < count:
        n = int(rng.choice(sizes)) if len(cases) >= 4 else 152064  # a few full-size vocabularies
        c = rand_params(rng, n)
        c["logits"] = rand_logits(rng, n)
        for _ in range(20):  # redraw cuts that sit within rounding of a boundary
            try:
                c["ref"] = ref_chain(c)
                break
            except Ambiguous:
                c["top_p"] = float(F32(rng.uniform(0, 1)))
                c["min_p"] = float(F32(rng.uniform(0, 0.5) if c["min_p"] else 0.0))
        if "ref" in c:
            cases.append(c)
    return cases


def check_probs(rep, cases):
    out = run_tool(["probs"], "%d\n" % len(cases) + "".join(encode(c) for c in cases))
    pos, bad_ids, bad_p, worst = 0, 0, 0, 0.0
    for i, c in enumerate(cases):
        k = int(out[pos])
        rows = [line.split() for line in out[pos + 1: pos + 1 + k]]
        pos += 1 + k
        ids = np.array([int(r[0]) for r in rows])
        probs = np.array([float(r[1]) for r in rows])
        want_ids, want_p = c["ref"]
        if len(ids) != len(want_ids) or (ids != want_ids).any():
            bad_ids += 1
            if bad_ids <= 3:
                print("  case %d (n %d T %g k %d p %g minp %g): kept %d want %d; first ids %s want %s" %
                      (i, c["n"], c["temp"], c["top_k"], c["top_p"], c["min_p"], len(ids), len(want_ids),
                       ids[:8].tolist(), want_ids[:8].tolist()))
            continue
        err = np.abs(probs - want_p) / (want_p + 1e-38 / 1e-5)
        worst = max(worst, float(err.max()))
        if (err > 1e-5).any():
            bad_p += 1
            if bad_p <= 3:
                j = int(np.argmax(err))
                print("  case %d: token %d p %.9g want %.9g" % (i, ids[j], probs[j], want_p[j]))
    rep.check(bad_ids == 0, "probs.kept_sets", "%d cases, %d with a different kept set or order" %
              (len(cases), bad_ids))
    rep.check(bad_p == 0, "probs.values", "max relative error %.2e (bound 1e-5), %d cases over" %
              (worst, bad_p))


def chi2_quantile(df, z=3.719):
    """Upper 1e-4 quantile of chi-square(df), Wilson-Hilferty."""
    a = 2.0 / (9.0 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3


def check_draws(rep, rng):
    n_draws = 20000
    specs = [
        dict(n=50, temp=1.0, top_k=0, top_p=1.0, min_p=0.0, scale=1.0),
        dict(n=200, temp=0.7, top_k=40, top_p=0.9, min_p=0.0, scale=2.0),
        dict(n=3000, temp=1.3, top_k=0, top_p=0.8, min_p=0.02, scale=1.0),
        dict(n=20000, temp=0.6, top_k=0, top_p=0.95, min_p=0.0, scale=2.5),
        dict(n=20000, temp=1.0, top_k=0, top_p=0.9, min_p=0.0, scale=0.0),  # nucleus of ~16k tokens
    ]
    for j, sp in enumerate(specs):
        n = sp["n"]
        c = dict(n=n, temp=sp["temp"], top_k=sp["top_k"], top_p=sp["top_p"], min_p=sp["min_p"],
                 repeat=float(F32(1.2)), presence=float(F32(0.1)), frequency=0.0, last_n=64,
                 seed=1000 + j)
        l = rng.normal(0, sp["scale"] or 1.0, n).astype(np.float32)
        if n > 1000 and sp["scale"]:  # a handful of plausible tokens over the long tail
            l[rng.integers(0, n, 30)] = rng.uniform(4, 8, 30).astype(np.float32) * sp["scale"]
        c["logits"] = l
        c["hist"] = [int(t) for t in np.argsort(-l)[:5]] * 2
        ref = None
        for _ in range(20):  # nudge top_p off a cut that sits within rounding (large nuclei)
            try:
                ref = ref_chain(c)
                break
            except Ambiguous:
                c["top_p"] = float(F32(c["top_p"] + rng.uniform(-1e-3, 1e-3)))
        if ref is None:
            rep.fail("draw.%d" % j, "every nudged top_p is ambiguous")
            continue
        ids, p = ref
        counts = {}
        for line in run_tool(["draw", str(n_draws)], encode(c)):
            if line.strip():
                t, k = line.split()
                counts[int(t)] = int(k)
        kept = set(ids.tolist())
        outside = sum(k for t, k in counts.items() if t not in kept)
        obs = np.array([counts.get(int(t), 0) for t in ids], dtype=np.float64)
        # chi-square over at most 50 groups of consecutive tokens (in probability order) of about
        # equal expected mass; a token heavier than a group is a group of its own
        groups = np.minimum(49, np.floor((np.cumsum(p) - p / 2) * 50).astype(np.int64))
        o = np.bincount(groups, weights=obs)
        e = np.bincount(groups, weights=p) * n_draws
        o, e = o[e > 0], e[e > 0]
        chi2 = float((((o - e) ** 2) / np.maximum(e, 1e-12)).sum())
        df = max(1, len(o) - 1)
        sd = np.sqrt(p * (1 - p) / n_draws)
        dev = float((np.abs(obs / n_draws - p) / (sd + 1.0 / n_draws)).max())
        detail = "n %d kept %d: chi2 %.1f (df %d, 1e-4 quantile %.1f), max dev %.2f sd, %d outside" % (
            n, len(ids), chi2, df, chi2_quantile(df), dev, outside)
        rep.check(outside == 0 and chi2 < chi2_quantile(df) and dev < 5, "draw.%d" % j, detail)


def main():
    rep = Reporter("test_sample_py")
    if not tool_path():
        rep.fail("tool", "tool_sample not found (set SEEK_TOOL_SAMPLE or build build/tests/tool_sample)")
        rep.finish()
    rng = np.random.default_rng(20240611)
    check_probs(rep, make_cases(rng, 600))
    check_draws(rep, rng)
    rep.finish()


if __name__ == "__main__":
    main()
