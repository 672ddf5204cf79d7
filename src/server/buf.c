/* buf.c - a growable byte buffer with a hard cap (struct srv_buf). */
#include <microhttpd.h>
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

ssize_t srv_buf_stream(struct srv_buf *out, size_t *pos, const int *done, const atomic_int *stopping,
                       int (*fill)(void *arg), void *arg, char *buf, size_t max) {
    while (*pos >= out->n) {
        if (*done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(stopping)) return MHD_CONTENT_READER_END_WITH_ERROR;
        out->n = 0;
        *pos = 0;
        if (fill(arg)) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = out->n - *pos;
    if (n > max) n = max;
    memcpy(buf, out->p + *pos, n);
    *pos += n;
    return (ssize_t)n;
}
