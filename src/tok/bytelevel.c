/*
 * bytelevel.c - the byte-level alphabet of GPT-2-style BPE vocabularies, and small UTF-8 helpers.
 *
 * Byte-level BPE works on bytes, but stores its tokens as text.  GPT-2's bytes_to_unicode() gives
 * every byte a visible stand-in code point: the 188 bytes in '!'..'~', 0xA1..0xAC and 0xAE..0xFF
 * stand for themselves, and the 68 others (control characters, space, 0x7F..0xA0, 0xAD) map to
 * U+0100, U+0101, ... in byte order (so ' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').  Stand-ins are
 * below U+0800, so each is 1 or 2 UTF-8 bytes.
 */
#include "tok_impl.h"

static bool bl_is_self(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* Code point standing for byte b: itself, or 256 + (how many non-self bytes precede it). */
static uint32_t bl_cp_of_byte(unsigned b) {
    if (bl_is_self(b)) return b;
    uint32_t k = 0;
    for (unsigned i = 0; i < b; i++) k += !bl_is_self(i);
    return 256 + k;
}

/* Both directions as tables, built once on first use (idempotent: concurrent first calls
 * compute identical values). */
static struct {
    bool ready;
    uint16_t cp_of_byte[256];
    int16_t byte_of_cp[324]; /* highest stand-in is 256 + 67 */
} bl;

static void bl_init(void) {
    if (__atomic_load_n(&bl.ready, __ATOMIC_ACQUIRE)) return;
    for (int i = 0; i < 324; i++) bl.byte_of_cp[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = bl_cp_of_byte(b);
        bl.cp_of_byte[b] = (uint16_t)cp;
        bl.byte_of_cp[cp] = (int16_t)b;
    }
    __atomic_store_n(&bl.ready, true, __ATOMIC_RELEASE);
}

size_t tok_bl_encode_byte(unsigned char b, char out[2]) {
    bl_init();
    uint32_t cp = bl.cp_of_byte[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

int tok_bl_byte_of(uint32_t cp) {
    bl_init();
    return cp < 324 ? bl.byte_of_cp[cp] : -1;
}

size_t tok_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8 */
    if (v < min || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) return 0;
    *cp = v;
    return len;
}

size_t tok_utf8_valid_prefix(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = tok_utf8_decode(s + i, n - i, &cp);
        if (!len) break;
        i += len;
    }
    return i;
}
