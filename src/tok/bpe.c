/*
 * bpe.c - the merge table and the BPE merge loop for one pre-token.
 *
 * Merge table: tokenizer.ggml.merges lists "left right" pairs, most frequent first; the index is
 * the rank.  It is stored as a hash from the pair of token ids (left, right) to (rank, id of the
 * merged token).  A merge naming a text that is not a token (left, right or left+right) can never
 * apply and is skipped, as llama.cpp does; a merge without a separating space is an error.
 *
 * Merge loop (the Hugging Face / llama.cpp algorithm): a word starts as one symbol per byte (the
 * token of that byte's byte-level stand-in).  Repeatedly take the adjacent pair with the lowest
 * rank (leftmost on ties) and merge it, until no adjacent pair has a merge.  A min-heap of
 * candidate pairs makes this O(n log n); candidates made stale by an earlier merge are recognized
 * when popped (a symbol no longer holds the id the candidate was made for) and dropped.
 *
 * ignore_merges (Llama-3): a pre-token whose whole byte-level text is a token is emitted as that
 * token without merging, as HF does when tokenizer.json sets "ignore_merges": true.
 */
#include <stdlib.h>
#include <string.h>

#include "tok_impl.h"

#define TOK_MAX_MERGES (1 << 25)

static uint64_t merge_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r; }

/* Mixes the 64-bit key so that neighbouring ids spread over the table. */
static uint64_t merge_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

/* Slot of (l, r): the one holding it, or the empty one where it would go. */
static tok_merge_slot *merge_slot(const tok_merges *m, uint64_t key) {
    for (uint64_t i = merge_hash(key) & m->mask;; i = (i + 1) & m->mask) {
        tok_merge_slot *s = &m->slots[i];
        if (s->rank < 0 || s->key == key) return s;
    }
}

/* One merge on its way into the table.  The loader handles merges in batches and in stages
 * (parse and hash, prefetch, look up, insert) so that the cache misses of one batch overlap:
 * the lookups hit random places of tables several MB large, and done one after the other they
 * made up most of the load time of a 150k-token vocab. */
typedef struct {
    gguf_str s;
    size_t nl, nr;          /* left side s.ptr[0..nl), right side after the space */
    uint64_t hl, hr, hj;    /* hashes of left, right and left + right */
    int32_t l, r, res;      /* their ids; res < 0: the merge is skipped */
} merge_job;

#define MERGE_BATCH 32

/* Splits merge number rank ("left right") and hashes its parts; -1 if it is no pair. */
static int merge_parse(merge_job *j, uint64_t rank, seek_err *err) {
    const char *sp = j->s.len > 1 ? memchr(j->s.ptr + 1, ' ', j->s.len - 1) : NULL; /* left is never empty */
    if (!sp) {
        char shown[64];
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.merges[%llu] '%s' is not a \"left right\" pair",
                       (unsigned long long)rank, gguf_str_copy(j->s, shown, sizeof shown));
    }
    j->nl = (size_t)(sp - j->s.ptr);
    j->nr = j->s.len - j->nl - 1;
    j->hl = tok_hash_more(TOK_HASH_SEED, j->s.ptr, j->nl);
    j->hr = tok_hash_more(TOK_HASH_SEED, sp + 1, j->nr);
    j->hj = tok_hash_more(j->hl, sp + 1, j->nr);
    return 0;
}

static void merge_lookup(const tok_vocab *v, merge_job *j) {
    const char *right = j->s.ptr + j->nl + 1;
    j->l = tok_find_hashed(v, j->hl, j->s.ptr, j->nl, NULL, 0);
    j->r = tok_find_hashed(v, j->hr, right, j->nr, NULL, 0);
    j->res = j->l >= 0 && j->r >= 0 ? tok_find_hashed(v, j->hj, j->s.ptr, j->nl, right, j->nr) : -1;
}

/* Stores a looked-up merge; returns 1 if stored, 0 if skipped (unknown text or repeated pair). */
static int merge_insert(tok_merges *m, const merge_job *j, int32_t rank) {
    if (j->res < 0) return 0;
    tok_merge_slot *slot = merge_slot(m, merge_key(j->l, j->r));
    if (slot->rank >= 0) return 0; /* a repeated pair keeps its first (lowest) rank */
    *slot = (tok_merge_slot){ merge_key(j->l, j->r), rank, j->res };
    m->n++;
    return 1;
}

/* Adds merges [first, first + n) of kv; *skipped counts those that cannot apply. */
static int merge_batch(tok_vocab *v, const gguf_file *g, const gguf_kv *kv, uint64_t first, int n,
                       int64_t *skipped, seek_err *err) {
    merge_job jobs[MERGE_BATCH];
    for (int k = 0; k < n; k++) {
        merge_job *j = &jobs[k];
        if (gguf_arr_str(g, kv, first + (uint64_t)k, &j->s) < 0)
            return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.merges[%llu] is unreadable",
                           (unsigned long long)(first + k));
        if (merge_parse(j, first + (uint64_t)k, err) < 0) return -1;
        tok_find_prefetch_slot(v, j->hl);
        tok_find_prefetch_slot(v, j->hr);
        tok_find_prefetch_slot(v, j->hj);
    }
    for (int k = 0; k < n; k++) {
        tok_find_prefetch_text(v, jobs[k].hl);
        tok_find_prefetch_text(v, jobs[k].hr);
    }
    for (int k = 0; k < n; k++) {
        merge_lookup(v, &jobs[k]);
        if (jobs[k].res < 0) continue;
        uint64_t key = merge_key(jobs[k].l, jobs[k].r);
        __builtin_prefetch(&v->merges.slots[merge_hash(key) & v->merges.mask]);
    }
    for (int k = 0; k < n; k++) *skipped += !merge_insert(&v->merges, &jobs[k], (int32_t)(first + (uint64_t)k));
    return 0;
}

