"""
gguf_py.py - a small, independent GGUF v3 reader/writer and numpy dequantizers.

This is the test-side reference for seek's C GGUF code and quant kernels: it shares no code with
seek and uses only numpy and the standard library.  It is not a general GGUF library: it reads and
writes what the tests need (all metadata value types, tensors of any ggml type as raw bytes) and
dequantizes the types seek supports.

File layout (GGUF v3, little-endian):
    u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv
    n_kv x   (string key, u32 value_type, value)
    n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
    padding to `general.alignment` (default 32), then the tensor data; each offset is relative to
    the start of the data section and is a multiple of the alignment.
    string = u64 length + bytes (no terminator); array = u32 elem_type, u64 count, elements.
    ne[0] is the fastest-moving dimension: a numpy array of shape (rows, cols) has ne = (cols, rows).

Dequantizers are written from the block layouts documented in src/kern/quants.h (which mirror
ggml's block_* structs); each returns float32 computed in the same order as ggml's scalar code
(d * scale first, then times q, minus dmin * min), so the result is what ggml's to_float gives.
"""

import json
import struct

import numpy as np

# ---------------------------------------------------------------------------------------------
# Metadata value types

GGUF_MAGIC = 0x46554747  # "GGUF" read as little-endian u32
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32

VT_UINT8, VT_INT8, VT_UINT16, VT_INT16, VT_UINT32, VT_INT32, VT_FLOAT32, VT_BOOL, \
    VT_STRING, VT_ARRAY, VT_UINT64, VT_INT64, VT_FLOAT64 = range(13)

# struct format per scalar value type
_SCALAR_FMT = {
    VT_UINT8: "<B", VT_INT8: "<b", VT_UINT16: "<H", VT_INT16: "<h", VT_UINT32: "<I",
    VT_INT32: "<i", VT_FLOAT32: "<f", VT_BOOL: "<?", VT_UINT64: "<Q", VT_INT64: "<q",
    VT_FLOAT64: "<d",
}
# numpy dtype per scalar value type (for reading arrays quickly)
_SCALAR_NP = {
    VT_UINT8: "<u1", VT_INT8: "<i1", VT_UINT16: "<u2", VT_INT16: "<i2", VT_UINT32: "<u4",
    VT_INT32: "<i4", VT_FLOAT32: "<f4", VT_BOOL: "<u1", VT_UINT64: "<u8", VT_INT64: "<i8",
    VT_FLOAT64: "<f8",
}

# ---------------------------------------------------------------------------------------------
# ggml tensor types: name -> (id, elements per block, bytes per block)

GGML_TYPES = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
    "Q8_1": (9, 32, 36),
    "Q2_K": (10, 256, 84),
    "Q3_K": (11, 256, 110),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "Q8_K": (15, 256, 292),
    "IQ4_NL": (20, 32, 18),
    "I8": (24, 1, 1),
    "I16": (25, 1, 2),
    "I32": (26, 1, 4),
    "I64": (27, 1, 8),
    "F64": (28, 1, 8),
    "BF16": (30, 1, 2),
}
TYPE_NAME = {v[0]: k for k, v in GGML_TYPES.items()}
TYPE_ID = {k: v[0] for k, v in GGML_TYPES.items()}


def type_block(type_name):
    """(elements per block, bytes per block) of a ggml type name."""
    _, blck, size = GGML_TYPES[type_name]
    return blck, size


def row_nbytes(type_name, n):
    """Bytes taken by n consecutive elements (a row) of the type; n must be a block multiple."""
    blck, size = type_block(type_name)
    if n % blck:
        raise ValueError("%d elements is not a multiple of the %s block (%d)" % (n, type_name, blck))
    return n // blck * size


# ---------------------------------------------------------------------------------------------
# Writer

