/* wbuf.c - little-endian wire buffers: a bounds-checked reader over bytes
 * received from a peer and a growable writer for messages we send.
 * A reader never runs past its end: an overrun sets r->bad, returns zeros,
 * and every later read also returns zeros, so a parser can read a whole
 * message and check bad once at the end. */
#include <stdlib.h>
#include <string.h>

#include "hive/net.h"

/* ---- reader ---- */

void hive_rbuf_init(struct hive_rbuf *r, const void *p, size_t len) {
    r->p = p;
    r->len = p ? len : 0;
    r->off = 0;
    r->bad = 0;
}

size_t hive_rbuf_left(const struct hive_rbuf *r) { return r->bad ? 0 : r->len - r->off; }

/* Takes n bytes, or marks the reader bad and returns NULL. */
static const uint8_t *take(struct hive_rbuf *r, size_t n) {
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        return NULL;
    }
    static const uint8_t empty[1];
    const uint8_t *at = r->p ? r->p + r->off : empty;
    r->off += n;
    return at;
}

uint8_t hive_rbuf_u8(struct hive_rbuf *r) {
    const uint8_t *b = take(r, 1);
    return b ? b[0] : 0;
}

uint32_t hive_rbuf_u32(struct hive_rbuf *r) {
    const uint8_t *b = take(r, 4);
    if (!b) return 0;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t hive_rbuf_u64(struct hive_rbuf *r) {
    const uint8_t *b = take(r, 8);
    if (!b) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

float hive_rbuf_f32(struct hive_rbuf *r) {
    uint32_t bits = hive_rbuf_u32(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

const void *hive_rbuf_bytes(struct hive_rbuf *r, size_t n) { return take(r, n); }

void hive_rbuf_str(struct hive_rbuf *r, char *buf, size_t cap) {
    if (cap) buf[0] = '\0';
    uint32_t n = hive_rbuf_u32(r);
    if (r->bad) return;
    if ((size_t)n >= cap) { /* must fit with its NUL */
        r->bad = 1;
        return;
    }
    const uint8_t *s = take(r, n);
    if (!s) return;
    if (memchr(s, '\0', n)) { /* an embedded NUL would silently truncate */
        r->bad = 1;
        return;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* ---- writer ---- */

void hive_wbuf_init(struct hive_wbuf *w) {
    w->p = NULL;
    w->len = w->cap = 0;
    w->bad = 0;
}

void hive_wbuf_free(struct hive_wbuf *w) {
    free(w->p);
    hive_wbuf_init(w);
}

/* Makes room for n more bytes and returns where they go, or NULL (and bad). */
static uint8_t *reserve(struct hive_wbuf *w, size_t n) {
    if (w->bad) return NULL;
    if (n > SIZE_MAX - w->len) {
        w->bad = 1;
        return NULL;
    }
    size_t need = w->len + n;
    if (need > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->bad = 1;
            return NULL;
        }
        w->p = p;
        w->cap = cap;
    }
    uint8_t *at = w->p + w->len;
    w->len = need;
    return at;
}

void hive_wbuf_u8(struct hive_wbuf *w, uint8_t v) {
    uint8_t *b = reserve(w, 1);
    if (b) b[0] = v;
}

void hive_wbuf_u32(struct hive_wbuf *w, uint32_t v) {
    uint8_t *b = reserve(w, 4);
    if (!b) return;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

void hive_wbuf_u64(struct hive_wbuf *w, uint64_t v) {
    uint8_t *b = reserve(w, 8);
    if (!b) return;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

void hive_wbuf_f32(struct hive_wbuf *w, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    hive_wbuf_u32(w, bits);
}

void hive_wbuf_bytes(struct hive_wbuf *w, const void *p, size_t n) {
    if (!n) return;
    uint8_t *b = reserve(w, n);
    if (b) memcpy(b, p, n);
}

void hive_wbuf_str(struct hive_wbuf *w, const char *s) {
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        w->bad = 1;
        return;
    }
    hive_wbuf_u32(w, (uint32_t)n);
    hive_wbuf_bytes(w, s, n);
}
