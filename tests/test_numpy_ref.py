#!/usr/bin/python3
"""
test_numpy_ref.py - seek's inference engine and quantizer against an independent float64 numpy
reference (tests/ref/), on small random-weight models built here.

Models (tests/ref/make_model.py): qwen2 (Q/K/V biases, NEOX RoPE), llama (GQA 4, Llama-3.1 RoPE
scaling via rope_freqs.weight), llama-tied (tied output, FFN 384 so ffn_down rows need the K-quant
fallback).  Each is written as an HF checkpoint and as converter-style GGUF files (F32/F16/BF16).

Checks, per model:
  self      the reference checks itself: numpy over the GGUF file == numpy over the HF checkpoint
            (so the converter-style Q/K permutation and rope_freqs are right), and the logits are
            neither one-hot nor uniform.
  float     `seek logits` on the F32/F16/BF16 GGUF vs the HF-path numpy logits (for F16/BF16 with
            the same rounding of the 2-D weights): max |diff| <= 1e-4 of the logit scale for F32
            (float32 accumulation alone stays near 1e-6; 1e-4 still catches an ignored rope_freqs
            or a wrong norm eps, which move logits by 0.5%), 1e-3 for F16/BF16 (room for an
            engine that rounds activations to F16 for F16 weights, as llama.cpp does).
  quantize  `seek quantize F32.gguf out.gguf MIX` for every mix; read back with tests/ref's own
            reader: (a) each tensor's type is what llama.cpp's rules give (expected_types() below;
            llama-like mixes are also compared with what llama.cpp itself produced for the
            same tensor names and row lengths in the fixtures' Q4_K_M/Q6_K/Q8_0 files);
            (b) each quantized matrix is as close to the F32 original as plain round-to-nearest of
            that type, within 30% (catches a layout seek writes differently from how it is read);
            (c) `seek logits` on the file vs numpy over the file's dequantized weights, softmax KL.
  rtn       files quantized by tests/ref/quant_np.py (not by seek) for each block type: `seek
            logits` vs numpy over those exact weights, softmax KL.  Checks seek's loader and kernels
            on data seek did not produce.

KL bounds (nats, per position, KL(numpy || seek)): llama.cpp reaches mean 5e-4..1.3e-3 and max
1.1e-3..2.9e-3 on the fixtures because it quantizes activations to 8 bits inside quantized
matmuls (Q8_0 / Q8_1 / Q8_K).  That error depends on the activations, not on the weight type, and
the models here have the fixtures' logit scale (std ~1.3), so one bound serves every type:
mean < 2e-3, max < 6e-3 (about twice llama.cpp's worst).

Environment: SEEK_BIN (default ./seek).  Last line: "test_numpy_ref: N passed, M failed".
"""

import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))

import gguf_py as G  # noqa: E402
import make_model as MK  # noqa: E402
import model_np as M  # noqa: E402
import quant_np as Q  # noqa: E402
from harness import Reporter, SeekError, fixtures_dir, seek_bin, seek_logits, seek_quantize  # noqa: E402

VARIANTS = ("qwen2", "llama", "llama-tied")

# `seek quantize` TYPE names tested.  Names that are llama.cpp file types (llama-quantize's names)
# follow llama.cpp's per-tensor rules: e.g. its Q4_0 keeps output.weight in Q6_K, its Q2_K puts
# attn_v/attn_output/ffn_down in Q3_K/Q4_K.  Q3_K, Q4_K, Q5_K are not llama.cpp file types: they
# mean "every weight matrix in that type".  F16 / BF16 convert every matrix.
LLAMA_MIXES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K")
PURE_MIXES = ("Q3_K", "Q4_K", "Q5_K", "F16", "BF16")
MIX_BASE = {"Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
            "Q2_K": "Q2_K", "Q3_K": "Q3_K", "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q4_K": "Q4_K",
            "Q5_K_M": "Q5_K", "Q5_K": "Q5_K", "Q6_K": "Q6_K", "F16": "F16", "BF16": "BF16"}

# Block types written by quant_np for the seek-independent files (IQ4_NL is left out: seek need
# not support it).
RTN_TYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

KL_MEAN_MAX, KL_MAX_MAX = 2e-3, 6e-3
FLOAT_REL_TOL = {"F32": 1e-4, "F16": 1e-3, "BF16": 1e-3}   # max |seek - numpy| / max |numpy|
QUALITY_MARGIN = 1.3          # quantization error allowed relative to round-to-nearest's
N_TOKENS = 32


