/* spm.c - SentencePiece (BPE flavour) encoding from GGUF scores.
 *
 * Spaces become U+2581 "▁" (plus one in front when the model adds a dummy
 * prefix), the text starts as one symbol per UTF-8 character, and the
 * adjacent pair whose concatenation is the highest-scoring vocabulary piece
 * is merged first (leftmost on ties) until no pair is in the vocabulary.
 * Characters with no piece of their own fall back to <0xXX> byte tokens. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

static const char SPACE_MARK[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */

struct spm_sym {
    size_t off, len; /* bytes in the escaped text; len 0 = merged away */
    int32_t prev, next;
};

/* Pieces the merges may produce: SentencePiece keeps control, unknown,
 * byte and unused pieces out of segmentation. */
static int32_t find_piece(const hive_tokenizer *t, const char *s, size_t len) {
    int32_t id = tok_find(t, s, len);
    if (id < 0) return -1;
    int type = t->tok[id].type;
    return type == TT_NORMAL || type == TT_USER_DEFINED ? id : -1;
}

/* Higher score first: map the float onto an order-preserving integer and
 * negate it for the min-heap. */
static int64_t score_prio(float score) {
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return -(int64_t)u;
}

static int try_pair(const hive_tokenizer *t, const char *buf, const struct spm_sym *sym, int32_t l, int32_t r,
                    struct tok_heap *heap) {
    if (l < 0 || r < 0) return HIVE_OK;
    size_t size = sym[l].len + sym[r].len;
    int32_t id = find_piece(t, buf + sym[l].off, size);
    if (id < 0) return HIVE_OK;
    struct tok_pair p = {score_prio(t->tok[id].score), l, r, (int32_t)size, id};
    return tok_heap_push(heap, p);
}

int spm_encode(const hive_tokenizer *t, const char *text, size_t len, int space_prefix, struct tok_ids *out) {
    size_t n_spaces = 0;
    for (size_t i = 0; i < len; i++) n_spaces += text[i] == ' ';
    size_t cap = len + 2 * n_spaces + (space_prefix ? 3 : 0);
    if (cap > INT32_MAX) return HIVE_ERR_NOMEM; /* pair sizes are stored as int32 */
    char *buf = malloc(cap ? cap : 1);
    struct spm_sym *sym = hive_malloc_array(cap ? cap : 1, sizeof *sym);
    struct tok_heap heap = {0};
    int rc = HIVE_ERR_NOMEM;
    if (!buf || !sym) goto done;

    size_t blen = 0;
    if (space_prefix) memcpy(buf, SPACE_MARK, 3), blen = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(buf + blen, SPACE_MARK, 3), blen += 3;
        else buf[blen++] = text[i];
    }

    int32_t n = 0;
    for (size_t i = 0; i < blen; n++) {
        uint32_t cp;
        size_t l = (size_t)utf8_decode((const unsigned char *)buf + i, blen - i, &cp);
        sym[n] = (struct spm_sym){i, l, n - 1, -1};
        if (n > 0) sym[n - 1].next = n;
        i += l;
    }
    for (int32_t i = 0; i + 1 < n; i++)
        if ((rc = try_pair(t, buf, sym, i, i + 1, &heap)) != HIVE_OK) goto done;

    struct tok_pair p;
    while (tok_heap_pop(&heap, &p)) {
        struct spm_sym *l = &sym[p.left], *r = &sym[p.right];
        /* Symbols only grow, so unchanged lengths mean the pair is current. */
        if (!l->len || !r->len || l->next != p.right || l->len + r->len != (size_t)p.a) continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        if ((rc = try_pair(t, buf, sym, l->prev, p.left, &heap)) != HIVE_OK) goto done;
        if ((rc = try_pair(t, buf, sym, p.left, l->next, &heap)) != HIVE_OK) goto done;
    }

    for (int32_t i = n ? 0 : -1; i >= 0; i = sym[i].next) {
        int32_t id = find_piece(t, buf + sym[i].off, sym[i].len);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        /* Byte fallback; a model without byte pieces gets one <unk> per character. */
        const unsigned char *c = (const unsigned char *)buf + sym[i].off;
        int have_bytes = 1;
        for (size_t k = 0; k < sym[i].len; k++) have_bytes &= t->byte_tok[c[k]] >= 0;
        if (have_bytes)
            for (size_t k = 0; k < sym[i].len; k++) tok_ids_push(out, t->byte_tok[c[k]]);
        else if (t->unk >= 0)
            tok_ids_push(out, t->unk);
    }
    rc = out->oom ? HIVE_ERR_NOMEM : HIVE_OK;
done:
    free(buf);
    free(sym);
    free(heap.v);
    return rc;
}
