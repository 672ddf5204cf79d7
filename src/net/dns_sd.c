/* dns_sd.c - hive's DNS-SD service (RFC 6763): the names and records a node
 * answers with, the TXT record with its MAC, queries, and the extraction of
 * verified instances from a response.
 *
 * TXT record (RFC 6763 section 6; every string "key=value", at most 255 bytes):
 *   v=1 | id=<16 hex> | name= | port= | proto= | os= | cpu= | mem=<bytes> |
 *   speed=<bytes/s> | ts=<unix s> | [bye=1] | ... | mac=<64 hex>
 * mac = BLAKE2b-256(key = cluster key,
 *                   "hive-announce-v1" || for each other string: | len u8 | bytes |)
 * The receiver checks the MAC over the strings as they arrived (unknown
 * keys included, so fields can be added later) before it reads any field. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "net_internal.h"

/* ---- TXT ---- */

static int add_str(uint8_t *out, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (n > 255 || n + 1 > cap - *len) return -1;
    out[(*len)++] = (uint8_t)n;
    memcpy(out + *len, s, n);
    *len += n;
    return 0;
}

static void mac_compute(const uint8_t *rdata, size_t rdlen, size_t skip_off, const uint8_t key[HIVE_KEY_BYTES],
                        uint8_t mac[DNSSD_MAC_BYTES]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, HIVE_KEY_BYTES, DNSSD_MAC_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)DNSSD_MAC_LABEL, strlen(DNSSD_MAC_LABEL));
    size_t off = 0;
    const uint8_t *s;
    size_t n;
    while (dns_txt_next(rdata, rdlen, &off, &s, &n) == 1) {
        if (s - 1 == rdata + skip_off) continue;
        crypto_generichash_update(&st, s - 1, n + 1);
    }
    crypto_generichash_final(&st, mac, DNSSD_MAC_BYTES);
}

/* Printable for a terminal: no control bytes (UTF-8 is fine). */
static int text_ok(const char *s) {
    for (; *s; s++)
        if ((uint8_t)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

size_t dnssd_txt_build(const struct dnssd_announce *a, const uint8_t key[HIVE_KEY_BYTES], uint8_t *out, size_t cap) {
    if (net_crypto_init(NULL)) return 0;
    if (!a->name[0] || !text_ok(a->name) || !text_ok(a->os) || !text_ok(a->cpu)) return 0;
    if (a->port < 1 || a->port > 65535 || a->proto < 0 || a->proto > 65535 || a->ts < 0) return 0;
    char f[300];
    size_t len = 0;
    int bad = 0;
    bad |= add_str(out, cap, &len, "v=1");
    snprintf(f, sizeof f, "id=%016llx", (unsigned long long)a->node_id);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "name=%s", a->name);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "port=%d", a->port);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "proto=%d", a->proto);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "os=%s", a->os);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "cpu=%s", a->cpu);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "mem=%llu", (unsigned long long)a->mem_budget);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "speed=%llu", (unsigned long long)a->speed_bps);
    bad |= add_str(out, cap, &len, f);
    snprintf(f, sizeof f, "ts=%lld", (long long)a->ts);
    bad |= add_str(out, cap, &len, f);
    if (a->bye) bad |= add_str(out, cap, &len, "bye=1");
    if (bad) return 0;
    uint8_t mac[DNSSD_MAC_BYTES];
    mac_compute(out, len, (size_t)-1, key, mac);
    memcpy(f, "mac=", 4);
    sodium_bin2hex(f + 4, sizeof f - 4, mac, sizeof mac);
    if (add_str(out, cap, &len, f)) return 0;
    return len <= DNS_TXT_MAX ? len : 0;
}

/* Unsigned decimal, no sign, no leading '+', no overflow, at most max. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
    if (!*s || strlen(s) > 20) return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Lowercase hex digit value, -1 for anything else (one spelling per value). */
