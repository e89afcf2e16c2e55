"""
model_np.py - float64 numpy forward pass of the qwen2 and llama architectures, the independent
reference that seek's C inference engine is checked against.

Two ways in, deliberately computed separately:
  * from a GGUF file (any type gguf_py can dequantize): llama.cpp's conventions.  qwen2 uses NEOX
    RoPE (dimension i rotates with i + n_rot/2); llama's Q/K rows were permuted by the converter so
    that RoPE pairs are adjacent (2i, 2i+1), and an optional rope_freqs.weight divides each pair's
    frequency (how the converter stores Llama-3.1 scaling).
  * from an HF checkpoint (config.json + model.safetensors): transformers' conventions.  q_proj and
    k_proj are un-permuted and both architectures use rotate_half (NEOX) RoPE; Llama-3 scaling is
    applied to inv_freq from config.json's rope_scaling.
Agreement between the two paths checks the GGUF permutation and rope_freqs handling.

What it is not: fast, or a KV-cached generator.  It evaluates all positions of one sequence at once
with a causal mask, which is all a logits comparison needs.

Glossary: T tokens, D model dim, H query heads, Hkv key/value heads, Dh head dim, F FFN dim, V vocab.
"""

import json
import math
import os

import numpy as np

from gguf_py import GGUFFile, read_safetensors, round_bf16, round_f16


class Config:
    """Hyper-parameters.  rope_style 'norm' rotates pairs (2i, 2i+1), 'neox' pairs (i, i + n_rot/2);
    inv_freq (n_rot/2,) is the per-pair angular frequency, angle = position * inv_freq[i]."""

    def __init__(self, arch, n_layer, dim, n_head, n_kv_head, head_dim, n_ff, vocab, eps,
                 n_rot, rope_style, inv_freq):
        self.arch, self.n_layer, self.dim = arch, n_layer, dim
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, head_dim
        self.n_ff, self.vocab, self.eps = n_ff, vocab, eps
        self.n_rot, self.rope_style = n_rot, rope_style
        self.inv_freq = np.asarray(inv_freq, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Building blocks

def rms_norm(x, w, eps):
    """x / sqrt(mean(x^2) + eps) * w, per row."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def apply_rope(x, cfg):
    """x (T, heads, Dh) -> rotated copy.  Pair (a, b) at position p rotates by p * inv_freq[i]:
    a' = a cos - b sin, b' = a sin + b cos.  Dimensions >= n_rot pass through."""
    T = x.shape[0]
    n_rot = cfg.n_rot
    ang = np.arange(T, dtype=np.float64)[:, None] * cfg.inv_freq[None, :]   # (T, n_rot/2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = x.copy()
    if cfg.rope_style == "norm":
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    elif cfg.rope_style == "neox":
        half = n_rot // 2
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    else:
        raise ValueError("unknown rope style " + cfg.rope_style)
    return out


def attention(q, k, v, cfg):
    """Causal GQA.  q (T, H, Dh), k/v (T, Hkv, Dh) -> (T, H*Dh); query head h reads kv head
    h // (H / Hkv); scores scaled by 1/sqrt(Dh), softmax over positions <= the query's."""
    T = q.shape[0]
    group = cfg.n_head // cfg.n_kv_head
    kk = np.repeat(k, group, axis=1)                       # (T, H, Dh)
    vv = np.repeat(v, group, axis=1)
    scores = np.einsum("thd,shd->hts", q, kk) / math.sqrt(cfg.head_dim)   # (H, T, T)
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)
    scores[:, mask] = -np.inf
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = np.einsum("hts,shd->thd", p, vv)
    return out.reshape(T, cfg.n_head * cfg.head_dim)


def silu(x):
    return x / (1.0 + np.exp(-x))


def round_q8_0(x):
    """x rounded as a Q8_0 KV cache stores it: blocks of 32 along the last axis (which must be a
    multiple of 32), d = max|x| / 127 kept as float16, q = round-half-away(x / d) with the unrounded
    d (ggml's quantize_row_q8_0), value = q * float16(d)."""
    b = x.reshape(-1, 32)
    d = np.abs(b).max(axis=1, keepdims=True) / 127.0
    d32 = d.astype(np.float32)
    inv = np.where(d32 > 0, 1.0 / np.where(d32 > 0, d32, 1), 0).astype(np.float32)
    t = (b.astype(np.float32) * inv).astype(np.float64)
    q = np.sign(t) * np.floor(np.abs(t) + 0.5)
    return (q * d32.astype(np.float16).astype(np.float64)).reshape(x.shape)