class GGUFWriter:
    """Collects metadata and tensors, then writes a GGUF v3 file in one go.

    Metadata: add(key, value_type, value); for arrays add(key, VT_ARRAY, (elem_type, list)).
    Helpers add_u32/add_f32/add_str/add_bool/... cover the common cases.
    Tensors: add_tensor(name, array) stores an F32/F16 numpy array as is (float64 -> F32);
    add_tensor_raw(name, type_name, ne, data) stores already-encoded bytes (any ggml type).
    Tensors are written in the order added, each at a multiple of the alignment.
    """

    def __init__(self, alignment=GGUF_DEFAULT_ALIGNMENT):
        self.alignment = alignment
        self.kv = []        # (key, value_type, value)
        self.tensors = []   # (name, type_name, ne tuple, bytes)
        if alignment != GGUF_DEFAULT_ALIGNMENT:
            self.add_u32("general.alignment", alignment)

    # metadata -----------------------------------------------------------------------------
    def add(self, key, vtype, value):
        if any(k == key for k, _, _ in self.kv):
            raise ValueError("duplicate metadata key " + key)
        self.kv.append((key, vtype, value))

    def add_u8(self, k, v): self.add(k, VT_UINT8, v)
    def add_i8(self, k, v): self.add(k, VT_INT8, v)
    def add_u16(self, k, v): self.add(k, VT_UINT16, v)
    def add_i16(self, k, v): self.add(k, VT_INT16, v)
    def add_u32(self, k, v): self.add(k, VT_UINT32, v)
    def add_i32(self, k, v): self.add(k, VT_INT32, v)
    def add_u64(self, k, v): self.add(k, VT_UINT64, v)
    def add_i64(self, k, v): self.add(k, VT_INT64, v)
    def add_f32(self, k, v): self.add(k, VT_FLOAT32, v)
    def add_f64(self, k, v): self.add(k, VT_FLOAT64, v)
    def add_bool(self, k, v): self.add(k, VT_BOOL, bool(v))
    def add_str(self, k, v): self.add(k, VT_STRING, v)
    def add_array(self, k, elem_type, values): self.add(k, VT_ARRAY, (elem_type, list(values)))

    # tensors ------------------------------------------------------------------------------
    def add_tensor(self, name, array, type_name=None):
        """Stores a numpy array; type_name F32 (default for floats), F16, BF16 (rounded to nearest
        even from float32), or I32.  The GGUF ne order is the reversed numpy shape."""
        array = np.asarray(array)
        if type_name is None:
            type_name = "F16" if array.dtype == np.float16 else "F32"
        if type_name == "F32":
            data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        elif type_name == "F16":
            data = np.ascontiguousarray(array, dtype="<f2").tobytes()
        elif type_name == "BF16":
            data = f32_to_bf16_bits(array).astype("<u2").tobytes()
        elif type_name == "I32":
            data = np.ascontiguousarray(array, dtype="<i4").tobytes()
        else:
            raise ValueError("add_tensor cannot encode %s; use add_tensor_raw" % type_name)
        self.add_tensor_raw(name, type_name, tuple(reversed(array.shape)), data)

    def add_tensor_raw(self, name, type_name, ne, data):
        ne = tuple(int(x) for x in ne)
        n = int(np.prod(ne)) if ne else 1
        if len(data) != row_nbytes(type_name, n):
            raise ValueError("tensor %s: %d bytes, expected %d" % (name, len(data), row_nbytes(type_name, n)))
        if any(t[0] == name for t in self.tensors):
            raise ValueError("duplicate tensor name " + name)
        self.tensors.append((name, type_name, ne, bytes(data)))

    # encoding -----------------------------------------------------------------------------
    @staticmethod
    def _str(s):
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value):
        if vtype == VT_STRING:
            return self._str(value)
        if vtype == VT_ARRAY:
            elem_type, values = value
            out = [struct.pack("<IQ", elem_type, len(values))]
            if elem_type == VT_STRING:
                out += [self._str(v) for v in values]
            elif elem_type == VT_ARRAY:
                out += [self._value(VT_ARRAY, v) for v in values]
            else:
                out.append(np.asarray(values, dtype=_SCALAR_NP[elem_type]).tobytes())
            return b"".join(out)
        return struct.pack(_SCALAR_FMT[vtype], value)

    def to_bytes(self):
        head = [struct.pack("<IIQQ", GGUF_MAGIC, GGUF_VERSION, len(self.tensors), len(self.kv))]
        for key, vtype, value in self.kv:
            head.append(self._str(key) + struct.pack("<I", vtype) + self._value(vtype, value))
        offset = 0
        body = []
        for name, type_name, ne, data in self.tensors:
            head.append(self._str(name) + struct.pack("<I", len(ne)) +
                        struct.pack("<%dQ" % len(ne), *ne) +
                        struct.pack("<IQ", TYPE_ID[type_name], offset))
            pad = -len(data) % self.alignment
            body.append(data + b"\0" * pad)
            offset += len(data) + pad
        head = b"".join(head)
        head += b"\0" * (-len(head) % self.alignment)
        return head + b"".join(body)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.to_bytes())


