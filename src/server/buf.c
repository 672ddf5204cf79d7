/* buf.c - a growable byte buffer with a hard cap (struct srv_buf). */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

int srv_buf_put(struct srv_buf *b, const void *data, size_t n) {
    if (b->full) return -1;
    if (b->max && (n > b->max || b->n > b->max - n)) {
        b->full = 1;
        return -1;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->full = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int srv_buf_puts(struct srv_buf *b, const char *s) { return srv_buf_put(b, s, strlen(s)); }

void srv_buf_free(struct srv_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->full = 0;
}
