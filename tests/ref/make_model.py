"""
make_model.py - small random-weight qwen2 / llama models, written both as an HF checkpoint
(config.json + model.safetensors, transformers' names and conventions) and as GGUF files laid out
the way llama.cpp's convert_hf_to_gguf.py does it, for the numpy-reference tests.

Variants (all dim 256 so that every K-quant fits the rows; shapes of the first two match the
llama.cpp-made fixtures in shared/fixtures/gguf so quantization mixes can be compared by name):
  qwen2       4 heads / 2 KV heads, head_dim 64, FFN 768, Q/K/V biases, NEOX RoPE theta 1e6, untied
  llama       4 heads / 1 KV head (GQA 4), FFN 512, theta 5e5, Llama-3.1 rope scaling, untied
  llama-tied  8 heads / 2 KV heads, head_dim 32, FFN 384 (ffn_down rows are not a multiple of 256:
              exercises the K-quant fallback), Llama-3.2-style scaling factor 32, tied output

What the converter does and this file repeats: tensor names token_embd / blk.N.attn_q ... / output;
llama's q_proj and k_proj rows permuted so RoPE pairs become adjacent (see permute_qk); Llama-3
scaling stored as rope_freqs.weight (per-pair frequency divisors, float32); 1-D tensors stay F32 in
F16/BF16 files; no output.weight when embeddings are tied.

Usage: /usr/bin/python3 tests/ref/make_model.py OUTDIR [variant ...]
"""

import json
import math
import os
import sys

import numpy as np

import gguf_py as G
import quant_np

VARIANTS = {
    "qwen2": dict(arch="qwen2", dim=256, n_layer=2, n_head=4, n_kv_head=2, n_ff=768, vocab=1000,
                  eps=1e-6, theta=1e6, bias=True, tied=False, rope_scaling=None, seed=11),
    "llama": dict(arch="llama", dim=256, n_layer=2, n_head=4, n_kv_head=1, n_ff=512, vocab=1000,
                  eps=1e-5, theta=5e5, bias=False, tied=False, seed=12,
                  rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                    high_freq_factor=4.0, original_max_position_embeddings=8192)),
    "llama-tied": dict(arch="llama", dim=256, n_layer=2, n_head=8, n_kv_head=2, n_ff=384, vocab=1100,
                       eps=1e-5, theta=5e5, bias=False, tied=True, seed=13,
                       rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                         high_freq_factor=4.0, original_max_position_embeddings=8192)),
}

# Standard deviations of the random weights, chosen so that the logits look like a trained small
# model's (std ~1.3, softmax neither one-hot nor uniform) and attention is neither flat nor
# one-hot; see check_logits_sane.
STD = dict(embd=0.5, q=0.08, k=0.08, v=0.06, o=0.05, bias=0.3, gate=0.06, up=0.06, down=0.04, out=0.08)


# ---------------------------------------------------------------------------------------------
# Random HF-convention weights

