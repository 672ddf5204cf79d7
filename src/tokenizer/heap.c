/* heap.c - the min-heap of candidate merges used by SentencePiece and BPE:
 * smallest prio first, the leftmost pair on ties. */
#include <stdlib.h>

#include "tokenizer/tok_internal.h"

static int before(const struct tok_pair *x, const struct tok_pair *y) {
    return x->prio < y->prio || (x->prio == y->prio && x->left < y->left);
}

int tok_heap_push(struct tok_heap *h, struct tok_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct tok_pair *v = hive_malloc_array(cap, sizeof *v);
        if (!v) return HIVE_ERR_NOMEM;
        for (size_t i = 0; i < h->n; i++) v[i] = h->v[i];
        free(h->v);
        h->v = v, h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&p, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = p;
    return HIVE_OK;
}

int tok_heap_pop(struct tok_heap *h, struct tok_pair *out) {
    if (!h->n) return 0;
    *out = h->v[0];
    struct tok_pair last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return 1;
}
