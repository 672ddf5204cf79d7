/* dns.c - DNS message codec: names (with compression), questions and
 * resource records, parsed from untrusted bytes and written into a fixed
 * buffer. References: RFC 1035 sections 3.1, 4.1 (format), 4.1.4
 * (compression); RFC 2782 (SRV); RFC 6762 section 18 (mDNS use of the
 * header and the top bit of the class).
 *
 * Not here: EDNS0, DNSSEC records, anything that needs more than the record
 * types hive uses (other types are kept with their raw rdata). */
#include <stdio.h>
#include <string.h>

#include "dns.h"

/* ---- names ---- */

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

int dns_name_from_text(struct dns_name *n, const char *text) {
    size_t len = 0;
    const char *p = text;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > DNS_LABEL_MAX || len + 1 + l + 1 > DNS_NAME_MAX) return -1;
        n->b[len++] = (uint8_t)l;
        memcpy(n->b + len, p, l);
        len += l;
        p += l;
        if (*p == '.') {
            p++;
            if (!*p) return -1; /* trailing dot */
        }
    }
    n->b[len++] = 0;
    n->len = (uint8_t)len;
    return 0;
}

int dns_name_prepend(struct dns_name *out, const void *label, size_t label_len, const struct dns_name *parent) {
    if (label_len == 0 || label_len > DNS_LABEL_MAX || 1 + label_len + parent->len > DNS_NAME_MAX) return -1;
    struct dns_name t;
    t.b[0] = (uint8_t)label_len;
    memcpy(t.b + 1, label, label_len);
    memcpy(t.b + 1 + label_len, parent->b, parent->len);
    t.len = (uint8_t)(1 + label_len + parent->len);
    *out = t;
    return 0;
}

int dns_name_parent(const struct dns_name *n, struct dns_name *out) {
    if (n->len < 2 || n->b[0] == 0) return -1;
    size_t skip = 1u + n->b[0];
    if (skip >= n->len) return -1;
    struct dns_name t;
    t.len = (uint8_t)(n->len - skip);
    memcpy(t.b, n->b + skip, t.len);
    *out = t;
    return 0;
}

int dns_name_eq(const struct dns_name *a, const struct dns_name *b) {
    if (a->len != b->len) return 0;
    /* Length bytes are < 64, so lowering them changes nothing. */
    for (size_t i = 0; i < a->len; i++)
        if (lower(a->b[i]) != lower(b->b[i])) return 0;
    return 1;
}

void dns_name_to_text(const struct dns_name *n, char *buf, size_t cap) {
    if (!cap) return;
    size_t o = 0, i = 0;
    buf[0] = '\0';
    while (i < n->len && n->b[i]) {
        size_t l = n->b[i++];
        if (o && o + 1 < cap) buf[o++] = '.';
        for (size_t k = 0; k < l && i < n->len; k++, i++) {
            uint8_t c = n->b[i];
            char tmp[5];
            int w;
            if (c == '.' || c == '\\') w = snprintf(tmp, sizeof tmp, "\\%c", c);
            else if (c < 0x21 || c > 0x7e) w = snprintf(tmp, sizeof tmp, "\\%03u", c);
            else w = snprintf(tmp, sizeof tmp, "%c", c);
            if (o + (size_t)w >= cap) {
                buf[o] = '\0';
                return;
            }
            memcpy(buf + o, tmp, (size_t)w);
            o += (size_t)w;
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
}

/* ---- parser ---- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Reads a possibly compressed name at *off (bounded by end, the end of the
 * region the name must start in: the message or one record's rdata). On
 * success *off is past the name's bytes at its own position. Every pointer
 * must lead before the lowest offset this name was read from so far, so
 * each jump goes strictly backwards and the walk ends. The labels a pointer
 * leads to may lie anywhere before it in the message (bounded by len). */
static int parse_name(const uint8_t *p, size_t len, size_t *off, size_t end, struct dns_name *n) {
    size_t pos = *off, lowest = *off, limit = end, after = 0;
    int jumped = 0;
    size_t o = 0;
    for (;;) {
        if (pos >= limit) return -1;
        uint8_t c = p[pos];
        if (c == 0) {
            if (o + 1 > DNS_NAME_MAX) return -1;
            n->b[o++] = 0;
            n->len = (uint8_t)o;
            *off = jumped ? after : pos + 1;
            return 0;
        }
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= limit) return -1;
            size_t target = (size_t)(c & 0x3f) << 8 | p[pos + 1];
            if (target >= lowest) return -1; /* forward or looping pointer */
            if (!jumped) after = pos + 2;
            jumped = 1;
            lowest = target;
            pos = target;
            limit = len; /* labels before the rdata may be anywhere earlier in the message */
            continue;
        }
        if (c & 0xc0) return -1; /* 01 and 10: reserved label types */
        if (pos + 1 + c > limit) return -1;
        if (o + 1 + c + 1 > DNS_NAME_MAX) return -1;
        memcpy(n->b + o, p + pos, 1u + c);
        o += 1u + c;
        pos += 1u + c;
    }
}