# ---------------------------------------------------------------------------------------------
# llama.cpp's choice of tensor types (llama_tensor_get_type, non-IQ file types, dense llama/qwen2
# models that are not 70B), re-stated from its rules.

def _use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


# K-type -> the legacy type llama.cpp uses when the row length is not a multiple of 256.  For
# Q2_K/Q3_K llama.cpp picks IQ4_NL; a plain Q4_0 is accepted instead (same size, linear grid).
_FALLBACK = {"Q2_K": ("IQ4_NL", "Q4_0"), "Q3_K": ("IQ4_NL", "Q4_0"), "Q4_K": ("Q5_0",),
             "Q5_K": ("Q5_1",), "Q6_K": ("Q8_0",)}


def expected_types(mix, name, ne, n_layer, n_gqa, has_output):
    """Acceptable GGUF types (tuple) for tensor `name` (GGUF ne) in a file quantized as `mix`."""
    if len(ne) < 2 or not name.endswith(".weight") or name.endswith("_norm.weight"):
        return ("F32",)
    base = MIX_BASE[mix]
    t = base
    if mix in LLAMA_MIXES:
        il = int(name.split(".")[1]) if name.startswith("blk.") else 0
        if name == "output.weight" or (not has_output and name == "token_embd.weight"):
            if ne[0] % G.type_block(base)[0]:
                return ("Q8_0",)
            return (base,) if base == "Q8_0" else ("Q6_K",)
        if "attn_v.weight" in name:
            if mix == "Q2_K":
                t = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif mix in ("Q4_K_M", "Q5_K_M") and _use_more_bits(il, n_layer):
                t = "Q6_K"
            elif mix == "Q4_K_S" and il < 4:
                t = "Q5_K"
        elif "ffn_down" in name:
            if mix == "Q2_K":
                t = "Q3_K"
            elif mix in ("Q4_K_M", "Q5_K_M") and _use_more_bits(il, n_layer):
                t = "Q6_K"
            elif mix == "Q4_K_S" and il < n_layer // 8:
                t = "Q5_K"
        elif "attn_output.weight" in name:
            if mix == "Q2_K":
                t = "Q3_K"
    if ne[0] % G.type_block(t)[0] == 0:
        return (t,)
    fb = tuple(f if ne[0] % G.type_block(f)[0] == 0 else "F16" for f in _FALLBACK.get(t, ()))
    return fb or ("F16",)


def fixture_type_patterns():
    """{llama.cpp mix: {(tensor name, ne0): type}} from the llama.cpp-made fixture files."""
    d = fixtures_dir()
    pats = {}
    if not os.path.isdir(d):
        return pats
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".gguf") or "-" not in fn:
            continue
        mix = fn[:-5].rsplit("-", 1)[1]
        f = G.GGUFFile(os.path.join(d, fn))
        pat = pats.setdefault((mix, f.arch()), {})
        for name, t in f.tensors.items():
            pat[(name, t.ne[0])] = t.type_name
    return pats


# ---------------------------------------------------------------------------------------------
# helpers

def kl_stats(ref, test):
    if not np.isfinite(test).all():
        return np.inf, np.inf
    kl = M.kl_per_position(ref, test)
    return float(kl.mean()), float(kl.max())


def kl_check(rep, name, ref, test, extra=""):
    mean, mx = kl_stats(ref, test)
    top1 = float(np.mean(ref.argmax(-1) == test.argmax(-1)))
    rep.check(mean < KL_MEAN_MAX and mx < KL_MAX_MAX, name,
              "kl_mean=%.3g (<%g) kl_max=%.3g (<%g) top1=%.3f%s" % (mean, KL_MEAN_MAX, mx, KL_MAX_MAX, top1, extra))


def float_check(rep, name, ref, test, wtype):
    tol = FLOAT_REL_TOL[wtype]
    scale = float(np.abs(ref).max())
    diff = float(np.abs(test - ref).max()) if np.isfinite(test).all() else np.inf
    mean, mx = kl_stats(ref, test)
    rep.check(diff <= tol * scale, name,
              "max_abs_diff=%.3g (%.2g of scale %.3g, tol %g) kl_max=%.2g" % (diff, diff / scale, scale, tol, mx))


def run_seek(rep, name, model, tokens, out, vocab, env=None):
    try:
        return seek_logits(model, tokens, out, vocab, env=env).astype(np.float64)
    except SeekError as e:
        rep.fail(name, str(e))
        return None


# ---------------------------------------------------------------------------------------------
# checks that need no seek