static int hex_nibble(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

static int parse_hex64(const char *s, uint64_t *out) {
    if (strlen(s) != 16) return -1;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int d = hex_nibble(s[i]);
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

static int copy_text(char *dst, size_t cap, const char *v, int allow_empty) {
    size_t n = strlen(v);
    if ((!n && !allow_empty) || n >= cap || !text_ok(v)) return -1;
    memcpy(dst, v, n + 1);
    return 0;
}

enum { F_V, F_ID, F_NAME, F_PORT, F_PROTO, F_OS, F_CPU, F_MEM, F_SPEED, F_TS, F_BYE, F_N };
static const char *const field_key[F_N] = {"v", "id", "name", "port", "proto", "os", "cpu", "mem", "speed", "ts", "bye"};

int dnssd_txt_verify(const uint8_t *rdata, size_t rdlen, const uint8_t key[HIVE_KEY_BYTES], int64_t now_unix,
                     struct dnssd_announce *a) {
    if (rdlen > DNS_TXT_MAX) return HIVE_ERR_FORMAT;
    if (net_crypto_init(NULL)) return HIVE_ERR_UNSUPPORTED;
    /* 1. Find the one mac= string and check it before reading anything else. */
    size_t off = 0, mac_off = (size_t)-1;
    const uint8_t *s;
    size_t n;
    int k, count = 0;
    while ((k = dns_txt_next(rdata, rdlen, &off, &s, &n)) == 1) {
        if (++count > DNSSD_TXT_STRINGS_MAX) return HIVE_ERR_FORMAT;
        if (n >= 4 && !memcmp(s, "mac=", 4)) {
            if (mac_off != (size_t)-1) return HIVE_ERR_AUTH;
            mac_off = (size_t)(s - 1 - rdata);
            if (n != 4 + 2 * DNSSD_MAC_BYTES) return HIVE_ERR_AUTH;
        }
    }
    if (k < 0) return HIVE_ERR_FORMAT;
    if (mac_off == (size_t)-1) return HIVE_ERR_AUTH;
    uint8_t got[DNSSD_MAC_BYTES], want[DNSSD_MAC_BYTES];
    const char *hex = (const char *)rdata + mac_off + 5;
    for (int i = 0; i < DNSSD_MAC_BYTES; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return HIVE_ERR_AUTH;
        got[i] = (uint8_t)(hi << 4 | lo);
    }
    mac_compute(rdata, rdlen, mac_off, key, want);
    if (sodium_memcmp(got, want, sizeof got)) return HIVE_ERR_AUTH;

    /* 2. Fields: each known key at most once, the required ones present. */
    struct dnssd_announce t;
    memset(&t, 0, sizeof t);
    int seen[F_N] = {0};
    off = 0;
    while (dns_txt_next(rdata, rdlen, &off, &s, &n) == 1) {
        char str[256];
        memcpy(str, s, n);
        str[n] = '\0';
        if (memchr(s, '\0', n)) return HIVE_ERR_FORMAT;
        char *eq = strchr(str, '=');
        if (!eq || eq == str) return HIVE_ERR_FORMAT;
        *eq = '\0';
        const char *v = eq + 1;
        int f = -1;
        for (int i = 0; i < F_N; i++)
            if (!strcmp(str, field_key[i])) f = i;
        if (f < 0) continue; /* mac= and keys from later versions */
        if (seen[f]++) return HIVE_ERR_FORMAT;
        uint64_t u = 0;
        int bad = 0;
        switch (f) {
        case F_V: bad = strcmp(v, "1") != 0; break;
        case F_ID: bad = parse_hex64(v, &t.node_id); break;
        case F_NAME: bad = copy_text(t.name, sizeof t.name, v, 0); break;
        case F_PORT: bad = parse_u64(v, 65535, &u) || u == 0; t.port = (int)u; break;
        case F_PROTO: bad = parse_u64(v, 65535, &u); t.proto = (int)u; break;
        case F_OS: bad = copy_text(t.os, sizeof t.os, v, 1); break;
        case F_CPU: bad = copy_text(t.cpu, sizeof t.cpu, v, 1); break;
        case F_MEM: bad = parse_u64(v, UINT64_MAX, &t.mem_budget); break;
        case F_SPEED: bad = parse_u64(v, UINT64_MAX, &t.speed_bps); break;
        case F_TS: bad = parse_u64(v, (uint64_t)INT64_MAX, &u); t.ts = (int64_t)u; break;
        case F_BYE: bad = strcmp(v, "1") != 0; t.bye = 1; break;
        }
        if (bad) return HIVE_ERR_FORMAT;
    }
    for (int i = 0; i < F_N; i++)
        if (i != F_BYE && !seen[i]) return HIVE_ERR_FORMAT;
    int64_t skew = t.ts - now_unix;
    if (skew > HIVE_DISCOVERY_MAX_SKEW_S || skew < -HIVE_DISCOVERY_MAX_SKEW_S) return HIVE_ERR_TIMEOUT;
    *a = t;
    return HIVE_OK;
}

/* ---- names ---- */

int dnssd_self_init(struct dnssd_self *s, const char *name, uint64_t node_id, const char *hostname) {
    if (dns_name_from_text(&s->service, HIVE_DISCOVERY_SERVICE) ||
        dns_name_from_text(&s->enumerate, "_services._dns-sd._udp.local"))
        return -1;
    /* Instance label: "<name>-<first 8 hex of the id>", cut to 63 bytes on a
     * UTF-8 character boundary. */
    char label[DNS_LABEL_MAX + 1], id[12];
    snprintf(id, sizeof id, "-%08x", (unsigned)(node_id >> 32));
    size_t room = DNS_LABEL_MAX - strlen(id), n = strlen(name);
    if (n > room) {
        n = room;
        while (n > 0 && ((uint8_t)name[n] & 0xc0) == 0x80) n--;
    }
    memcpy(label, name, n);
    snprintf(label + n, sizeof label - n, "%s", id);
    if (dns_name_prepend(&s->instance, label, strlen(label), &s->service)) return -1;
    /* Host label: letters, digits and '-' (RFC 952/1123); others become '-'. */
    char host[DNS_LABEL_MAX + 1];
    size_t h = 0;
    for (const char *p = hostname; *p && *p != '.' && h < DNS_LABEL_MAX; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        host[h++] = ok ? c : '-';
    }
    if (!h) h = (size_t)snprintf(host, sizeof host, "hive");
    host[h] = '\0';
    struct dns_name local;
    if (dns_name_from_text(&local, "local") || dns_name_prepend(&s->host, host, h, &local)) return -1;
    return 0;
}

/* ---- queries and responses ---- */

static int question_hits(const struct dns_question *q, const struct dns_name *name, uint16_t type) {
    if (q->klass != DNS_CLASS_IN && q->klass != DNS_CLASS_ANY) return 0;
    if (q->type != type && q->type != DNS_T_ANY) return 0;
    return dns_name_eq(&q->name, name);
}

int dnssd_match_query(const struct dns_msg *m, const struct dnssd_self *s, uint32_t ttl) {
    if (m->flags & (DNS_FLAG_QR | DNS_OPCODE_MASK)) return 0; /* responses, or not a standard query */
    int want = 0;
    for (int i = 0; i < m->n_q; i++) {
        const struct dns_question *q = &m->q[i];
        if (question_hits(q, &s->service, DNS_T_PTR)) want |= DNSSD_WANT_PTR;
        if (question_hits(q, &s->instance, DNS_T_SRV) || question_hits(q, &s->instance, DNS_T_TXT))
            want |= DNSSD_WANT_INSTANCE;
        if (question_hits(q, &s->host, DNS_T_A)) want |= DNSSD_WANT_HOST;
        if (question_hits(q, &s->enumerate, DNS_T_PTR)) want |= DNSSD_WANT_ENUM;
    }
    /* Known-answer suppression for the shared PTR records (RFC 6762 7.1). */
    for (int i = 0; i < m->n_rr; i++) {
        const struct dns_rr *r = &m->rr[i];
        if (r->section != DNS_SEC_AN || r->type != DNS_T_PTR || r->ttl < ttl / 2) continue;
        if (dns_name_eq(&r->name, &s->service) && dns_name_eq(&r->target, &s->instance)) want &= ~DNSSD_WANT_PTR;
        if (dns_name_eq(&r->name, &s->enumerate) && dns_name_eq(&r->target, &s->service)) want &= ~DNSSD_WANT_ENUM;
    }
    return want;
}

size_t dnssd_build_response(uint8_t *buf, size_t cap, const struct dnssd_self *s, const uint8_t *txt,
                            size_t txt_len, int port, const uint8_t addr[4], uint32_t ttl, int want,
                            const struct dns_msg *legacy_q) {
    struct dns_wr w;
    uint16_t flush = DNS_CLASS_TOP;
    dns_wr_init(&w, buf, cap, legacy_q ? legacy_q->id : 0, DNS_FLAG_QR | DNS_FLAG_AA);
    if (legacy_q) {
        if (ttl > 10) ttl = 10;
        flush = 0; /* RFC 6762 6.7: no cache-flush bit in legacy unicast replies */
        for (int i = 0; i < legacy_q->n_q; i++)
            dns_wr_question(&w, &legacy_q->q[i].name, legacy_q->q[i].type, legacy_q->q[i].klass);
    }
    if (!want) want = DNSSD_WANT_PTR;
    /* Answers first, then the rest of the set as additionals (RFC 6763 12). */
    for (int pass = 0; pass < 2; pass++) {
        int sec = pass == 0 ? DNS_SEC_AN : DNS_SEC_AR;
        int take = pass == 0 ? want : ~want;
        size_t at;
        if (take & DNSSD_WANT_ENUM && pass == 0) {
            at = dns_wr_rr_begin(&w, sec, &s->enumerate, DNS_T_PTR, DNS_CLASS_IN, ttl);
            dns_wr_name(&w, &s->service);
            dns_wr_rr_end(&w, at);
        }
        if (take & DNSSD_WANT_PTR) {
            at = dns_wr_rr_begin(&w, sec, &s->service, DNS_T_PTR, DNS_CLASS_IN, ttl);
            dns_wr_name(&w, &s->instance);
            dns_wr_rr_end(&w, at);
        }
        if (take & DNSSD_WANT_INSTANCE) {
            at = dns_wr_rr_begin(&w, sec, &s->instance, DNS_T_SRV, DNS_CLASS_IN | flush, ttl);
            dns_wr_u16(&w, 0);
            dns_wr_u16(&w, 0);
            dns_wr_u16(&w, (uint16_t)port);
            dns_wr_name(&w, &s->host);
            dns_wr_rr_end(&w, at);
            at = dns_wr_rr_begin(&w, sec, &s->instance, DNS_T_TXT, DNS_CLASS_IN | flush, ttl);
            dns_wr_bytes(&w, txt, txt_len);
            dns_wr_rr_end(&w, at);
        }
        /* The host name is shared with whatever else (avahi) answers for it,
         * so no cache-flush bit on A. */
        if (take & DNSSD_WANT_HOST && addr) {
            at = dns_wr_rr_begin(&w, sec, &s->host, DNS_T_A, DNS_CLASS_IN, ttl);
            dns_wr_bytes(&w, addr, 4);
            dns_wr_rr_end(&w, at);
        }
    }
    return dns_wr_finish(&w);
}

size_t dnssd_build_query(uint8_t *buf, size_t cap, const struct dnssd_self *s, const struct dns_name *instance,
                         const struct dns_name *known, const uint32_t *known_ttl, int n_known) {
    struct dns_wr w;
    dns_wr_init(&w, buf, cap, 0, 0);
    if (instance) {
        dns_wr_question(&w, instance, DNS_T_SRV, DNS_CLASS_IN);
        dns_wr_question(&w, instance, DNS_T_TXT, DNS_CLASS_IN);
    } else {
        dns_wr_question(&w, &s->service, DNS_T_PTR, DNS_CLASS_IN);
        for (int i = 0; i < n_known; i++) {
            size_t save = w.len, at;
            uint16_t an = w.counts[1];
            int n_comp = w.n_comp;
            at = dns_wr_rr_begin(&w, DNS_SEC_AN, &s->service, DNS_T_PTR, DNS_CLASS_IN, known_ttl[i]);
            dns_wr_name(&w, &known[i]);
            dns_wr_rr_end(&w, at);
            if (w.bad) { /* out of room: send the known answers that fit */
                w.bad = 0;
                w.len = save;
                w.counts[1] = an;
                w.n_comp = n_comp;
                break;
            }
        }
    }
    return dns_wr_finish(&w);
}

/* ---- extraction ---- */

static const struct dns_rr *find_rr(const struct dns_msg *m, const struct dns_name *name, uint16_t type) {
    for (int i = 0; i < m->n_rr; i++) {
        const struct dns_rr *r = &m->rr[i];
        if (r->section != DNS_SEC_NS && r->type == type && r->klass == DNS_CLASS_IN && dns_name_eq(&r->name, name))
            return r;
    }
    return NULL;
}

static int add_instance(struct dnssd_found *out, int n, int cap, const struct dns_name *inst) {
    for (int i = 0; i < n; i++)
        if (dns_name_eq(&out[i].instance, inst)) return n;
    if (n == cap) return n;
    memset(&out[n], 0, sizeof out[n]);
    out[n].instance = *inst;
    return n + 1;
}

int dnssd_extract(const struct dns_msg *m, const struct dnssd_self *s, const uint8_t key[HIVE_KEY_BYTES],
                  int64_t now_unix, struct dnssd_found *out, int cap) {
    if (!(m->flags & DNS_FLAG_QR) || (m->flags & DNS_OPCODE_MASK)) return 0;
    int n = 0;
    for (int i = 0; i < m->n_rr; i++) {
        const struct dns_rr *r = &m->rr[i];
        if (r->section == DNS_SEC_NS || r->klass != DNS_CLASS_IN) continue;
        struct dns_name parent;
        if (r->type == DNS_T_PTR && dns_name_eq(&r->name, &s->service) && !dns_name_parent(&r->target, &parent) &&
            dns_name_eq(&parent, &s->service))
            n = add_instance(out, n, cap, &r->target);
        else if (r->type == DNS_T_SRV && !dns_name_parent(&r->name, &parent) && dns_name_eq(&parent, &s->service))
            n = add_instance(out, n, cap, &r->name);
    }
    for (int i = 0; i < n; i++) {
        struct dnssd_found *f = &out[i];
        const struct dns_rr *srv = find_rr(m, &f->instance, DNS_T_SRV);
        const struct dns_rr *txt = find_rr(m, &f->instance, DNS_T_TXT);
        if (!srv || !txt) continue;
        f->rc = dnssd_txt_verify(txt->rdata, txt->rdlen, key, now_unix, &f->a);
        if (f->rc) continue;
        if (f->a.port != srv->srv_port) {
            f->rc = HIVE_ERR_FORMAT;
            continue;
        }
        f->ttl = srv->ttl < txt->ttl ? srv->ttl : txt->ttl;
        const struct dns_rr *a = find_rr(m, &srv->target, DNS_T_A);
        if (a) {
            memcpy(f->addr, a->a, 4);
            f->have_addr = 1;
        }
        f->complete = 1;
    }
    return n;
}