int dns_txt_next(const uint8_t *rdata, size_t rdlen, size_t *off, const uint8_t **s, size_t *n) {
    if (*off >= rdlen) return 0;
    size_t l = rdata[*off];
    if (l > rdlen - *off - 1) return -1;
    *s = rdata + *off + 1;
    *n = l;
    *off += 1 + l;
    return 1;
}

static int parse_rdata(const uint8_t *p, size_t len, size_t off, struct dns_rr *r) {
    size_t end = off + r->rdlen, o = off;
    switch (r->type) {
    case DNS_T_A:
        if (r->rdlen != 4) return -1;
        memcpy(r->a, p + off, 4);
        return 0;
    case DNS_T_PTR:
        if (parse_name(p, len, &o, end, &r->target)) return -1;
        return o == end ? 0 : -1;
    case DNS_T_SRV:
        if (r->rdlen < 7) return -1;
        r->srv_prio = rd16(p + off);
        r->srv_weight = rd16(p + off + 2);
        r->srv_port = rd16(p + off + 4);
        o = off + 6;
        if (parse_name(p, len, &o, end, &r->target)) return -1;
        return o == end ? 0 : -1;
    case DNS_T_TXT: {
        if (r->rdlen > DNS_TXT_MAX) return -1;
        size_t t = 0;
        const uint8_t *s;
        size_t n;
        int k;
        while ((k = dns_txt_next(r->rdata, r->rdlen, &t, &s, &n)) == 1) {}
        return k;
    }
    default:
        return 0; /* kept raw */
    }
}

int dns_parse(const uint8_t *p, size_t len, struct dns_msg *m) {
    if (!p || len < DNS_HEADER_BYTES || len > DNS_PKT_MAX) return -1;
    m->id = rd16(p);
    m->flags = rd16(p + 2);
    size_t qd = rd16(p + 4), an = rd16(p + 6), ns = rd16(p + 8), ar = rd16(p + 10);
    if (qd > DNS_MAX_Q) return -1;
    m->n_q = m->n_rr = m->rr_dropped = 0;
    size_t off = DNS_HEADER_BYTES;
    for (size_t i = 0; i < qd; i++) {
        struct dns_question *q = &m->q[m->n_q];
        if (parse_name(p, len, &off, len, &q->name)) return -1;
        if (len - off < 4) return -1;
        q->type = rd16(p + off);
        uint16_t k = rd16(p + off + 2);
        q->klass = k & 0x7fff;
        q->top = (k & DNS_CLASS_TOP) != 0;
        off += 4;
        m->n_q++;
    }
    size_t total = an + ns + ar;
    for (size_t i = 0; i < total; i++) {
        if (m->n_rr == DNS_MAX_RR) {
            m->rr_dropped = (int)(total - i);
            return 0;
        }
        struct dns_rr *r = &m->rr[m->n_rr];
        if (parse_name(p, len, &off, len, &r->name)) return -1;
        if (len - off < 10) return -1;
        r->type = rd16(p + off);
        uint16_t k = rd16(p + off + 2);
        r->klass = k & 0x7fff;
        r->top = (k & DNS_CLASS_TOP) != 0;
        r->ttl = rd32(p + off + 4);
        r->rdlen = rd16(p + off + 8);
        off += 10;
        if (r->rdlen > len - off) return -1;
        r->section = i < an ? DNS_SEC_AN : i < an + ns ? DNS_SEC_NS : DNS_SEC_AR;
        r->rdata = p + off;
        r->target.len = 0;
        if (parse_rdata(p, len, off, r)) return -1;
        off += r->rdlen;
        m->n_rr++;
    }
    return off == len ? 0 : -1;
}