def check_gguf_roundtrip(rep, tmp):
    """Every metadata value type and a few tensor types survive write -> read unchanged."""
    path = os.path.join(tmp, "roundtrip.gguf")
    w = G.GGUFWriter()
    values = [("u8", G.VT_UINT8, 200), ("i8", G.VT_INT8, -100), ("u16", G.VT_UINT16, 60000),
              ("i16", G.VT_INT16, -30000), ("u32", G.VT_UINT32, 4000000000), ("i32", G.VT_INT32, -2000000000),
              ("u64", G.VT_UINT64, 2 ** 63 + 5), ("i64", G.VT_INT64, -(2 ** 62)), ("f32", G.VT_FLOAT32, 0.5),
              ("f64", G.VT_FLOAT64, 1.0 / 3), ("bool", G.VT_BOOL, True), ("str", G.VT_STRING, "héllo ▁ <｜User｜>"),
              ("arr.i32", G.VT_ARRAY, (G.VT_INT32, [1, -2, 3])),
              ("arr.str", G.VT_ARRAY, (G.VT_STRING, ["a", "", "Ġb c"])),
              ("arr.f32", G.VT_ARRAY, (G.VT_FLOAT32, [0.25, -1.5])),
              ("arr.empty", G.VT_ARRAY, (G.VT_STRING, [])),
              ("arr.nested", G.VT_ARRAY, (G.VT_ARRAY, [(G.VT_UINT8, [1, 2]), (G.VT_STRING, ["x"])]))]
    for k, t, v in values:
        w.add(k, t, v)
    rng = np.random.default_rng(1)
    a32 = rng.standard_normal((3, 64)).astype(np.float32)
    a16 = rng.standard_normal((5, 32)).astype(np.float16)
    q8, q8_expected = Q.quantize(rng.standard_normal((2, 64)), "Q8_0")
    w.add_tensor("a32", a32)
    w.add_tensor("a16", a16)
    w.add_tensor("abf16", a32, "BF16")
    w.add_tensor_raw("q8", "Q8_0", (64, 2), q8)
    w.write(path)
    f = G.GGUFFile(path)
    ok = True
    for k, t, v in values:
        got = f.kv[k]
        if t == G.VT_ARRAY and v[0] == G.VT_ARRAY:
            v = [list(x[1]) for x in v[1]]
        elif t == G.VT_ARRAY:
            v = list(v[1])
        if t == G.VT_FLOAT32:
            v = float(np.float32(v))
        ok &= got == v
        ok &= f.kv_type[k] == t or f.kv_type[k] == (G.VT_ARRAY, dict((x[0], x[2]) for x in values)[k][0])
    ok &= list(f.tensors) == ["a32", "a16", "abf16", "q8"]
    ok &= all(t.offset % 32 == 0 for t in f.tensors.values())
    ok &= np.array_equal(f.numpy("a32"), a32) and np.array_equal(f.numpy("a16"), a16.astype(np.float32))
    ok &= np.array_equal(f.numpy("abf16"), G.round_bf16(a32)) and np.array_equal(f.numpy("q8"), q8_expected)
    ok &= f.tensors["q8"].shape == (2, 64) and f.tensors["q8"].ne == (64, 2)
    rep.check(ok, "self gguf writer/reader round trip", "%d keys, %d tensors" % (len(f.kv), len(f.tensors)))