int tok_merges_build(tok_vocab *v, const gguf_file *g, const gguf_kv *kv, seek_err *err) {
    if (kv->vtype != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING)
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.merges is not an array of strings");
    if (kv->arr_n > TOK_MAX_MERGES)
        return err_set(err, SEEK_EFORMAT, "tokenizer.ggml.merges has %llu entries (limit %d)",
                       (unsigned long long)kv->arr_n, TOK_MAX_MERGES);
    uint64_t cap = 1024; /* load factor <= 2/3: the table is the biggest thing loaded (16 B a slot) */
    while (2 * cap < 3 * kv->arr_n) cap *= 2;
    tok_merges *m = &v->merges;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return err_set(err, SEEK_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < cap; i++) m->slots[i].rank = -1;
    m->mask = cap - 1;
    int64_t skipped = 0;
    for (uint64_t i = 0; i < kv->arr_n; i += MERGE_BATCH) {
        int n = kv->arr_n - i < MERGE_BATCH ? (int)(kv->arr_n - i) : MERGE_BATCH;
        if (merge_batch(v, g, kv, i, n, &skipped, err) < 0) return -1;
    }
    if (skipped) log_info("tok: %lld of %llu merges skipped (unknown tokens or repeated pairs)",
                          (long long)skipped, (unsigned long long)kv->arr_n);
    return 0;
}

void tok_merges_free(tok_merges *m) {
    free(m->slots);
    m->slots = NULL;
}

/* ---- growable arrays ---- */

int tok_ids_push(tok_ids *o, int32_t id) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        int32_t *p = realloc(o->ids, cap * sizeof *p);
        if (!p) return -1;
        o->ids = p, o->cap = cap;
    }
    o->ids[o->n++] = id;
    return 0;
}

/* Makes *buf hold at least n elements of size sz (contents not kept). */
static int grow(void **buf, size_t *cap, size_t n, size_t sz) {
    if (*cap >= n) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < n) c *= 2;
    void *p = malloc(c * sz);
    if (!p) return -1;
    free(*buf);
    *buf = p, *cap = c;
    return 0;
}

void tok_bpe_scratch_free(tok_bpe_scratch *sc) {
    free(sc->sym);
    free(sc->heap);
    free(sc->bl);
    memset(sc, 0, sizeof *sc);
}

/* ---- the candidate heap, ordered by (rank, pos) ---- */

static bool cand_less(const tok_cand *a, const tok_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(tok_bpe_scratch *sc, tok_cand c) {
    size_t i = sc->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &sc->heap[parent])) break;
        sc->heap[i] = sc->heap[parent];
        i = parent;
    }
    sc->heap[i] = c;
}

static tok_cand heap_pop(tok_bpe_scratch *sc) {
    tok_cand top = sc->heap[0], last = sc->heap[--sc->n_heap];
    size_t i = 0, n = sc->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&sc->heap[c + 1], &sc->heap[c])) c++;
        if (!cand_less(&sc->heap[c], &last)) break;
        sc->heap[i] = sc->heap[c];
        i = c;
    }
    if (n) sc->heap[i] = last;
    return top;
}

/* Queues the pair (symbol l, its right neighbour r) if the vocab has a merge for it. */
static void try_pair(const tok_vocab *v, tok_bpe_scratch *sc, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    int32_t a = sc->sym[l].id, b = sc->sym[r].id;
    if (a < 0 || b < 0) return;
    const tok_merge_slot *s = merge_slot(&v->merges, merge_key(a, b));
    if (s->rank < 0) return;
    heap_push(sc, (tok_cand){ s->rank, l, a, b, s->result });
}

/* Token of the whole piece if ignore_merges applies, else -1. */
static int32_t whole_piece_token(const tok_vocab *v, tok_bpe_scratch *sc, const char *s, size_t n) {
    if (grow((void **)&sc->bl, &sc->cap_bl, 2 * n, 1) < 0) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += tok_bl_encode_byte((unsigned char)s[i], sc->bl + k);
    return tok_find_n(v, sc->bl, k);
}

int tok_bpe_piece(const tok_vocab *v, tok_bpe_scratch *sc, const char *s, size_t n, tok_ids *out) {
    if (n == 0) return 0;
    if (v->pre.def->ignore_merges && n > 1) {
        int32_t id = whole_piece_token(v, sc, s, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (n > INT32_MAX / 4) return -1;
    if (grow((void **)&sc->sym, &sc->cap_sym, n, sizeof *sc->sym) < 0 ||
        grow((void **)&sc->heap, &sc->cap_heap, 3 * n, sizeof *sc->heap) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        sc->sym[i] = (tok_sym){ v->byte_tok[(unsigned char)s[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1 };
    /* at most n - 1 initial candidates plus two per merge (n - 1 merges): 3n bounds the heap */
    sc->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(v, sc, (int32_t)i, (int32_t)i + 1);
    while (sc->n_heap) {
        tok_cand c = heap_pop(sc);
        tok_sym *l = &sc->sym[c.pos];
        if (l->id != c.left || l->next < 0 || sc->sym[l->next].id != c.right) continue; /* stale */
        tok_sym *r = &sc->sym[l->next];
        l->id = c.result;
        l->next = r->next;
        if (r->next >= 0) sc->sym[r->next].prev = c.pos;
        r->id = -2;
        try_pair(v, sc, l->prev, c.pos);
        try_pair(v, sc, c.pos, l->next);
    }
    for (int32_t i = 0; i >= 0; i = sc->sym[i].next)
        if (sc->sym[i].id >= 0 && tok_ids_push(out, sc->sym[i].id) < 0) return -1;
    return 0;
}