/* ---- writer ---- */

static void put(struct dns_wr *w, const void *src, size_t n) {
    if (w->bad) return;
    if (n > w->cap - w->len) {
        w->bad = 1;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

void dns_wr_u16(struct dns_wr *w, uint16_t v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

void dns_wr_u32(struct dns_wr *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

void dns_wr_bytes(struct dns_wr *w, const void *p, size_t n) { put(w, p, n); }

void dns_wr_init(struct dns_wr *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags) {
    memset(w, 0, sizeof *w);
    w->p = buf;
    w->cap = cap;
    dns_wr_u16(w, id);
    dns_wr_u16(w, flags);
    for (int i = 0; i < 4; i++) dns_wr_u16(w, 0);
}

void dns_wr_name(struct dns_wr *w, const struct dns_name *n) {
    size_t i = 0;
    while (i < n->len && n->b[i]) {
        struct dns_name suffix;
        suffix.len = (uint8_t)(n->len - i);
        memcpy(suffix.b, n->b + i, suffix.len);
        for (int k = 0; k < w->n_comp; k++) {
            if (dns_name_eq(&w->comp[k].suffix, &suffix)) {
                dns_wr_u16(w, (uint16_t)(0xc000u | w->comp[k].off));
                return;
            }
        }
        if (!w->bad && w->len < 0x3fff && w->n_comp < DNS_WR_COMP) {
            w->comp[w->n_comp].off = (uint16_t)w->len;
            w->comp[w->n_comp].suffix = suffix;
            w->n_comp++;
        }
        put(w, n->b + i, 1u + n->b[i]);
        i += 1u + n->b[i];
    }
    uint8_t zero = 0;
    put(w, &zero, 1);
}

void dns_wr_question(struct dns_wr *w, const struct dns_name *n, uint16_t type, uint16_t klass) {
    dns_wr_name(w, n);
    dns_wr_u16(w, type);
    dns_wr_u16(w, klass);
    w->counts[0]++;
}

size_t dns_wr_rr_begin(struct dns_wr *w, int sec, const struct dns_name *n, uint16_t type, uint16_t klass,
                       uint32_t ttl) {
    dns_wr_name(w, n);
    dns_wr_u16(w, type);
    dns_wr_u16(w, klass);
    dns_wr_u32(w, ttl);
    size_t at = w->len;
    dns_wr_u16(w, 0);
    w->counts[1 + sec]++;
    return at;
}

void dns_wr_rr_end(struct dns_wr *w, size_t rdlen_off) {
    if (w->bad) return;
    size_t rdlen = w->len - rdlen_off - 2;
    if (rdlen > 0xffff) {
        w->bad = 1;
        return;
    }
    w->p[rdlen_off] = (uint8_t)(rdlen >> 8);
    w->p[rdlen_off + 1] = (uint8_t)rdlen;
}

size_t dns_wr_finish(struct dns_wr *w) {
    if (w->bad || w->len < DNS_HEADER_BYTES) return 0;
    for (int i = 0; i < 4; i++) {
        w->p[4 + 2 * i] = (uint8_t)(w->counts[i] >> 8);
        w->p[5 + 2 * i] = (uint8_t)w->counts[i];
    }
    return w->len;
}