def check_quant_packing(rep):
    """quant_np's packing and gguf_py's unpacking agree bit for bit, and round-to-nearest is as
    accurate as each type's bit width implies (relative RMS error on Gaussian data)."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((16, 512)) * 0.05).astype(np.float32)
    x[1, :256] = 0                      # an all-zero super-block must not produce NaN
    x[2, 5] = 3.0                       # an outlier
    # loose: they catch gross errors only (the exact check is the bit-exact comparison)
    bound = {"Q8_0": 0.02, "Q6_K": 0.05, "Q5_0": 0.08, "Q5_1": 0.08, "Q5_K": 0.08, "Q4_0": 0.15,
             "Q4_1": 0.15, "Q4_K": 0.15, "IQ4_NL": 0.15, "Q3_K": 0.3, "Q2_K": 0.5}
    for t in Q.QUANT_TYPES:
        raw, expected = Q.quantize(x, t)
        deq = G.dequantize(raw, t, x.size).reshape(x.shape)
        err = Q.roundtrip_error(x, t)
        rep.check(np.array_equal(deq, expected) and np.isfinite(deq).all() and err < bound[t],
                  "self quant packing %s" % t, "bit-exact=%s rel_rms_err=%.4f (<%g)" % (np.array_equal(deq, expected), err, bound[t]))


def check_reference_paths(rep, variant, paths, tokens, vocab):
    """numpy over GGUF == numpy over HF; logits look like a model's."""
    hf = M.logits_hf(paths["hf"], tokens)
    for t in ("F32", "F16", "BF16"):
        gg = M.logits_gguf(paths[t], tokens)
        ref = hf if t == "F32" else M.logits_hf(paths["hf"], tokens, t)
        diff = float(np.abs(gg - ref).max())
        rep.check(diff < 1e-6 * np.abs(ref).max(), "%s self numpy GGUF-path == HF-path (%s)" % (variant, t),
                  "max_abs_diff=%.3g" % diff)
    # the BF16 checkpoint reads back as the F32 one rounded to bfloat16
    a = G.read_safetensors(os.path.join(paths["hf"], "model.safetensors"))
    b = G.read_safetensors(os.path.join(paths["hf-bf16"], "model.safetensors"))
    rep.check(a.keys() == b.keys() and all(np.array_equal(G.round_bf16(a[k]), b[k]) for k in a),
              "%s self safetensors BF16 read back" % variant)
    p = M.softmax(hf)
    ent = float(np.mean(-(p * np.log(p)).sum(-1)) / np.log(vocab))
    pmax = float(p.max())
    rep.check(0.3 < ent < 0.97 and pmax < 0.5, "%s self logits non-degenerate" % variant,
              "entropy=%.2f of uniform, max_p=%.3f, logit_std=%.2f" % (ent, pmax, hf.std()))
    return hf


# ---------------------------------------------------------------------------------------------
# checks against seek

def check_types(rep, variant, mix, f, spec, fixture_pats):
    has_output = "output.weight" in f.tensors
    n_gqa = spec["n_head"] // spec["n_kv_head"]
    bad, fixture_bad, n_fix = [], [], 0
    pat = fixture_pats.get((mix, spec["arch"]), {})
    for name, t in f.tensors.items():
        want = expected_types(mix, name, t.ne, spec["n_layer"], n_gqa, has_output)
        if t.type_name not in want:
            bad.append("%s=%s (want %s)" % (name, t.type_name, "/".join(want)))
        # a tied model's token_embd doubles as output: the fixtures (untied) say nothing about it
        if (name, t.ne[0]) in pat and (has_output or name != "token_embd.weight"):
            n_fix += 1
            if pat[(name, t.ne[0])] != t.type_name:
                fixture_bad.append("%s=%s (llama.cpp %s)" % (name, t.type_name, pat[(name, t.ne[0])]))
    counts = {}
    for t in f.tensors.values():
        counts[t.type_name] = counts.get(t.type_name, 0) + 1
    summary = " ".join("%s:%d" % kv for kv in sorted(counts.items()))
    rep.check(not bad, "%s quantize %s tensor types" % (variant, mix), summary + ("  " + "; ".join(bad[:4]) if bad else ""))
    if n_fix:
        rep.check(not fixture_bad, "%s quantize %s types match llama.cpp's fixture" % (variant, mix),
                  "%d tensors compared%s" % (n_fix, ("  " + "; ".join(fixture_bad[:4])) if fixture_bad else ""))


def check_quality(rep, variant, mix, f, orig):
    """Each matrix: error vs the F32 original within QUALITY_MARGIN of round-to-nearest's; 1-D
    tensors unchanged."""
    worst, worst_name, bad = 0.0, "", []
    for name, t in f.tensors.items():
        a = orig[name]
        deq = t.numpy()
        if deq.shape != a.shape:
            bad.append("%s shape %s != %s" % (name, deq.shape, a.shape))
            continue
        if t.type_name == "F32":
            if not np.array_equal(deq, a):
                bad.append("%s F32 changed" % name)
            continue
        err = float(np.linalg.norm(deq - a) / np.linalg.norm(a))
        if t.type_name in ("F16", "BF16"):
            ref_deq = G.round_f16(a) if t.type_name == "F16" else G.round_bf16(a)
            ref_err = float(np.linalg.norm(ref_deq - a) / np.linalg.norm(a))
        else:
            ref_err = Q.roundtrip_error(a, t.type_name)
        ratio = err / ref_err if ref_err > 0 else (0.0 if err == 0 else np.inf)
        if ratio > worst:
            worst, worst_name = ratio, "%s(%s err=%.4f rtn=%.4f)" % (name, t.type_name, err, ref_err)
        if not (ratio <= QUALITY_MARGIN):
            bad.append("%s %s err=%.4f rtn=%.4f" % (name, t.type_name, err, ref_err))
    rep.check(not bad, "%s quantize %s weights vs F32" % (variant, mix),
              "worst error/round-to-nearest=%.2f (<=%g) %s%s" % (worst, QUALITY_MARGIN, worst_name,
                                                               ("  " + "; ".join(bad[:3])) if bad else ""))