def make_hf_weights(spec):
    """-> dict HF name -> float32 array, drawn from a fixed seed."""
    rng = np.random.default_rng(spec["seed"])
    D, F, V = spec["dim"], spec["n_ff"], spec["vocab"]
    hd = D // spec["n_head"]
    Dq, Dkv = spec["n_head"] * hd, spec["n_kv_head"] * hd

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm_weight():
        return rng.uniform(0.7, 1.3, D).astype(np.float32)

    w = {"model.embed_tokens.weight": normal((V, D), STD["embd"])}
    for il in range(spec["n_layer"]):
        p = "model.layers.%d." % il
        w[p + "input_layernorm.weight"] = norm_weight()
        w[p + "self_attn.q_proj.weight"] = normal((Dq, D), STD["q"])
        w[p + "self_attn.k_proj.weight"] = normal((Dkv, D), STD["k"])
        w[p + "self_attn.v_proj.weight"] = normal((Dkv, D), STD["v"])
        if spec["bias"]:
            w[p + "self_attn.q_proj.bias"] = normal((Dq,), STD["bias"])
            w[p + "self_attn.k_proj.bias"] = normal((Dkv,), STD["bias"])
            w[p + "self_attn.v_proj.bias"] = normal((Dkv,), STD["bias"])
        w[p + "self_attn.o_proj.weight"] = normal((D, Dq), STD["o"])
        w[p + "post_attention_layernorm.weight"] = norm_weight()
        w[p + "mlp.gate_proj.weight"] = normal((F, D), STD["gate"])
        w[p + "mlp.up_proj.weight"] = normal((F, D), STD["up"])
        w[p + "mlp.down_proj.weight"] = normal((D, F), STD["down"])
    w["model.norm.weight"] = norm_weight()
    if spec["tied"]:
        # a tied model's embedding doubles as the output matrix: give it the output's scale
        w["model.embed_tokens.weight"] = normal((V, D), STD["out"])
    else:
        w["lm_head.weight"] = normal((V, D), STD["out"])
    return w


def hf_config(spec):
    hd = spec["dim"] // spec["n_head"]
    bos, eos = special_ids(spec)
    c = {
        "architectures": ["Qwen2ForCausalLM" if spec["arch"] == "qwen2" else "LlamaForCausalLM"],
        "model_type": spec["arch"],
        "hidden_size": spec["dim"],
        "intermediate_size": spec["n_ff"],
        "num_hidden_layers": spec["n_layer"],
        "num_attention_heads": spec["n_head"],
        "num_key_value_heads": spec["n_kv_head"],
        "head_dim": hd,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": spec["eps"],
        "rope_theta": spec["theta"],
        "rope_scaling": spec["rope_scaling"],
        "tie_word_embeddings": spec["tied"],
        "vocab_size": spec["vocab"],
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }
    if spec["arch"] == "llama":
        c.update(attention_bias=False, mlp_bias=False)
    else:
        c.update(use_sliding_window=False, sliding_window=4096, max_window_layers=spec["n_layer"])
    return c


def write_hf(spec, weights, out_dir, dtype="F32", shards=1):
    """config.json and model.safetensors; with shards > 1 the tensors (sorted by name) are split
    into model-0000i-of-0000n.safetensors files listed by model.safetensors.index.json, as
    transformers' save_pretrained does for large models."""
    os.makedirs(out_dir, exist_ok=True)
    config = hf_config(spec)
    config["torch_dtype"] = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
    if shards <= 1:
        G.write_safetensors(os.path.join(out_dir, "model.safetensors"), weights, dtype)
        return
    names = sorted(weights)
    weight_map = {}
    for i in range(shards):
        part = names[i * len(names) // shards:(i + 1) * len(names) // shards]
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        G.write_safetensors(os.path.join(out_dir, fn), {n: weights[n] for n in part}, dtype)
        weight_map.update((n, fn) for n in part)
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, fh, indent=2)


# ---------------------------------------------------------------------------------------------
# HF -> GGUF conversion (llama.cpp converter conventions)

def permute_qk(w, n_head):
    """The converter's reordering of llama q_proj / k_proj rows: within each head, HF rows
    [0 .. hd/2) and [hd/2 .. hd) (the rotate_half halves) are interleaved so that GGUF rows 2i and
    2i+1 are HF rows i and i + hd/2.  Applies to weights (rows, cols) and biases (rows,)."""
    rows = w.shape[0]
    hd = rows // n_head
    return (w.reshape(n_head, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def llama3_rope_freqs(spec):
    """rope_freqs.weight as the converter computes it (float32): per RoPE pair, the divisor of its
    frequency: 1 for short wavelengths, `factor` for long ones, interpolated in between."""
    rs = spec["rope_scaling"]
    hd = spec["dim"] // spec["n_head"]
    freqs = 1.0 / (np.float32(spec["theta"]) ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))
    factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for f in freqs.astype(np.float64):
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


_GGUF_NAMES = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
]