def round_f16(x):
    """x rounded as an F16 KV cache stores it (round to nearest even)."""
    return x.astype(np.float32).astype(np.float16).astype(np.float64)


def seek_kv_round(env=None):
    """The KV rounding seek applies under $SEEK_KV_CACHE_TYPE (f16 when unset, as seek's default),
    for comparing seek's logits with the exact forward pass of the same cache type."""
    kv = (env if env is not None else os.environ).get("SEEK_KV_CACHE_TYPE", "") or "f16"
    return {"f16": round_f16, "q8_0": round_q8_0, "f32": None}[kv.lower()]


def forward(cfg, w, tokens, kv_round=None):
    """Logits (T, V) float64 for every position.  w: dict of float64 arrays with GGUF-style names
    (token_embd, output_norm, output, blk.N.attn_q, ...; biases optional), matrices (out, in).
    kv_round: applied to every K (after RoPE) and V as a KV cache would store them."""
    out = w["output"] if "output" in w else w["token_embd"]
    return hidden_states(cfg, w, tokens, kv_round) @ out.T


def hidden_states(cfg, w, tokens, kv_round=None):
    """Final hidden states (T, D) float64: RMSNorm(x) * output_norm after the last layer, the
    output matrix's input (what embeddings are pooled from)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    x = w["token_embd"][tokens].astype(np.float64)        # (T, D)
    T = x.shape[0]
    for il in range(cfg.n_layer):
        p = "blk.%d." % il
        h = rms_norm(x, w[p + "attn_norm"], cfg.eps)
        q = h @ w[p + "attn_q"].T
        k = h @ w[p + "attn_k"].T
        v = h @ w[p + "attn_v"].T
        if p + "attn_q.bias" in w:
            q = q + w[p + "attn_q.bias"]
        if p + "attn_k.bias" in w:
            k = k + w[p + "attn_k.bias"]
        if p + "attn_v.bias" in w:
            v = v + w[p + "attn_v.bias"]
        q = apply_rope(q.reshape(T, cfg.n_head, cfg.head_dim), cfg)
        k = apply_rope(k.reshape(T, cfg.n_kv_head, cfg.head_dim), cfg)
        v = v.reshape(T, cfg.n_kv_head, cfg.head_dim)
        if kv_round is not None:
            k, v = kv_round(k), kv_round(v)
        x = x + attention(q, k, v, cfg) @ w[p + "attn_output"].T
        h = rms_norm(x, w[p + "ffn_norm"], cfg.eps)
        x = x + (silu(h @ w[p + "ffn_gate"].T) * (h @ w[p + "ffn_up"].T)) @ w[p + "ffn_down"].T
    return rms_norm(x, w["output_norm"], cfg.eps)


def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def kl_per_position(ref_logits, test_logits):
    """KL(softmax(ref) || softmax(test)) in nats, per row, float64."""
    a = np.asarray(ref_logits, np.float64)
    b = np.asarray(test_logits, np.float64)
    la = a - a.max(axis=-1, keepdims=True)
    la -= np.log(np.exp(la).sum(axis=-1, keepdims=True))
    lb = b - b.max(axis=-1, keepdims=True)
    lb -= np.log(np.exp(lb).sum(axis=-1, keepdims=True))
    return np.sum(np.exp(la) * (la - lb), axis=-1)


# ---------------------------------------------------------------------------------------------
# GGUF path

def load_gguf(path_or_file):
    """-> (Config, weights) from a GGUF file, every tensor dequantized to float64."""
    f = path_or_file if isinstance(path_or_file, GGUFFile) else GGUFFile(path_or_file)
    arch = f.arch()
    if arch not in ("qwen2", "llama"):
        raise ValueError("unsupported architecture " + arch)
    kv = lambda k, *d: f.get(arch + "." + k, *d)  # noqa: E731
    dim = int(kv("embedding_length"))
    n_head = int(kv("attention.head_count"))
    n_kv = int(kv("attention.head_count_kv", n_head))
    head_dim = int(kv("attention.key_length", dim // n_head))
    n_rot = int(kv("rope.dimension_count", head_dim))
    theta = float(kv("rope.freq_base", 10000.0))
    inv_freq = theta ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    w = {}
    for name, t in f.tensors.items():
        key = name[:-len(".weight")] if name.endswith(".weight") else name
        w[key] = t.numpy().astype(np.float64)
    if "rope_freqs" in w:
        inv_freq = inv_freq / w.pop("rope_freqs")
    cfg = Config(arch, int(kv("block_count")), dim, n_head, n_kv, head_dim,
                 int(kv("feed_forward_length")), w["token_embd"].shape[0],
                 float(kv("attention.layer_norm_rms_epsilon")), n_rot,
                 "neox" if arch == "qwen2" else "norm", inv_freq)
    return cfg, w


def logits_gguf(path_or_file, tokens, kv_round=None):
    cfg, w = load_gguf(path_or_file)
    return forward(cfg, w, tokens, kv_round)


def hidden_gguf(path_or_file, tokens):
    """hidden_states of a GGUF model: (T, D) float64."""
    cfg, w = load_gguf(path_or_file)
    return hidden_states(cfg, w, tokens)


# ---------------------------------------------------------------------------------------------
# HF path

def hf_inv_freq(config, head_dim):
    """transformers' inv_freq for default and 'llama3' rope_scaling."""
    theta = float(config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    rs = config.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind in (None, "default"):
        return inv_freq
    if kind != "llama3":
        raise ValueError("unsupported rope_scaling " + str(kind))
    factor = float(rs["factor"])
    low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
    old_ctx = float(rs["original_max_position_embeddings"])
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths are slowed by `factor`, short ones kept, the band between interpolated
    scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(medium, smoothed, scaled)


_HF_NAMES = {
    "input_layernorm.weight": "attn_norm",
    "self_attn.q_proj.weight": "attn_q", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output",
    "post_attention_layernorm.weight": "ffn_norm",
    "mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down",
}


def read_hf_tensors(model_dir):
    """-> dict name -> float32 array of a checkpoint directory: model.safetensors, or the shards
    model.safetensors.index.json lists, or else every *.safetensors file."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as fh:
            files = sorted(set(json.load(fh)["weight_map"].values()))
    elif os.path.exists(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    out = {}
    for fn in files:
        out.update(read_safetensors(os.path.join(model_dir, fn)))
    return out


def load_hf(model_dir, weight_round=None):
    """-> (Config, weights) from config.json + model.safetensors.  weight_round None, 'F16' or
    'BF16' rounds every 2-D matrix the way a GGUF F16/BF16 conversion stores it (1-D norms and
    biases stay F32, as the converter keeps them)."""
    with open(os.path.join(model_dir, "config.json")) as fh:
        config = json.load(fh)
    st = read_hf_tensors(model_dir)
    arch = config["model_type"]
    dim = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads", n_head))
    head_dim = int(config.get("head_dim") or dim // n_head)
    rounder = {None: None, "F16": round_f16, "BF16": round_bf16}[weight_round]
    w = {}
    for name, a in st.items():
        if rounder is not None and a.ndim == 2:
            a = rounder(a)
        a = a.astype(np.float64)
        if name == "model.embed_tokens.weight":
            w["token_embd"] = a
        elif name == "model.norm.weight":
            w["output_norm"] = a
        elif name == "lm_head.weight":
            w["output"] = a
        elif name.endswith("rotary_emb.inv_freq"):
            continue                     # a buffer some checkpoints carry; recomputed from config
        elif name.startswith("model.layers."):
            il, rest = name[len("model.layers."):].split(".", 1)
            w["blk.%s.%s" % (il, _HF_NAMES[rest])] = a
        else:
            raise ValueError("unexpected HF tensor " + name)
    if config.get("tie_word_embeddings", False):
        w.pop("output", None)
    cfg = Config(arch, int(config["num_hidden_layers"]), dim, n_head, n_kv, head_dim,
                 int(config["intermediate_size"]), int(config["vocab_size"]),
                 float(config["rms_norm_eps"]), head_dim, "neox", hf_inv_freq(config, head_dim))
    return cfg, w


def logits_hf(model_dir, tokens, weight_round=None, kv_round=None):
    cfg, w = load_hf(model_dir, weight_round)
    return forward(cfg, w, tokens, kv_round)