def run_variant(rep, variant, tmp, have_seek, fixture_pats):
    spec = MK.VARIANTS[variant]
    vocab = spec["vocab"]
    tokens = MK.test_tokens(spec, N_TOKENS)
    paths = MK.build(tmp, variant)
    hf_logits = check_reference_paths(rep, variant, paths, tokens, vocab)
    if not have_seek:
        return
    out = os.path.join(tmp, "logits.f32")

    # float files vs the HF-path numpy logits.  F32 weights run with an f32 KV cache and the tight
    # tolerance (the arithmetic of the forward pass); F16/BF16 weights with the default f16 cache,
    # and the reference rounds K and V to f16 as that cache stores them (a value near a rounding
    # boundary may round the other way in seek's float32: an f16 ulp, inside their 1e-3).
    for t in ("F32", "F16", "BF16"):
        name = "%s float %s seek vs numpy-HF" % (variant, t)
        env = dict(os.environ, SEEK_KV_CACHE_TYPE="f32") if t == "F32" else None
        s = run_seek(rep, name, paths[t], tokens, out, vocab, env)
        if s is not None:
            ref = hf_logits if t == "F32" else M.logits_hf(paths["hf"], tokens, t, M.seek_kv_round())
            float_check(rep, name, ref, s, t)

    # seek quantize
    orig = {n: t.numpy() for n, t in G.GGUFFile(paths["F32"]).tensors.items()}
    qpath = os.path.join(tmp, "%s-q.gguf" % variant)
    for mix in LLAMA_MIXES + PURE_MIXES:
        try:
            if os.path.exists(qpath):
                os.remove(qpath)
            seek_quantize(paths["F32"], qpath, mix)
            f = G.GGUFFile(qpath)
        except (SeekError, ValueError) as e:
            rep.fail("%s quantize %s" % (variant, mix), str(e))
            continue
        check_types(rep, variant, mix, f, spec, fixture_pats)
        try:
            check_quality(rep, variant, mix, f, orig)
            ref = M.logits_gguf(f, tokens)
        except (ValueError, KeyError) as e:
            rep.fail("%s quantize %s numpy" % (variant, mix), "cannot evaluate file: %s" % e)
            continue
        name = "%s quantize %s seek vs numpy" % (variant, mix)
        s = run_seek(rep, name, qpath, tokens, out, vocab)
        if s is None:
            continue
        if mix in ("F16", "BF16"):
            float_check(rep, name, ref, s, mix)
        else:
            kl_check(rep, name, ref, s, " (kl of the mix vs F32: %.3g)" % kl_stats(hf_logits, ref)[0])

    # files quantized here, not by seek
    hf = MK.make_hf_weights(spec)
    rpath = os.path.join(tmp, "%s-rtn.gguf" % variant)
    for t in RTN_TYPES:
        stored = MK.write_gguf(spec, hf, rpath, t)
        w = {k[:-len(".weight")] if k.endswith(".weight") else k: v.astype(np.float64) for k, v in stored.items()}
        cfg, _ = M.load_gguf(rpath)
        w.pop("rope_freqs", None)
        ref = M.forward(cfg, w, tokens)
        name = "%s rtn %s seek vs numpy" % (variant, t)
        s = run_seek(rep, name, rpath, tokens, out, vocab)
        if s is not None:
            kl_check(rep, name, ref, s)


def main():
    rep = Reporter("test_numpy_ref")
    tmp = tempfile.mkdtemp(prefix="seek-numpy-ref-")
    try:
        check_gguf_roundtrip(rep, tmp)
        check_quant_packing(rep)
        have_seek = seek_bin() is not None
        if not have_seek:
            rep.fail("seek-binary", "not found (./seek, build/seek or $SEEK_BIN); seek checks skipped as failures")
        pats = fixture_type_patterns()
        for variant in VARIANTS:
            run_variant(rep, variant, tmp, have_seek, pats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep.finish()


if __name__ == "__main__":
    main()
