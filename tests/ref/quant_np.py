"""
quant_np.py - simple numpy quantizers (round to nearest) that encode every block type gguf_py can
dequantize, bit for bit in the layouts of src/kern/quants.h.

They let the tests write quantized GGUF files without seek's own quantizer, so that seek's loader
and kernels are checked on data seek did not produce, and they give a quality yardstick: a real
quantizer (llama.cpp's, seek's) should be about as accurate as plain round-to-nearest or better.
They are not llama.cpp's quantizers (no scale search, no importance matrix).

Each encoder returns (packed, expected): packed is uint8 (n_blocks, bytes per block), expected is
the float32 value every weight should dequantize to, computed here from the unpacked integers, so
that dequantize(packed) == expected checks the packing against gguf_py's unpacking exactly.
"""

import numpy as np

from gguf_py import dequantize, type_block

_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def _f16(x):
    """float32 -> (f16-rounded float32, f16 little-endian bytes (n, 2))."""
    h = np.asarray(x, np.float32).astype("<f2")
    return h.astype(np.float32), h.reshape(-1, 1).view(np.uint8)


def _safe_inv(d):
    with np.errstate(divide="ignore"):
        return np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)


def _signed_absmax(x, axis=-1):
    """The element of largest magnitude along axis, with its sign (keepdims)."""
    idx = np.argmax(np.abs(x), axis=axis)
    return np.take_along_axis(x, np.expand_dims(idx, axis), axis=axis)