def gguf_tensors(spec, hf):
    """-> list of (GGUF name, float32 array) in the converter's order."""
    out = []
    if spec["arch"] == "llama" and spec["rope_scaling"]:
        out.append(("rope_freqs.weight", llama3_rope_freqs(spec)))
    out.append(("token_embd.weight", hf["model.embed_tokens.weight"]))
    for il in range(spec["n_layer"]):
        for hf_suffix, gg_suffix in _GGUF_NAMES:
            name = "model.layers.%d.%s" % (il, hf_suffix)
            if name not in hf:
                continue
            a = hf[name]
            if spec["arch"] == "llama" and hf_suffix.startswith("self_attn.q_proj"):
                a = permute_qk(a, spec["n_head"])
            elif spec["arch"] == "llama" and hf_suffix.startswith("self_attn.k_proj"):
                a = permute_qk(a, spec["n_kv_head"])
            out.append(("blk.%d.%s" % (il, gg_suffix), a))
    out.append(("output_norm.weight", hf["model.norm.weight"]))
    if not spec["tied"]:
        out.append(("output.weight", hf["lm_head.weight"]))
    return out


# ---------------------------------------------------------------------------------------------
# Tokenizer metadata: a byte-level BPE vocabulary shaped like a real one

def _byte_chars():
    """GPT-2's byte -> printable unicode character map, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def special_tokens(spec):
    if spec["arch"] == "qwen2":
        return ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    return ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]


def special_ids(spec):
    """(bos, eos) token ids: the specials are the last three tokens of the vocabulary."""
    base = spec["vocab"] - 3
    if spec["arch"] == "qwen2":
        return base + 0, base + 0          # <|endoftext|> serves as both, as in Qwen2
    return base + 0, base + 1


def make_vocab(spec):
    """-> (tokens, token_types, merges): 256 byte tokens, merged tokens built from lowercase
    letters and 'Ġ' (space) so every merge joins two existing tokens, then 3 control tokens."""
    rng = np.random.default_rng(spec["seed"] + 1000)
    tokens = _byte_chars()
    letters = [c for c in "etaoinshrdlucmfwypvbgkqjxz"] + ["Ġ"]
    pool = list(letters)
    have, merges = set(tokens), []
    n_normal = spec["vocab"] - 3
    while len(tokens) < n_normal:
        a, b = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
        if len(a) + len(b) > 8 or (a + b) in have:
            continue
        tokens.append(a + b)
        have.add(a + b)
        pool.append(a + b)
        merges.append(a + " " + b)
    types = [1] * len(tokens) + [3] * 3               # 1 NORMAL, 3 CONTROL
    return tokens + special_tokens(spec), types, merges


CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def add_metadata(wr, spec, name, file_type):
    arch = spec["arch"]
    hd = spec["dim"] // spec["n_head"]
    wr.add_str("general.architecture", arch)
    wr.add_str("general.type", "model")
    wr.add_str("general.name", name)
    wr.add_u32(arch + ".block_count", spec["n_layer"])
    wr.add_u32(arch + ".context_length", 4096)
    wr.add_u32(arch + ".embedding_length", spec["dim"])
    wr.add_u32(arch + ".feed_forward_length", spec["n_ff"])
    wr.add_u32(arch + ".attention.head_count", spec["n_head"])
    wr.add_u32(arch + ".attention.head_count_kv", spec["n_kv_head"])
    wr.add_f32(arch + ".rope.freq_base", spec["theta"])
    wr.add_f32(arch + ".attention.layer_norm_rms_epsilon", spec["eps"])
    wr.add_u32(arch + ".rope.dimension_count", hd)
    if arch == "llama":
        wr.add_u32(arch + ".vocab_size", spec["vocab"])
    wr.add_u32("general.file_type", file_type)
    tokens, types, merges = make_vocab(spec)
    bos, eos = special_ids(spec)
    wr.add_str("tokenizer.ggml.model", "gpt2")
    wr.add_str("tokenizer.ggml.pre", "qwen2" if arch == "qwen2" else "llama-bpe")
    wr.add_array("tokenizer.ggml.tokens", G.VT_STRING, tokens)
    wr.add_array("tokenizer.ggml.token_type", G.VT_INT32, types)
    wr.add_array("tokenizer.ggml.merges", G.VT_STRING, merges)
    wr.add_u32("tokenizer.ggml.bos_token_id", bos)
    wr.add_u32("tokenizer.ggml.eos_token_id", eos)
    wr.add_u32("tokenizer.ggml.padding_token_id", eos)
    wr.add_bool("tokenizer.ggml.add_bos_token", arch == "llama")
    wr.add_str("tokenizer.chat_template", CHAT_TEMPLATE)


# general.file_type values (llama_ftype) for the files written here
FILE_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
             "Q3_K": 12, "Q4_K": 15, "Q5_K": 17, "Q6_K": 18, "IQ4_NL": 25, "BF16": 32}


def write_gguf(spec, hf, path, wtype="F32", name=None):
    """Writes the GGUF file; every 2-D weight stored as `wtype` (F32, F16, BF16, or a quant type
    encoded by quant_np's round-to-nearest; rows that do not fit a K-type block fall back to
    Q8_0), 1-D tensors as F32.  Returns {GGUF name: float32 array the file dequantizes to}."""
    wr = G.GGUFWriter()
    add_metadata(wr, spec, name or os.path.basename(path), FILE_TYPE[wtype])
    if wtype not in ("F32", "F16", "BF16"):
        wr.add_u32("general.quantization_version", 2)
    stored = {}
    for gname, a in gguf_tensors(spec, hf):
        if a.ndim == 1 or wtype == "F32":
            wr.add_tensor(gname, a, "F32")
            stored[gname] = a.astype(np.float32)
        elif wtype in ("F16", "BF16"):
            wr.add_tensor(gname, a, wtype)
            stored[gname] = G.round_f16(a) if wtype == "F16" else G.round_bf16(a)
        else:
            t = wtype if a.shape[1] % G.type_block(wtype)[0] == 0 else "Q8_0"
            raw, expected = quant_np.quantize(a, t)
            wr.add_tensor_raw(gname, t, tuple(reversed(a.shape)), raw)
            stored[gname] = expected
    wr.write(path)
    return stored


def build(out_dir, variant, hf_bf16=True, gguf_types=("F32", "F16", "BF16")):
    """Writes OUT/VARIANT-hf/ (F32 checkpoint), OUT/VARIANT-hf-bf16/, OUT/VARIANT-TYPE.gguf.
    Returns the paths as a dict."""
    spec = VARIANTS[variant]
    hf = make_hf_weights(spec)
    paths = {"hf": os.path.join(out_dir, variant + "-hf")}
    write_hf(spec, hf, paths["hf"], "F32")
    if hf_bf16:
        paths["hf-bf16"] = os.path.join(out_dir, variant + "-hf-bf16")
        write_hf(spec, hf, paths["hf-bf16"], "BF16")
    for t in gguf_types:
        paths[t] = os.path.join(out_dir, "%s-%s.gguf" % (variant, t))
        write_gguf(spec, hf, paths[t], t, "%s-%s" % (variant, t))
    return paths


def test_tokens(spec, n=32, seed=5):
    """A fixed token sequence: BOS, then random ordinary tokens."""
    rng = np.random.default_rng(seed)
    bos, _ = special_ids(spec)
    return [bos] + [int(t) for t in rng.integers(0, spec["vocab"] - 3, n - 1)]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    for v in sys.argv[2:] or list(VARIANTS):
        for k, p in build(sys.argv[1], v).items():
            print(v, k, p)
