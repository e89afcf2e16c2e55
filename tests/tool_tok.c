/*
 * tool_tok.c - batch driver for tests/test_tokenizer.py: loads a vocab once and answers many
 * encode/decode requests, so the Python test need not start seek per string.
 *
 * usage: tool_tok MODEL.gguf < requests
 *   request line:  MODE HEX        MODE is p (plain) or s (parse special tokens); HEX is the
 *                                  text's bytes in hex (any bytes, including newlines)
 *   answer line:   IDS\tDEC\tSTREAM
 *                  IDS: the token ids, space separated (no BOS);
 *                  DEC: tok_decode of those ids (special text shown in mode s), in hex;
 *                  STREAM: the same through tok_decoder_push/flush one token at a time, in hex,
 *                  or "!" if some pushed chunk was not whole UTF-8 characters although the
 *                  text was valid UTF-8.
 * Last line on stderr: vocab load time and encode throughput.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "gguf/gguf.h"
#include "tok/tok.h"

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static size_t unhex(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        int a = hexval(s[i]), b = hexval(s[i + 1]);
        if (a < 0 || b < 0) break;
        out[o++] = (char)(a * 16 + b);
    }
    return o;
}

static void put_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);
}

/* Whether s[0..n) is whole, valid UTF-8 characters. */
static bool whole_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = u[i] < 0x80 ? 1 : u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC2 ? 2 : 0;
        if (!len || i + len > n) return false;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

/* Streams ids through the decoder; prints the hex of all output, or "!" on a torn chunk. */
static void stream_decode(const tok_vocab *v, const int32_t *ids, size_t n, bool special, bool valid_in) {
    tok_decoder d;
    tok_decoder_init(&d);
    char buf[512];
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap);
    bool torn = false;
    for (size_t i = 0; i <= n; i++) {
        size_t k = i < n ? tok_decoder_push(v, &d, ids[i], special, buf, sizeof buf) : tok_decoder_flush(&d, buf, sizeof buf);
        if (valid_in && !whole_utf8(buf, k)) torn = true;
        while (len + k > cap) all = realloc(all, cap *= 2);
        memcpy(all + len, buf, k);
        len += k;
    }
    if (torn) printf("!");
    else put_hex(all, len);
    free(all);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: tool_tok MODEL.gguf < requests\n");
        return 2;
    }
    base_init();
    seek_err err = { 0 };
    uint64_t t0 = time_now_ns();
    gguf_file *g = gguf_open(argv[1], &err);
    tok_vocab *v = g ? tok_load_gguf(g, &err) : NULL;
    double load_ms = (double)(time_now_ns() - t0) / 1e6;
    if (g) gguf_close(g);
    if (!v) {
        fprintf(stderr, "tool_tok: %s\n", err.msg);
        return 1;
    }
    char *line = NULL, *text = NULL;
    size_t lcap = 0;
    ssize_t ln;
    uint64_t enc_ns = 0, enc_bytes = 0;
    while ((ln = getline(&line, &lcap, stdin)) > 0) {
        while (ln && (line[ln - 1] == '\n' || line[ln - 1] == '\r')) ln--;
        if (ln < 2) continue;
        bool special = line[0] == 's';
        text = realloc(text, (size_t)ln / 2 + 1);
        size_t n = unhex(line + 2, (size_t)ln - 2, text);
        int32_t *ids;
        size_t n_ids;
        uint64_t t = time_now_ns();
        if (tok_encode(v, text, n, false, special, &ids, &n_ids, &err) < 0) {
            fprintf(stderr, "tool_tok: %s\n", err.msg);
            return 1;
        }
        enc_ns += time_now_ns() - t;
        enc_bytes += n;
        for (size_t i = 0; i < n_ids; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\t");
        char *dec = tok_decode(v, ids, n_ids, special);
        size_t dec_len = 0; /* the text may hold NUL bytes: its length is the sum of the pieces */
        for (size_t i = 0; i < n_ids; i++) dec_len += tok_piece(v, ids[i], special, NULL, 0);
        put_hex(dec, dec_len);
        printf("\t");
        stream_decode(v, ids, n_ids, special, whole_utf8(text, n));
        printf("\n");
        free(dec);
        free(ids);
    }
    fflush(stdout);
    fprintf(stderr, "tool_tok: load %.1f ms, %llu bytes encoded in %.3f s (%.2f MB/s)\n", load_ms,
            (unsigned long long)enc_bytes, (double)enc_ns / 1e9, enc_ns ? (double)enc_bytes / ((double)enc_ns / 1e3) : 0.0);
    free(line);
    free(text);
    tok_free(v);
    return 0;
}