def _pack_nibbles32(q):
    """(n, 32) values 0..15 -> (n, 16): byte j = q[j] | q[j+16] << 4."""
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def _pack_bits32(bits):
    """(n, 32) of 0/1 -> (n, 4) bytes of a little-endian u32 with bit j = bits[:, j]."""
    v = (bits.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype("<u4")
    return v.reshape(-1, 1).view(np.uint8)


def _pack_crumbs256(q):
    """(n, 256) values 0..3 -> (n, 64): in each half of 128, byte l = q[l] | q[l+32] << 2 |
    q[l+64] << 4 | q[l+96] << 6."""
    n = q.shape[0]
    h = q.reshape(n, 2, 4, 32).astype(np.uint8)
    return (h[:, :, 0] | (h[:, :, 1] << 2) | (h[:, :, 2] << 4) | (h[:, :, 3] << 6)).reshape(n, 64)


def _pack_nibbles256(q):
    """(n, 256) values 0..15 -> (n, 128): chunk c of 64 weights -> 32 bytes, byte l = q[64c+l] |
    q[64c+32+l] << 4."""
    n = q.shape[0]
    c = q.reshape(n, 4, 2, 32).astype(np.uint8)
    return (c[:, :, 0] | (c[:, :, 1] << 4)).reshape(n, 128)


def _pack_k4_scales(sc, mn):
    """8 six-bit scales and mins (n, 8) -> scales[12] of Q4_K/Q5_K."""
    sc, mn = sc.astype(np.uint8), mn.astype(np.uint8)
    out = np.empty((sc.shape[0], 12), np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (mn[:, 0:4] & 63) | ((mn[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((mn[:, 4:8] & 15) << 4)
    return out


def _pack_q3_scales(v):
    """16 six-bit values (n, 16) (scale + 32) -> scales[12] of Q3_K: the low nibble of value j is
    nibble j // 8 of byte j % 8; its top two bits are bit pair j // 4 of byte 8 + j % 4."""
    v = v.astype(np.uint8)
    out = np.zeros((v.shape[0], 12), np.uint8)
    out[:, 0:8] = (v[:, 0:8] & 15) | ((v[:, 8:16] & 15) << 4)
    for j in range(16):
        out[:, 8 + j % 4] |= (v[:, j] >> 4) << (2 * (j // 4))
    return out


def _affine_subblocks(x, nmax, scale_bits):
    """Shared by Q2_K/Q4_K/Q5_K: per sub-block (rows of x (n, S, L)) min m <= 0 and scale s,
    then super-block d/dmin so that sc, mc fit `scale_bits`; returns f16-rounded d, dmin,
    integer sc, mc (n, S) and q (n, S, L) with x ~ d*sc*q - dmin*mc."""
    smax = (1 << scale_bits) - 1
    mn = np.minimum(x.min(axis=2), 0)
    s = (x.max(axis=2) - mn) / nmax
    d, d_bytes = _f16(s.max(axis=1) / smax)
    dmin, dmin_bytes = _f16((-mn).max(axis=1) / smax)
    sc = np.clip(np.rint(s * _safe_inv(d)[:, None]), 0, smax)
    mc = np.clip(np.rint(-mn * _safe_inv(dmin)[:, None]), 0, smax)
    step = (d[:, None] * sc.astype(np.float32)).astype(np.float32)
    off = (dmin[:, None] * mc.astype(np.float32)).astype(np.float32)
    q = np.clip(np.rint((x + off[:, :, None]) * _safe_inv(step)[:, :, None]), 0, nmax)
    expected = step[:, :, None] * q.astype(np.float32) - off[:, :, None]
    return d_bytes, dmin_bytes, sc.astype(np.uint8), mc.astype(np.uint8), q.astype(np.uint8), expected


def _symmetric_subblocks(x, qmin, qmax, scale_min, scale_max):
    """Shared by Q3_K/Q6_K: per sub-block scale s = signed absmax / qmin, super-block d so that the
    largest |s| maps to scale_min; returns f16 d, integer sc, q and the expected values."""
    s = _signed_absmax(x, axis=2)[:, :, 0] / qmin
    d, d_bytes = _f16(_signed_absmax(s, axis=1)[:, 0] / scale_min)
    sc = np.clip(np.rint(s * _safe_inv(d)[:, None]), scale_min, scale_max)
    step = (d[:, None] * sc.astype(np.float32)).astype(np.float32)
    q = np.clip(np.rint(x * _safe_inv(step)[:, :, None]), qmin, qmax)
    expected = step[:, :, None] * q.astype(np.float32)
    return d_bytes, sc.astype(np.int32), q.astype(np.int32), expected


def _q_q8_0(x):
    d, db = _f16(np.abs(x).max(axis=1) / 127)
    q = np.clip(np.rint(x * _safe_inv(np.abs(x).max(axis=1) / 127)[:, None]), -127, 127).astype(np.int8)
    return np.concatenate([db, q.view(np.uint8)], axis=1), q.astype(np.float32) * d[:, None]


def _q_q4_0(x):
    dd = _signed_absmax(x)[:, 0] / -8
    d, db = _f16(dd)
    q = np.clip(np.floor(x * _safe_inv(dd)[:, None] + 8.5), 0, 15).astype(np.uint8)
    return (np.concatenate([db, _pack_nibbles32(q)], axis=1),
            (q.astype(np.float32) - 8) * d[:, None])


def _q_q5_0(x):
    dd = _signed_absmax(x)[:, 0] / -16
    d, db = _f16(dd)
    q = np.clip(np.floor(x * _safe_inv(dd)[:, None] + 16.5), 0, 31).astype(np.uint8)
    packed = np.concatenate([db, _pack_bits32(q >> 4), _pack_nibbles32(q & 15)], axis=1)
    return packed, (q.astype(np.float32) - 16) * d[:, None]


def _q_affine32(x, nmax):
    lo, hi = x.min(axis=1), x.max(axis=1)
    dd = (hi - lo) / nmax
    d, db = _f16(dd)
    m, mb = _f16(lo)
    q = np.clip(np.floor((x - lo[:, None]) * _safe_inv(dd)[:, None] + 0.5), 0, nmax).astype(np.uint8)
    return db, mb, q, q.astype(np.float32) * d[:, None] + m[:, None]


def _q_q4_1(x):
    db, mb, q, expected = _q_affine32(x, 15)
    return np.concatenate([db, mb, _pack_nibbles32(q)], axis=1), expected


def _q_q5_1(x):
    db, mb, q, expected = _q_affine32(x, 31)
    return np.concatenate([db, mb, _pack_bits32(q >> 4), _pack_nibbles32(q & 15)], axis=1), expected


def _q_iq4_nl(x):
    dd = _signed_absmax(x)[:, 0] / -127
    d, db = _f16(dd)
    scaled = x * _safe_inv(d)[:, None]
    q = np.argmin(np.abs(scaled[:, :, None] - _IQ4NL[None, None, :]), axis=2).astype(np.uint8)
    return np.concatenate([db, _pack_nibbles32(q)], axis=1), d[:, None] * _IQ4NL[q]


def _q_q2_k(x):
    n = x.shape[0]
    db, dmb, sc, mc, q, expected = _affine_subblocks(x.reshape(n, 16, 16), 3, 4)
    packed = np.concatenate([sc | (mc << 4), _pack_crumbs256(q.reshape(n, 256)), db, dmb], axis=1)
    return packed, expected.reshape(n, 256)


def _q_q3_k(x):
    n = x.shape[0]
    db, sc, q, expected = _symmetric_subblocks(x.reshape(n, 16, 16), -4, 3, -32, 31)
    L = (q + 4).reshape(n, 256)                       # 0..7; bit 2 goes to hmask
    hbit = (L >> 2).astype(np.uint8)                  # weight i -> bit i // 32 of byte i % 32
    hmask = (hbit.reshape(n, 8, 32) << np.arange(8, dtype=np.uint8)[None, :, None]).sum(axis=1)
    packed = np.concatenate([hmask.astype(np.uint8), _pack_crumbs256(L & 3),
                             _pack_q3_scales(sc + 32), db], axis=1)
    return packed, expected.reshape(n, 256)


def _q_q4_k(x):
    n = x.shape[0]
    db, dmb, sc, mc, q, expected = _affine_subblocks(x.reshape(n, 8, 32), 15, 6)
    packed = np.concatenate([db, dmb, _pack_k4_scales(sc, mc), _pack_nibbles256(q.reshape(n, 256))], axis=1)
    return packed, expected.reshape(n, 256)


def _q_q5_k(x):
    n = x.shape[0]
    db, dmb, sc, mc, q, expected = _affine_subblocks(x.reshape(n, 8, 32), 31, 6)
    hb = (q >> 4).astype(np.uint8)                    # (n, 8, 32): bit s of qh[l]
    qh = (hb << np.arange(8, dtype=np.uint8)[None, :, None]).sum(axis=1).astype(np.uint8)
    packed = np.concatenate([db, dmb, _pack_k4_scales(sc, mc), qh,
                             _pack_nibbles256((q & 15).reshape(n, 256))], axis=1)
    return packed, expected.reshape(n, 256)


def _q_q6_k(x):
    n = x.shape[0]
    db, sc, q, expected = _symmetric_subblocks(x.reshape(n, 16, 16), -32, 31, -128, 127)
    L = (q + 32).reshape(n, 2, 4, 32).astype(np.uint8)    # half, quarter, l
    lo, hi = L & 15, L >> 4
    ql = np.concatenate([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)], axis=2)
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    packed = np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64),
                             sc.astype(np.int8).view(np.uint8), db], axis=1)
    return packed, expected.reshape(n, 256)


_QUANT = {
    "Q8_0": _q_q8_0, "Q4_0": _q_q4_0, "Q4_1": _q_q4_1, "Q5_0": _q_q5_0, "Q5_1": _q_q5_1,
    "IQ4_NL": _q_iq4_nl, "Q2_K": _q_q2_k, "Q3_K": _q_q3_k, "Q4_K": _q_q4_k, "Q5_K": _q_q5_k,
    "Q6_K": _q_q6_k,
}
QUANT_TYPES = tuple(_QUANT)


def quantize(x, type_name):
    """float array (any shape, size a block multiple, rows contiguous) -> (raw bytes, expected
    float32 array of x's shape)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    blck, size = type_block(type_name)
    packed, expected = _QUANT[type_name](x.reshape(-1, blck))
    assert packed.shape[1] == size, (type_name, packed.shape)
    return packed.astype(np.uint8).tobytes(), expected.astype(np.float32).reshape(x.shape)


def roundtrip_error(x, type_name):
    """Relative RMS error of round-to-nearest quantization of x: ||deq - x|| / ||x||."""
    raw, _ = quantize(x, type_name)
    deq = dequantize(raw, type_name, x.size).reshape(x.shape)
    return float(np.linalg.norm(deq - x) / np.linalg.norm(x))