# ---------------------------------------------------------------------------------------------
# Reader

class GGUFTensor:
    """One tensor of a GGUFFile: name, type_name, ne (GGUF order), shape (numpy order), raw
    (a read-only uint8 view of the tensor's bytes, backed by the file's memory map)."""

    def __init__(self, name, type_name, ne, offset, raw):
        self.name, self.type_name, self.ne, self.offset, self.raw = name, type_name, ne, offset, raw

    @property
    def shape(self):
        return tuple(reversed(self.ne))

    @property
    def n_elements(self):
        return int(np.prod(self.ne)) if self.ne else 1

    def numpy(self):
        """Dequantized float32 array in numpy shape (rows, cols)."""
        return dequantize(self.raw, self.type_name, self.n_elements).reshape(self.shape)


class GGUFFile:
    """Parses a GGUF file (v2 or v3).  kv: key -> python value (arrays as lists, strings as str);
    kv_type: key -> value type (arrays: (VT_ARRAY, elem_type)); tensors: name -> GGUFTensor, in
    file order.  Raises ValueError on malformed input."""

    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.mv = memoryview(self.buf)
        self.pos = 0
        magic, self.version = self._unpack("<II")
        if magic != GGUF_MAGIC:
            raise ValueError("%s: not a GGUF file" % path)
        if self.version not in (2, 3):
            raise ValueError("%s: unsupported GGUF version %d" % (path, self.version))
        n_tensors, n_kv = self._unpack("<QQ")
        self.kv, self.kv_type = {}, {}
        for _ in range(n_kv):
            key = self._read_str()
            (vtype,) = self._unpack("<I")
            value, full_type = self._read_value(vtype)
            if key in self.kv:
                raise ValueError("duplicate key " + key)
            self.kv[key], self.kv_type[key] = value, full_type
        self.alignment = int(self.kv.get("general.alignment", GGUF_DEFAULT_ALIGNMENT))
        infos = []
        for _ in range(n_tensors):
            name = self._read_str()
            (n_dims,) = self._unpack("<I")
            ne = self._unpack("<%dQ" % n_dims)
            type_id, offset = self._unpack("<IQ")
            if type_id not in TYPE_NAME:
                raise ValueError("tensor %s: unknown ggml type %d" % (name, type_id))
            infos.append((name, TYPE_NAME[type_id], tuple(ne), offset))
        self.data_start = self.pos + (-self.pos % self.alignment)
        self.tensors = {}
        for name, type_name, ne, offset in infos:
            n = int(np.prod(ne)) if ne else 1
            nbytes = row_nbytes(type_name, n)
            start = self.data_start + offset
            if offset % self.alignment or start + nbytes > len(self.buf):
                raise ValueError("tensor %s: bad offset %d" % (name, offset))
            if name in self.tensors:
                raise ValueError("duplicate tensor " + name)
            self.tensors[name] = GGUFTensor(name, type_name, ne, offset, self.buf[start:start + nbytes])

    # primitive readers --------------------------------------------------------------------
    def _unpack(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ValueError("truncated file")
        out = struct.unpack_from(fmt, self.mv, self.pos)
        self.pos += size
        return out

    def _read_str(self):
        (n,) = self._unpack("<Q")
        if self.pos + n > len(self.buf):
            raise ValueError("truncated string")
        s = bytes(self.mv[self.pos:self.pos + n]).decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def _read_value(self, vtype):
        if vtype == VT_STRING:
            return self._read_str(), vtype
        if vtype == VT_ARRAY:
            elem_type, count = self._unpack("<IQ")
            if elem_type == VT_STRING:
                return [self._read_str() for _ in range(count)], (VT_ARRAY, elem_type)
            if elem_type == VT_ARRAY:
                return [self._read_value(VT_ARRAY)[0] for _ in range(count)], (VT_ARRAY, elem_type)
            dt = np.dtype(_SCALAR_NP[elem_type])
            end = self.pos + count * dt.itemsize
            if end > len(self.buf):
                raise ValueError("truncated array")
            arr = np.frombuffer(self.mv[self.pos:end], dtype=dt)
            self.pos = end
            values = arr.astype(bool).tolist() if elem_type == VT_BOOL else arr.tolist()
            return values, (VT_ARRAY, elem_type)
        if vtype not in _SCALAR_FMT:
            raise ValueError("unknown metadata value type %d" % vtype)
        return self._unpack(_SCALAR_FMT[vtype])[0], vtype

    # conveniences -------------------------------------------------------------------------
    def arch(self):
        return self.kv["general.architecture"]

    def get(self, key, default=None):
        return self.kv.get(key, default)

    def numpy(self, name):
        return self.tensors[name].numpy()


# ---------------------------------------------------------------------------------------------
# Float helpers

def f32_to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even; NaN stays a quiet NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    rounded = (bits + (0x7FFF + ((bits >> 16) & 1))) >> 16
    return np.where(nan, (bits >> 16) | 0x40, rounded).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_bf16(x):
    """x rounded to the nearest bfloat16, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x)).reshape(np.shape(x))


def round_f16(x):
    """x rounded to the nearest float16, returned as float32."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Dequantizers.  Each takes blocks = uint8 array (n_blocks, bytes per block) and returns float32
# (n_blocks, elements per block).

def _f16(blocks, at):
    """The f16 field at byte offset `at` of every block, as float32 column (n_blocks, 1)."""
    return np.ascontiguousarray(blocks[:, at:at + 2]).view("<f2").astype(np.float32)


def _u32(blocks, at):
    return np.ascontiguousarray(blocks[:, at:at + 4]).view("<u4")[:, 0]


def _nibbles32(qs):
    """qs (n, 16) -> (n, 32): byte j holds weight j in its low nibble and weight j+16 in its high."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _bits32(qh):
    """qh (n,) u32 -> (n, 32): bit j of qh."""
    return ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)


def _dq_q4_0(b):
    # f16 d | qs[16];  x = d * (q - 8)
    d = _f16(b, 0)
    q = _nibbles32(b[:, 2:18]).astype(np.int8) - np.int8(8)
    return q.astype(np.float32) * d


def _dq_q4_1(b):
    # f16 d | f16 m | qs[16];  x = d * q + m
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles32(b[:, 4:20]).astype(np.float32)
    return q * d + m


def _dq_q5_0(b):
    # f16 d | u32 qh | qs[16];  q = nibble | (bit j of qh) << 4;  x = d * (q - 16)
    d = _f16(b, 0)
    q = _nibbles32(b[:, 6:22]) | (_bits32(_u32(b, 2)) << 4)
    return (q.astype(np.int8) - np.int8(16)).astype(np.float32) * d


def _dq_q5_1(b):
    # f16 d | f16 m | u32 qh | qs[16];  x = d * q + m
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles32(b[:, 8:24]) | (_bits32(_u32(b, 4)) << 4)
    return q.astype(np.float32) * d + m


def _dq_q8_0(b):
    # f16 d | int8 qs[32];  x = d * q
    d = _f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(np.float32) * d


_IQ4NL_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.float32)


def _dq_iq4_nl(b):
    # f16 d | qs[16] (nibble order as Q4_0);  x = d * table[q]
    d = _f16(b, 0)
    return d * _IQ4NL_VALUES[_nibbles32(b[:, 2:18])]


def _crumbs256(qs):
    """qs (n, 64) of 2-bit values -> (n, 256): two halves of 128 weights; in a half, byte l
    (0..31) holds weights l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7."""
    n = qs.shape[0]
    halves = qs.reshape(n, 2, 1, 32)
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    return ((halves >> shifts) & 3).reshape(n, 256)


def _dq_q2_k(b):
    # scales[16] | qs[64] | f16 d | f16 dmin; sub-block s of 16: sc = scales[s] & 15, m = scales[s] >> 4
    # x = (d * sc) * q - (dmin * m)
    n = b.shape[0]
    scales = b[:, 0:16]
    d, dmin = _f16(b, 80), _f16(b, 82)
    dl = d * (scales & 0x0F).astype(np.float32)           # (n, 16)
    ml = dmin * (scales >> 4).astype(np.float32)
    q = _crumbs256(b[:, 16:80]).astype(np.float32).reshape(n, 16, 16)
    return (dl[:, :, None] * q - ml[:, :, None]).reshape(n, 256)


def _q3_k_scales(sc12):
    """scales[12] -> 16 signed scales (value - 32), see quants.h."""
    n = sc12.shape[0]
    a = np.ascontiguousarray(sc12).view("<u4")            # (n, 3)
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    k1, k2 = np.uint32(0x03030303), np.uint32(0x0F0F0F0F)
    aux = np.stack([
        (a0 & k2) | (((a2 >> 0) & k1) << 4),
        (a1 & k2) | (((a2 >> 2) & k1) << 4),
        ((a0 >> 4) & k2) | (((a2 >> 4) & k1) << 4),
        ((a1 >> 4) & k2) | (((a2 >> 6) & k1) << 4),
    ], axis=1).astype("<u4")
    return aux.view(np.uint8).reshape(n, 16).astype(np.int32) - 32


def _dq_q3_k(b):
    # hmask[32] | qs[64] | scales[12] | f16 d;  x = (d * sc) * (q_low - (hbit ? 0 : 4))
    # hbit of weight i = bit (i // 32) of hmask[i % 32]
    n = b.shape[0]
    d = _f16(b, 108)
    sc = _q3_k_scales(b[:, 96:108]).astype(np.float32)
    low = _crumbs256(b[:, 32:96]).astype(np.int8)
    hm = b[:, 0:32]
    hbit = ((hm[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1).reshape(n, 256)
    q = (low - np.int8(4) * (1 - hbit).astype(np.int8)).astype(np.float32).reshape(n, 16, 16)
    dl = d * sc
    return (dl[:, :, None] * q).reshape(n, 256)


def _k4_scale_min(sc12):
    """Q4_K/Q5_K scales[12] -> (scale, min) arrays of shape (n, 8), 6 bits each."""
    s = sc12.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, 0:4] = s[:, 0:4] & 63
    mn[:, 0:4] = s[:, 4:8] & 63
    sc[:, 4:8] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def _nibbles256(qs):
    """qs (n, 128) -> (n, 256): four chunks of 64 weights, 32 bytes each; low nibbles are the
    chunk's first 32 weights, high nibbles the next 32 (so sub-block s = 2*chunk + high)."""
    n = qs.shape[0]
    c = qs.reshape(n, 4, 1, 32)
    return np.concatenate([c & 0x0F, c >> 4], axis=2).reshape(n, 256)


def _dq_q4_k(b):
    # f16 d | f16 dmin | scales[12] | qs[128];  x = (d * sc) * q - (dmin * m), sub-blocks of 32
    n = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k4_scale_min(b[:, 4:16])
    d1 = d * sc.astype(np.float32)
    m1 = dmin * mn.astype(np.float32)
    q = _nibbles256(b[:, 16:144]).astype(np.float32).reshape(n, 8, 32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(n, 256)


def _dq_q5_k(b):
    # f16 d | f16 dmin | scales[12] | qh[32] | qs[128]; the high bit of sub-block s (of 32
    # weights), position l, is bit s of qh[l].
    n = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k4_scale_min(b[:, 4:16])
    d1 = d * sc.astype(np.float32)
    m1 = dmin * mn.astype(np.float32)
    qh = b[:, 16:48]
    hbit = (qh[:, None, :] >> np.arange(8, dtype=np.uint8)[None, :, None]) & 1   # (n, 8, 32)
    q = (_nibbles256(b[:, 48:176]).reshape(n, 8, 32) | (hbit << 4)).astype(np.float32)
    return (d1[:, :, None] * q - m1[:, :, None]).reshape(n, 256)


def _dq_q6_k(b):
    # ql[128] | qh[64] | int8 scales[16] | f16 d;  x = (d * sc) * (q - 32), sub-blocks of 16
    # Two halves of 128 weights (ql 64 bytes, qh 32 bytes each); in a half, for l in 0..31:
    #   w[l]    = ql[l] & 15    | (qh[l] >> 0 & 3) << 4      w[l+32] = ql[l+32] & 15 | (qh[l] >> 2 & 3) << 4
    #   w[l+64] = ql[l] >> 4    | (qh[l] >> 4 & 3) << 4      w[l+96] = ql[l+32] >> 4 | (qh[l] >> 6 & 3) << 4
    n = b.shape[0]
    ql = b[:, 0:128].reshape(n, 2, 64)
    qh = b[:, 128:192].reshape(n, 2, 1, 32)
    sc = b[:, 192:208].view(np.int8).astype(np.float32)
    d = _f16(b, 208)
    low = np.stack([ql[:, :, :32] & 0x0F, ql[:, :, 32:] & 0x0F, ql[:, :, :32] >> 4, ql[:, :, 32:] >> 4],
                   axis=2)                                                   # (n, 2, 4, 32)
    high = (qh >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
    q = ((low | (high << 4)).astype(np.int8) - np.int8(32)).astype(np.float32).reshape(n, 16, 16)
    dl = d * sc
    return (dl[:, :, None] * q).reshape(n, 256)


_DEQUANT = {
    "Q4_0": _dq_q4_0, "Q4_1": _dq_q4_1, "Q5_0": _dq_q5_0, "Q5_1": _dq_q5_1, "Q8_0": _dq_q8_0,
    "IQ4_NL": _dq_iq4_nl, "Q2_K": _dq_q2_k, "Q3_K": _dq_q3_k, "Q4_K": _dq_q4_k, "Q5_K": _dq_q5_k,
    "Q6_K": _dq_q6_k,
}

SUPPORTED_TYPES = ("F32", "F16", "BF16") + tuple(_DEQUANT)

# blocks per dequantizer call: bounds the temporaries (about 40 bytes per weight) to ~100 MB
_CHUNK_BLOCKS = 1 << 16


def dequantize(raw, type_name, n_elements):
    """Raw tensor bytes (uint8 array or bytes) of the given ggml type -> flat float32 array."""
    raw = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray)) else np.asarray(raw)
    if type_name == "F32":
        return raw.view("<f4")[:n_elements].astype(np.float32)
    if type_name == "F16":
        return raw.view("<f2")[:n_elements].astype(np.float32)
    if type_name == "BF16":
        return bf16_bits_to_f32(raw.view("<u2")[:n_elements])
    if type_name not in _DEQUANT:
        raise ValueError("no dequantizer for " + type_name)
    blck, size = type_block(type_name)
    if n_elements % blck or raw.size != n_elements // blck * size:
        raise ValueError("%s: %d bytes do not hold %d elements" % (type_name, raw.size, n_elements))
    blocks = raw.reshape(-1, size)
    out = np.empty((blocks.shape[0], blck), np.float32)
    fn = _DEQUANT[type_name]
    for i in range(0, blocks.shape[0], _CHUNK_BLOCKS):
        out[i:i + _CHUNK_BLOCKS] = fn(blocks[i:i + _CHUNK_BLOCKS])
    return out.reshape(-1)


# ---------------------------------------------------------------------------------------------
# safetensors (HF checkpoints): u64 header length, JSON header {name: {dtype, shape,
# data_offsets: [begin, end]}, "__metadata__": {...}}, then the data (offsets relative to it).

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8", "I32": "<i4", "I64": "<i8"}


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: dict name -> numpy float array; dtype F32, F16 or BF16 for all of them."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name], dtype=np.float32)
        if dtype == "F32":
            data = a.astype("<f4").tobytes()
        elif dtype == "F16":
            data = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            data = f32_to_bf16_bits(a).astype("<u2").tobytes()
        else:
            raise ValueError("unsupported safetensors dtype " + dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """-> dict name -> float32 numpy array (BF16/F16 widened exactly)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(blob[base + begin:base + end], dtype=_ST_DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            arr = bf16_bits_to_f32(arr)
        out[name] = arr.astype(np.float32).reshape(info["shape"])
    return out
