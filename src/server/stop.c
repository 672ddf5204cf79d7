/* stop.c - which generated text may be sent yet.
 *
 * Tokens arrive as pieces of bytes. A stop string may span several pieces,
 * so the tail of what came in that could still be the start of a stop
 * string is held back until the next piece settles it; a stop string that
 * matches ends the text just before it, and nothing after it is ever
 * released. An incomplete UTF-8 sequence at the tail is held back too (a
 * multi-byte character split over two byte tokens), and invalid UTF-8 is
 * replaced by U+FFFD (so is a NUL byte), so every released chunk is valid
 * UTF-8 for JSON. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

int srv_stop_init(struct srv_stop *s, const char *const *stops, int n) {
    memset(s, 0, sizeof *s);
    for (int i = 0; i < n && s->n_stop < SRV_MAX_STOP; i++) {
        if (!stops[i] || !stops[i][0]) continue;
        s->stop[s->n_stop] = strdup(stops[i]);
        if (!s->stop[s->n_stop]) {
            srv_stop_free(s);
            return -1;
        }
        s->stop_len[s->n_stop] = strlen(stops[i]);
        s->n_stop++;
    }
    return 0;
}

void srv_stop_free(struct srv_stop *s) {
    for (int i = 0; i < s->n_stop; i++) free(s->stop[i]);
    srv_buf_free(&s->held);
    memset(s, 0, sizeof *s);
}

/* Length of the UTF-8 sequence at p[0..n): 1..4 when valid and complete,
 * 0 when it is a valid start cut short by the end of the data, -1 when
 * invalid (one byte to replace). */
static int utf8_len(const unsigned char *p, size_t n) {
    unsigned char b = p[0];
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b == 0) return -1; /* NUL cannot travel in a cJSON string */
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        if (b == 0xE0) lo = 0xA0;  /* no overlong forms */
        if (b == 0xED) hi = 0x9F;  /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;  /* <= U+10FFFF */
    } else return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        unsigned c = p[i];
        if (i == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return -1;
    }
    return len;
}

/* Appends p[0..n) to out as valid UTF-8; with keep_tail, an incomplete
 * sequence at the end is not appended and its length returned (else it is
 * replaced). Returns the bytes not consumed, or -1 when out of memory. */
static long put_utf8(struct srv_buf *out, const char *p, size_t n, int keep_tail) {
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, run = 0; /* [run, i) is valid and not yet appended */
    while (i < n) {
        int l = utf8_len(u + i, n - i);
        if (l > 0) {
            i += (size_t)l;
            continue;
        }
        if (srv_buf_put(out, p + run, i - run)) return -1;
        if (l == 0 && keep_tail) return (long)(n - i);
        if (srv_buf_put(out, REPLACEMENT, 3)) return -1;
        i += 1;
        run = i;
        if (l == 0) { /* flushing a cut sequence: one U+FFFD for all of it */
            while (i < n && (u[i] & 0xC0) == 0x80) i++;
            run = i;
        }
    }
    if (srv_buf_put(out, p + run, n - run)) return -1;
    return 0;
}

/* Longest proper prefix of any stop string that the held text ends with. */
static size_t partial_stop(const struct srv_stop *s) {
    size_t best = 0;
    const char *h = s->held.p;
    size_t n = s->held.n;
    for (int k = 0; k < s->n_stop; k++) {
        size_t max = s->stop_len[k] - 1 < n ? s->stop_len[k] - 1 : n;
        for (size_t l = max; l > best; l--) {
            if (!memcmp(h + n - l, s->stop[k], l)) {
                best = l;
                break;
            }
        }
    }
    return best;
}

/* Removes the first n bytes of the held text. */
static void drop_front(struct srv_buf *b, size_t n) {
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    if (b->p) b->p[b->n] = '\0';
}

int srv_stop_feed(struct srv_stop *s, const char *piece, size_t n, struct srv_buf *out) {
    if (s->stopped) return 1;
    if (srv_buf_put(&s->held, piece, n)) return -1;
    /* The earliest stop string in the held text (text before the held tail
     * was released already and cannot be part of a match: see below). */
    const char *first = NULL;
    for (int k = 0; k < s->n_stop; k++) {
        const char *at = s->held.n ? memmem(s->held.p, s->held.n, s->stop[k], s->stop_len[k]) : NULL;
        if (at && (!first || at < first)) first = at;
    }
    if (first) {
        s->stopped = 1;
        if (put_utf8(out, s->held.p, (size_t)(first - s->held.p), 0) < 0) return -1;
        srv_buf_free(&s->held);
        return 1;
    }
    size_t keep = partial_stop(s);
    size_t release = s->held.n - keep;
    long tail = put_utf8(out, s->held.p, release, 1);
    if (tail < 0) return -1;
    drop_front(&s->held, release - (size_t)tail);
    return 0;
}

int srv_stop_flush(struct srv_stop *s, struct srv_buf *out) {
    if (s->stopped || !s->held.n) return 0;
    long rc = put_utf8(out, s->held.p, s->held.n, 0);
    s->held.n = 0;
    return rc < 0 ? -1 : 0;
}
