/* bpe.c - byte-level BPE encoding (GPT-2 scheme).
 *
 * The pre-tokenizer cuts the text into pieces; every byte of a piece starts
 * as the token of its mapped character, and the adjacent pair with the
 * lowest merge rank is merged first (leftmost on ties) until no pair has a
 * merge. Symbols are token ids throughout, so a merge is one hash lookup. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

#define DEAD (-2)

struct bpe_sym {
    int32_t id; /* token id, -1 for a byte without a token, DEAD once merged away */
    int32_t prev, next;
};

static int try_pair(const hive_tokenizer *t, const struct bpe_sym *sym, int32_t l, int32_t r, struct tok_heap *heap) {
    if (l < 0 || r < 0) return HIVE_OK;
    int32_t merged;
    int32_t rank = tok_merge(t, sym[l].id, sym[r].id, &merged);
    if (rank < 0) return HIVE_OK;
    struct tok_pair p = {rank, l, r, sym[l].id, sym[r].id};
    return tok_heap_push(heap, p);
}

static int encode_piece(const hive_tokenizer *t, const unsigned char *s, size_t n, struct bpe_sym *sym,
                        char *mapped, struct tok_heap *heap, struct tok_ids *out) {
    if (t->ignore_merges) {
        /* llama3: a piece that is itself a vocabulary word is taken whole. */
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += (size_t)utf8_encode(t->cp_of_byte[s[i]], mapped + m);
        int32_t id = tok_find(t, mapped, m);
        if (id >= 0 && t->tok[id].type == TT_NORMAL) {
            tok_ids_push(out, id);
            return HIVE_OK;
        }
    }
    for (size_t i = 0; i < n; i++)
        sym[i] = (struct bpe_sym){t->byte_tok[s[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    heap->n = 0;
    int rc;
    for (size_t i = 0; i + 1 < n; i++)
        if ((rc = try_pair(t, sym, (int32_t)i, (int32_t)i + 1, heap)) != HIVE_OK) return rc;
    struct tok_pair p;
    while (tok_heap_pop(heap, &p)) {
        struct bpe_sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->id != p.a || r->id != p.b || l->next != p.right) continue; /* stale */
        tok_merge(t, p.a, p.b, &l->id);
        r->id = DEAD;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        if ((rc = try_pair(t, sym, l->prev, p.left, heap)) != HIVE_OK) return rc;
        if ((rc = try_pair(t, sym, p.left, l->next, heap)) != HIVE_OK) return rc;
    }
    for (int32_t i = n ? 0 : -1; i >= 0; i = sym[i].next) {
        if (sym[i].id >= 0) tok_ids_push(out, sym[i].id);
        else if (t->unk >= 0) tok_ids_push(out, t->unk);
    }
    return HIVE_OK;
}

int bpe_encode(const hive_tokenizer *t, const char *text, size_t len, struct tok_ids *out) {
    size_t *cuts, n_cuts;
    int rc = pretok_split(t->pre, text, len, &cuts, &n_cuts);
    if (rc != HIVE_OK) return rc;
    size_t longest = 0;
    for (size_t i = 0; i + 1 < n_cuts; i++)
        if (cuts[i + 1] - cuts[i] > longest) longest = cuts[i + 1] - cuts[i];
    struct bpe_sym *sym = hive_malloc_array(longest + 1, sizeof *sym);
    char *mapped = hive_malloc_array(longest + 1, 2); /* mapped code points are < 0x800: 2 bytes each */
    struct tok_heap heap = {0};
    rc = HIVE_ERR_NOMEM;
    if (!sym || !mapped || longest > INT32_MAX) goto done;
    for (size_t i = 0; i + 1 < n_cuts; i++) {
        rc = encode_piece(t, (const unsigned char *)text + cuts[i], cuts[i + 1] - cuts[i], sym, mapped, &heap, out);
        if (rc != HIVE_OK) goto done;
    }
    rc = out->oom ? HIVE_ERR_NOMEM : HIVE_OK;
done:
    free(cuts);
    free(sym);
    free(mapped);
    free(heap.v);
    return rc;
}
