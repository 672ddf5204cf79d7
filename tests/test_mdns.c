/* test_mdns.c - the DNS codec and hive's DNS-SD records without sockets:
 * hand-built packets (valid, compressed, looping, reserved labels, oversized
 * TXT), every truncation, the TXT MAC (bad MAC, wrong key, stale or future
 * timestamp, duplicate and missing fields), queries with known answers,
 * legacy unicast replies, goodbyes, and thousands of random corruptions and
 * garbage packets (run under ASan in the sanitizer build). */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "hive/discovery.h"
#include "net/dns.h"

static uint8_t KEY[HIVE_KEY_BYTES], OTHER_KEY[HIVE_KEY_BYTES];
static struct dns_msg MSG; /* large: keep off the stack */
#define MAX_FOUND_TEST 8

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int scale(int n) {
    const char *s = getenv("HIVE_TEST_SCALE");
    return s && !strcmp(s, "small") ? n / 10 : n;
}

static struct dnssd_announce sample(int64_t ts) {
    struct dnssd_announce a;
    memset(&a, 0, sizeof a);
    a.node_id = 0x0123456789abcdefull;
    snprintf(a.name, sizeof a.name, "box-a");
    a.port = 7070;
    a.proto = 1;
    snprintf(a.os, sizeof a.os, "linux x86_64");
    snprintf(a.cpu, sizeof a.cpu, "avx2 fma f16c");
    a.mem_budget = 3ull << 30;
    a.speed_bps = 12345678901ull;
    a.ts = ts;
    return a;
}

/* A full response for a (TTL ttl) from our writer; returns its length. */
static size_t build_sample(uint8_t *buf, size_t cap, const struct dnssd_announce *a, const uint8_t *key,
                           uint32_t ttl, struct dnssd_self *names) {
    uint8_t txt[DNS_TXT_MAX];
    size_t tl = dnssd_txt_build(a, key, txt, sizeof txt);
    CHECK(tl > 0);
    CHECK(dnssd_self_init(names, a->name, a->node_id, "myhost") == 0);
    static const uint8_t addr[4] = {127, 0, 0, 1};
    return dnssd_build_response(buf, cap, names, txt, tl, a->port, addr, ttl, DNSSD_WANT_PTR, NULL);
}

/* ---- names ---- */

static void test_names(void) {
    struct dns_name a, b, c;
    CHECK(dns_name_from_text(&a, "_hive._tcp.local") == 0);
    CHECK(a.len == 18 && a.b[0] == 5 && !memcmp(a.b + 1, "_hive", 5) && a.b[17] == 0);
    CHECK(dns_name_from_text(&b, "_HIVE._TCP.Local") == 0);
    CHECK(dns_name_eq(&a, &b));
    CHECK(dns_name_from_text(&c, "_hive._udp.local") == 0);
    CHECK(!dns_name_eq(&a, &c));
    CHECK(dns_name_from_text(&c, "a..b") != 0);
    CHECK(dns_name_from_text(&c, "a.b.") != 0);
    char long_label[80];
    memset(long_label, 'x', 64);
    long_label[64] = '\0';
    CHECK(dns_name_from_text(&c, long_label) != 0);
    long_label[63] = '\0';
    CHECK(dns_name_from_text(&c, long_label) == 0);
    /* 255-byte limit: four 63-byte labels are 4*64+1 = 257 bytes. */
    char too_long[400];
    snprintf(too_long, sizeof too_long, "%s.%s.%s.%s", long_label, long_label, long_label, long_label);
    CHECK(dns_name_from_text(&c, too_long) != 0);

    CHECK(dns_name_prepend(&c, "my.box (1)", 10, &a) == 0);
    char text[300];
    dns_name_to_text(&c, text, sizeof text);
    CHECK(!strcmp(text, "my\\.box\\032(1)._hive._tcp.local"));
    struct dns_name parent;
    CHECK(dns_name_parent(&c, &parent) == 0 && dns_name_eq(&parent, &a));
    struct dns_name root;
    CHECK(dns_name_from_text(&root, "") == 0 && root.len == 1);
    CHECK(dns_name_parent(&root, &parent) != 0);
    dns_name_to_text(&c, text, 8); /* cut, still terminated */
    CHECK(strlen(text) < 8);

    /* Instance names: cut to 63 bytes on a UTF-8 boundary, id appended. */
    struct dnssd_self s;
    char name[64];
    memset(name, 0, sizeof name);
    for (int i = 0; i < 31; i++) memcpy(name + 2 * i, "\xc3\xa9", 2); /* 31 x e-acute = 62 bytes */
    CHECK(dnssd_self_init(&s, name, 0xdeadbeef00000000ull, "my_host.example") == 0);
    CHECK(s.instance.b[0] <= 63);
    CHECK(!memcmp(s.instance.b + 1 + s.instance.b[0] - 9, "-deadbeef", 9));
    CHECK(((s.instance.b[s.instance.b[0] - 9] & 0xc0) != 0xc0)); /* no lead byte left dangling */
    dns_name_to_text(&s.host, text, sizeof text);
    CHECK(!strcmp(text, "my-host.local"));
}

/* ---- hand-built packets ---- */

struct hb {
    uint8_t p[2048];
    size_t n;
};
static void hb_bytes(struct hb *h, const void *p, size_t n) {
    memcpy(h->p + h->n, p, n);
    h->n += n;
}
static void hb_u16(struct hb *h, unsigned v) {
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    hb_bytes(h, b, 2);
}
static void hb_u32(struct hb *h, uint32_t v) {
    hb_u16(h, v >> 16);
    hb_u16(h, v & 0xffff);
}
static void hb_label(struct hb *h, const char *s) {
    uint8_t l = (uint8_t)strlen(s);
    hb_bytes(h, &l, 1);
    hb_bytes(h, s, l);
}
static void hb_header(struct hb *h, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar) {
    h->n = 0;
    hb_u16(h, 0);
    hb_u16(h, flags);
    hb_u16(h, qd);
    hb_u16(h, an);
    hb_u16(h, ns);
    hb_u16(h, ar);
}

static void test_hand_built(void) {
    struct hb h;
    /* A response written by hand: PTR _hive._tcp.local -> x._hive._tcp.local,
     * SRV x... 0 0 7070 host.local, A host.local; every later name compressed. */
    hb_header(&h, 0x8400, 0, 3, 0, 0);
    size_t svc = h.n; /* 12 */
    hb_label(&h, "_hive");
    hb_label(&h, "_tcp");
    hb_label(&h, "local");
    hb_bytes(&h, "", 1); /* the root */
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 120);
    hb_u16(&h, 4);
    size_t inst = h.n;
    hb_label(&h, "x");
    hb_u16(&h, 0xc000 | (unsigned)svc);
    /* SRV */
    hb_u16(&h, 0xc000 | (unsigned)inst);
    hb_u16(&h, DNS_T_SRV);
    hb_u16(&h, DNS_CLASS_IN | DNS_CLASS_TOP);
    hb_u32(&h, 120);
    hb_u16(&h, 6 + 5 + 2);
    hb_u16(&h, 0);
    hb_u16(&h, 0);
    hb_u16(&h, 7070);
    size_t host = h.n;
    hb_label(&h, "host");
    hb_u16(&h, 0xc000 | (unsigned)(svc + 11)); /* "local" inside the service name */
    /* A */
    hb_u16(&h, 0xc000 | (unsigned)host);
    hb_u16(&h, DNS_T_A);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 120);
    hb_u16(&h, 4);
    hb_bytes(&h, "\x0a\x00\x00\x07", 4);
    CHECK(dns_parse(h.p, h.n, &MSG) == 0);
    CHECK(MSG.n_rr == 3 && MSG.n_q == 0);
    struct dns_name want;
    char text[300];
    dns_name_to_text(&MSG.rr[0].target, text, sizeof text);
    CHECK(!strcmp(text, "x._hive._tcp.local"));
    dns_name_to_text(&MSG.rr[1].name, text, sizeof text);
    CHECK(!strcmp(text, "x._hive._tcp.local"));
    CHECK(MSG.rr[1].top && MSG.rr[1].klass == DNS_CLASS_IN && MSG.rr[1].srv_port == 7070);
    dns_name_to_text(&MSG.rr[1].target, text, sizeof text);
    CHECK(!strcmp(text, "host.local"));
    CHECK(dns_name_from_text(&want, "host.local") == 0 && dns_name_eq(&MSG.rr[2].name, &want));
    CHECK(!memcmp(MSG.rr[2].a, "\x0a\x00\x00\x07", 4));
    /* Without a TXT the instance is found but not complete. */
    struct dnssd_self names;
    CHECK(dnssd_self_init(&names, "n", 1, "h") == 0);
    struct dnssd_found f[4];
    CHECK(dnssd_extract(&MSG, &names, KEY, time(NULL), f, 4) == 1);
    CHECK(!f[0].complete);
    /* Every truncation fails. */
    for (size_t n = 0; n < h.n; n++) CHECKF(dns_parse(h.p, n, &MSG) != 0, "prefix %zu", n);
    /* Trailing garbage fails. */
    h.p[h.n] = 0;
    CHECK(dns_parse(h.p, h.n + 1, &MSG) != 0);

    /* Pointer to itself. */
    hb_header(&h, 0, 1, 0, 0, 0);
    hb_u16(&h, 0xc00c);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* A label, then a pointer back to that label: a loop. */
    hb_header(&h, 0, 1, 0, 0, 0);
    hb_label(&h, "a");
    hb_u16(&h, 0xc00c);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* Forward pointer. */
    hb_header(&h, 0, 1, 0, 0, 0);
    hb_u16(&h, 0xc00e);
    hb_u16(&h, 0);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* Two names pointing at each other: q1 at 12 = "a" + ptr(17), q2 at 17 = "b" + ptr(12). */
    hb_header(&h, 0, 2, 0, 0, 0);
    hb_label(&h, "a");
    hb_u16(&h, 0xc000 | 18);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    hb_label(&h, "b");
    hb_u16(&h, 0xc00c);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* Pointer beyond the packet; pointer cut in half. */
    hb_header(&h, 0, 1, 0, 0, 0);
    hb_u16(&h, 0xc000 | 0x3fff);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* Reserved label types 01 and 10. */
    for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
        hb_header(&h, 0, 1, 0, 0, 0);
        uint8_t l = (uint8_t)(t | 1);
        hb_bytes(&h, &l, 1);
        hb_bytes(&h, "a", 1);
        hb_bytes(&h, "", 1);
        hb_u16(&h, DNS_T_PTR);
        hb_u16(&h, DNS_CLASS_IN);
        CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    }
    /* A chain of backward pointers that builds a name longer than 255 bytes. */
    hb_header(&h, 0, 5, 0, 0, 0);
    char lab[64];
    memset(lab, 'z', 63);
    lab[63] = '\0';
    size_t prev = 0;
    for (int i = 0; i < 5; i++) {
        size_t at = h.n;
        hb_label(&h, lab);
        if (i == 0) hb_bytes(&h, "", 1);
        else hb_u16(&h, 0xc000 | (unsigned)prev);
        hb_u16(&h, DNS_T_PTR);
        hb_u16(&h, DNS_CLASS_IN);
        prev = at;
    }
    CHECK(dns_parse(h.p, h.n, &MSG) != 0); /* the 4th name is 4*64+1 = 257 bytes */
    h.p[4] = 0, h.p[5] = 3;                /* only the first three: 193 bytes, fine */
    CHECK(dns_parse(h.p, h.n, &MSG) != 0); /* ...but then bytes trail */
    /* Counts larger than the packet. */
    hb_header(&h, 0x8400, 0, 0xffff, 0xffff, 0xffff);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    hb_header(&h, 0, 0xffff, 0, 0, 0);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* A record with a wrong length, a PTR whose name runs out of its rdata. */
    hb_header(&h, 0x8400, 0, 1, 0, 0);
    hb_label(&h, "h");
    hb_bytes(&h, "", 1);
    hb_u16(&h, DNS_T_A);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 1);
    hb_u16(&h, 5);
    hb_bytes(&h, "\1\2\3\4\5", 5);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    hb_header(&h, 0x8400, 0, 1, 0, 0);
    hb_label(&h, "h");
    hb_bytes(&h, "", 1);
    hb_u16(&h, DNS_T_PTR);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 1);
    hb_u16(&h, 2); /* rdata "\3ab" + root would need 5 */
    hb_bytes(&h, "\3abc", 4);
    hb_bytes(&h, "", 1);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    /* A TXT string longer than its rdata; an oversized TXT record. */
    hb_header(&h, 0x8400, 0, 1, 0, 0);
    hb_label(&h, "h");
    hb_bytes(&h, "", 1);
    hb_u16(&h, DNS_T_TXT);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 1);
    hb_u16(&h, 3);
    hb_bytes(&h, "\5ab", 3);
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    hb_header(&h, 0x8400, 0, 1, 0, 0);
    hb_label(&h, "h");
    hb_bytes(&h, "", 1);
    hb_u16(&h, DNS_T_TXT);
    hb_u16(&h, DNS_CLASS_IN);
    hb_u32(&h, 1);
    hb_u16(&h, DNS_TXT_MAX + 1);
    for (int i = 0; i < DNS_TXT_MAX + 1; i++) hb_bytes(&h, "\0", 1); /* empty strings */
    CHECK(dns_parse(h.p, h.n, &MSG) != 0);
    h.p[h.n - DNS_TXT_MAX - 3] = (uint8_t)(DNS_TXT_MAX >> 8);
    h.p[h.n - DNS_TXT_MAX - 2] = (uint8_t)DNS_TXT_MAX;
    CHECK(dns_parse(h.p, h.n - 1, &MSG) == 0); /* exactly the limit is fine */
    /* Oversized packets are refused before reading. */
    static uint8_t big[DNS_PKT_MAX + 1];
    CHECK(dns_parse(big, sizeof big, &MSG) != 0);
    CHECK(dns_parse(NULL, 0, &MSG) != 0);
}

/* ---- the TXT record and its MAC ---- */

/* Rebuilds a TXT rdata from strings and signs it (mac over the others) when
 * sign is set, with key. */
static size_t make_txt(uint8_t *out, const char *const *strs, int n, const uint8_t *key, int sign) {
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(strs[i]);
        out[len++] = (uint8_t)l;
        memcpy(out + len, strs[i], l);
        len += l;
    }
    if (sign) {
        uint8_t mac[32];
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, HIVE_KEY_BYTES, 32);
        crypto_generichash_update(&st, (const uint8_t *)DNSSD_MAC_LABEL, strlen(DNSSD_MAC_LABEL));
        crypto_generichash_update(&st, out, len);
        crypto_generichash_final(&st, mac, 32);
        char s[80] = "mac=";
        sodium_bin2hex(s + 4, sizeof s - 4, mac, 32);
        out[len++] = 68;
        memcpy(out + len, s, 68);
        len += 68;
    }
    return len;
}

static void test_txt(void) {
    int64_t now = time(NULL);
    struct dnssd_announce a = sample(now), b;
    uint8_t txt[DNS_TXT_MAX];
    size_t n = dnssd_txt_build(&a, KEY, txt, sizeof txt);
    CHECK(n > 0 && n < 400);
    CHECK(dnssd_txt_verify(txt, n, KEY, now, &b) == HIVE_OK);
    CHECK(b.node_id == a.node_id && !strcmp(b.name, a.name) && b.port == a.port && b.proto == a.proto);
    CHECK(!strcmp(b.os, a.os) && !strcmp(b.cpu, a.cpu) && b.mem_budget == a.mem_budget);
    CHECK(b.speed_bps == a.speed_bps && b.ts == a.ts && !b.bye);
    /* The MAC is BLAKE2b-256 keyed with the cluster key, as make_txt computes it independently. */
    const char *strs[] = {"v=1", "id=0123456789abcdef", "name=box-a", "port=7070", "proto=1",
                          "os=linux x86_64", "cpu=avx2 fma f16c", "mem=3221225472", "speed=12345678901", NULL};
    char ts[32];
    snprintf(ts, sizeof ts, "ts=%lld", (long long)now);
    strs[9] = ts;
    uint8_t t2[DNS_TXT_MAX];
    size_t n2 = make_txt(t2, strs, 10, KEY, 1);
    CHECK(n2 == n && !memcmp(t2, txt, n));

    CHECK(dnssd_txt_verify(txt, n, OTHER_KEY, now, &b) == HIVE_ERR_AUTH);
    CHECK(dnssd_txt_verify(txt, n, KEY, now + HIVE_DISCOVERY_MAX_SKEW_S, &b) == HIVE_OK);
    CHECK(dnssd_txt_verify(txt, n, KEY, now + HIVE_DISCOVERY_MAX_SKEW_S + 1, &b) == HIVE_ERR_TIMEOUT);
    CHECK(dnssd_txt_verify(txt, n, KEY, now - HIVE_DISCOVERY_MAX_SKEW_S - 1, &b) == HIVE_ERR_TIMEOUT);
    /* Every single-bit flip anywhere is refused. */
    int flips_ok = 1;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            txt[i] ^= (uint8_t)(1u << bit);
            if (dnssd_txt_verify(txt, n, KEY, now, &b) == HIVE_OK) flips_ok = 0;
            txt[i] ^= (uint8_t)(1u << bit);
        }
    CHECK(flips_ok);
    /* Every truncation is refused. */
    int cuts_ok = 1;
    for (size_t i = 0; i < n; i++)
        if (dnssd_txt_verify(txt, i, KEY, now, &b) == HIVE_OK) cuts_ok = 0;
    CHECK(cuts_ok);
    /* Unsigned, doubly signed, signed but malformed. */
    CHECK(dnssd_txt_verify(t2, make_txt(t2, strs, 10, KEY, 0), KEY, now, &b) == HIVE_ERR_AUTH);
    {
        size_t m = make_txt(t2, strs, 10, KEY, 1);
        memcpy(t2 + m, t2 + m - 69, 69);
        CHECK(dnssd_txt_verify(t2, m + 69, KEY, now, &b) == HIVE_ERR_AUTH);
    }
    const char *dup[] = {"v=1", "id=0123456789abcdef", "name=box-a", "port=7070", "proto=1", "os=x", "cpu=",
                         "mem=1", "speed=1", ts, "port=80"};
    CHECK(dnssd_txt_verify(t2, make_txt(t2, dup, 11, KEY, 1), KEY, now, &b) == HIVE_ERR_FORMAT);
    CHECK(dnssd_txt_verify(t2, make_txt(t2, dup, 9, KEY, 1), KEY, now, &b) == HIVE_ERR_FORMAT); /* no ts */
    CHECK(dnssd_txt_verify(t2, make_txt(t2, dup, 10, KEY, 1), KEY, now, &b) == HIVE_OK);
    const char *extra[] = {"v=1", "id=0123456789abcdef", "name=box-a", "port=7070", "proto=1", "os=x", "cpu=",
                           "mem=1", "speed=1", ts, "future=yes"};
    CHECK(dnssd_txt_verify(t2, make_txt(t2, extra, 11, KEY, 1), KEY, now, &b) == HIVE_OK); /* unknown keys pass */
    struct {
        int i;
        const char *v;
    } bad[] = {{0, "v=2"},           {1, "id=0123456789ABCDEF"}, {1, "id=123"},     {2, "name="},
               {2, "name=a\tb"},     {3, "port=0"},              {3, "port=65536"}, {3, "port=-1"},
               {3, "port=+80"},      {4, "proto=x"},             {7, "mem=18446744073709551616"},
               {8, "speed=1e9"},     {9, "ts=-5"},               {9, "ts="},        {5, "os=\x1b[31m"},
               {6, "noequals"},      {6, "=x"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *s2[11];
        memcpy(s2, dup, sizeof s2);
        s2[bad[k].i] = bad[k].v;
        CHECKF(dnssd_txt_verify(t2, make_txt(t2, s2, 10, KEY, 1), KEY, now, &b) == HIVE_ERR_FORMAT, "case %s",
               bad[k].v);
    }
    /* Too many strings; oversized rdata. */
    const char *many[40];
    for (int i = 0; i < 40; i++) many[i] = i < 10 ? dup[i] : "x=1";
    CHECK(dnssd_txt_verify(t2, make_txt(t2, many, 40, KEY, 1), KEY, now, &b) == HIVE_ERR_FORMAT);
    static uint8_t huge[4096];
    CHECK(dnssd_txt_verify(huge, DNS_TXT_MAX + 1, KEY, now, &b) == HIVE_ERR_FORMAT);
    /* The builder refuses what the verifier would refuse. */
    struct dnssd_announce c = a;
    c.port = 0;
    CHECK(dnssd_txt_build(&c, KEY, txt, sizeof txt) == 0);
    c = a;
    snprintf(c.name, sizeof c.name, "a\nb");
    CHECK(dnssd_txt_build(&c, KEY, txt, sizeof txt) == 0);
    CHECK(dnssd_txt_build(&a, KEY, txt, 50) == 0);
}

/* ---- whole messages ---- */

static void test_response_roundtrip(void) {
    int64_t now = time(NULL);
    struct dnssd_announce a = sample(now);
    struct dnssd_self names;
    uint8_t buf[1500];
    size_t n = build_sample(buf, sizeof buf, &a, KEY, 120, &names);
    CHECK(n > 0 && n < 600);
    CHECK(dns_parse(buf, n, &MSG) == 0);
    CHECK(MSG.n_rr == 4 && (MSG.flags & DNS_FLAG_QR) && (MSG.flags & DNS_FLAG_AA));
    CHECK(MSG.rr[0].type == DNS_T_PTR && MSG.rr[0].section == DNS_SEC_AN && !MSG.rr[0].top);
    CHECK(MSG.rr[1].type == DNS_T_SRV && MSG.rr[1].section == DNS_SEC_AR && MSG.rr[1].top);
    CHECK(MSG.rr[2].type == DNS_T_TXT && MSG.rr[2].top);
    CHECK(MSG.rr[3].type == DNS_T_A && !MSG.rr[3].top);
    struct dnssd_found f[4];
    CHECK(dnssd_extract(&MSG, &names, KEY, now, f, 4) == 1);
    CHECK(f[0].complete && f[0].rc == HIVE_OK && f[0].ttl == 120 && f[0].have_addr);
    CHECK(!memcmp(f[0].addr, "\x7f\0\0\1", 4) && f[0].a.node_id == a.node_id && f[0].a.port == 7070);
    CHECK(dns_name_eq(&f[0].instance, &names.instance));
    /* Wrong key, stale: found but not complete. */
    CHECK(dnssd_extract(&MSG, &names, OTHER_KEY, now, f, 4) == 1 && !f[0].complete && f[0].rc == HIVE_ERR_AUTH);
    CHECK(dnssd_extract(&MSG, &names, KEY, now + 400, f, 4) == 1 && !f[0].complete && f[0].rc == HIVE_ERR_TIMEOUT);
    /* A SRV port that differs from the signed one. */
    for (int i = 0; i < MSG.n_rr; i++)
        if (MSG.rr[i].type == DNS_T_SRV) {
            size_t off = (size_t)(MSG.rr[i].rdata - buf) + 4;
            buf[off] ^= 1;
        }
    CHECK(dns_parse(buf, n, &MSG) == 0);
    CHECK(dnssd_extract(&MSG, &names, KEY, now, f, 4) == 1 && !f[0].complete && f[0].rc == HIVE_ERR_FORMAT);
    /* A query is not a response: nothing extracted. */
    n = build_sample(buf, sizeof buf, &a, KEY, 120, &names);
    buf[2] &= 0x7f;
    CHECK(dns_parse(buf, n, &MSG) == 0 && dnssd_extract(&MSG, &names, KEY, now, f, 4) == 0);
    /* Every truncation of the real response is refused. */
    n = build_sample(buf, sizeof buf, &a, KEY, 120, &names);
    int cuts_ok = 1;
    for (size_t i = 0; i < n; i++)
        if (dns_parse(buf, i, &MSG) == 0) cuts_ok = 0;
    CHECK(cuts_ok);
    /* Goodbye: TTL 0 and bye=1, still signed. */
    a.bye = 1;
    n = build_sample(buf, sizeof buf, &a, KEY, 0, &names);
    CHECK(dns_parse(buf, n, &MSG) == 0);
    CHECK(dnssd_extract(&MSG, &names, KEY, now, f, 4) == 1 && f[0].complete && f[0].ttl == 0 && f[0].a.bye);
    /* Too small a buffer: 0, not a partial packet. */
    CHECK(build_sample(buf, 100, &a, KEY, 120, &names) == 0);
}

static void test_queries(void) {
    struct dnssd_self s, other;
    CHECK(dnssd_self_init(&s, "me", 0x1111111100000000ull, "host") == 0);
    CHECK(dnssd_self_init(&other, "you", 0x2222222200000000ull, "host2") == 0);
    uint8_t buf[1500];
    size_t n = dnssd_build_query(buf, sizeof buf, &s, NULL, NULL, NULL, 0);
    CHECK(n > 0 && dns_parse(buf, n, &MSG) == 0 && MSG.n_q == 1 && MSG.q[0].type == DNS_T_PTR);
    CHECK(dnssd_match_query(&MSG, &s, 120) == DNSSD_WANT_PTR);
    /* Known answers: ours with over half the TTL suppresses, with less does not. */
    struct dns_name known[2] = {other.instance, s.instance};
    uint32_t ttl[2] = {100, 60};
    n = dnssd_build_query(buf, sizeof buf, &s, NULL, known, ttl, 2);
    CHECK(dns_parse(buf, n, &MSG) == 0 && MSG.n_rr == 2);
    CHECK(dnssd_match_query(&MSG, &s, 120) == 0);
    CHECK(dnssd_match_query(&MSG, &other, 120) == 0);
    ttl[1] = 59;
    n = dnssd_build_query(buf, sizeof buf, &s, NULL, known, ttl, 2);
    CHECK(dns_parse(buf, n, &MSG) == 0 && dnssd_match_query(&MSG, &s, 120) == DNSSD_WANT_PTR);
    /* Many known answers: the ones that fit are sent, the packet stays valid. */
    static struct dns_name lots[300];
    static uint32_t lots_ttl[300];
    for (int i = 0; i < 300; i++) {
        char label[32];
        snprintf(label, sizeof label, "node-%d-%08x", i, i * 7919);
        CHECK(dns_name_prepend(&lots[i], label, strlen(label), &s.service) == 0);
        lots_ttl[i] = 120;
    }
    n = dnssd_build_query(buf, sizeof buf, &s, NULL, lots, lots_ttl, 300);
    CHECK(n > 0 && n <= sizeof buf && dns_parse(buf, n, &MSG) == 0 && MSG.n_rr > 10 && MSG.n_rr < 300);
    /* Instance queries. */
    n = dnssd_build_query(buf, sizeof buf, &s, &s.instance, NULL, NULL, 0);
    CHECK(dns_parse(buf, n, &MSG) == 0 && MSG.n_q == 2);
    CHECK(dnssd_match_query(&MSG, &s, 120) == DNSSD_WANT_INSTANCE);
    CHECK(dnssd_match_query(&MSG, &other, 120) == 0);
    /* Host, service enumeration, ANY, wrong class, a response with questions. */
    struct dns_wr w;
    dns_wr_init(&w, buf, sizeof buf, 0, 0);
    dns_wr_question(&w, &s.host, DNS_T_A, DNS_CLASS_IN | DNS_CLASS_TOP);
    dns_wr_question(&w, &s.enumerate, DNS_T_PTR, DNS_CLASS_IN);
    dns_wr_question(&w, &s.instance, DNS_T_ANY, DNS_CLASS_IN);
    n = dns_wr_finish(&w);
    CHECK(dns_parse(buf, n, &MSG) == 0 && MSG.q[0].top && MSG.q[0].klass == DNS_CLASS_IN);
    CHECK(dnssd_match_query(&MSG, &s, 120) == (DNSSD_WANT_HOST | DNSSD_WANT_ENUM | DNSSD_WANT_INSTANCE));
    dns_wr_init(&w, buf, sizeof buf, 0, 0);
    dns_wr_question(&w, &s.service, DNS_T_PTR, 3 /* CH */);
    n = dns_wr_finish(&w);
    CHECK(dns_parse(buf, n, &MSG) == 0 && dnssd_match_query(&MSG, &s, 120) == 0);
    dns_wr_init(&w, buf, sizeof buf, 0, DNS_FLAG_QR);
    dns_wr_question(&w, &s.service, DNS_T_PTR, DNS_CLASS_IN);
    n = dns_wr_finish(&w);
    CHECK(dns_parse(buf, n, &MSG) == 0 && dnssd_match_query(&MSG, &s, 120) == 0);

    /* Legacy unicast reply: id and question echoed, TTL <= 10, no cache-flush. */
    dns_wr_init(&w, buf, sizeof buf, 0x4242, 0);
    dns_wr_question(&w, &s.service, DNS_T_PTR, DNS_CLASS_IN);
    n = dns_wr_finish(&w);
    static struct dns_msg q;
    CHECK(dns_parse(buf, n, &q) == 0);
    struct dnssd_announce a = sample(time(NULL));
    uint8_t txt[DNS_TXT_MAX];
    size_t tl = dnssd_txt_build(&a, KEY, txt, sizeof txt);
    n = dnssd_build_response(buf, sizeof buf, &s, txt, tl, 7070, (const uint8_t *)"\x7f\0\0\1", 120,
                             dnssd_match_query(&q, &s, 120), &q);
    CHECK(n > 0 && dns_parse(buf, n, &MSG) == 0);
    CHECK(MSG.id == 0x4242 && MSG.n_q == 1 && MSG.n_rr == 4);
    int legacy_ok = 1;
    for (int i = 0; i < MSG.n_rr; i++) legacy_ok &= MSG.rr[i].ttl <= 10 && !MSG.rr[i].top;
    CHECK(legacy_ok);
}

/* ---- random corruption and garbage ---- */

static void test_fuzz(void) {
    int64_t now = time(NULL);
    struct dnssd_announce a = sample(now);
    struct dnssd_self names;
    uint8_t good[1500], buf[1500];
    size_t n = build_sample(good, sizeof good, &a, KEY, 120, &names);
    int iters = scale(20000), parsed = 0, complete = 0, wrong = 0;
    struct dnssd_found f[MAX_FOUND_TEST];
    for (int it = 0; it < iters; it++) {
        memcpy(buf, good, n);
        size_t len = n;
        int edits = 1 + (int)(rng() % 8);
        for (int e = 0; e < edits; e++) {
            size_t at = rng() % len;
            switch (rng() % 4) {
            case 0: buf[at] = (uint8_t)rng(); break;
            case 1: buf[at] ^= (uint8_t)(1u << (rng() % 8)); break;
            case 2: buf[at] = (uint8_t)(0xc0 | (rng() & 1)); break; /* pointer-ish */
            default: len = at + 1; break;                            /* cut */
            }
        }
        /* Exact-size heap copy so ASan sees any read past the end. */
        uint8_t *p = malloc(len);
        memcpy(p, buf, len);
        if (dns_parse(p, len, &MSG) == 0) {
            parsed++;
            int k = dnssd_extract(&MSG, &names, KEY, now, f, MAX_FOUND_TEST);
            for (int i = 0; i < k; i++) {
                if (!f[i].complete) continue;
                complete++;
                /* Whatever survived the MAC is exactly what was signed. */
                if (f[i].a.node_id != a.node_id || strcmp(f[i].a.name, a.name) || f[i].a.port != a.port ||
                    f[i].a.mem_budget != a.mem_budget || f[i].a.ts != a.ts)
                    wrong++;
            }
            dnssd_match_query(&MSG, &names, 120);
        }
        free(p);
    }
    CHECK(wrong == 0);
    printf("fuzz: %d corrupted packets, %d parsed, %d still complete (all genuine)\n", iters, parsed, complete);
    /* Pure garbage, with a plausible header half the time. */
    int garbage_ok = 1;
    for (int it = 0; it < scale(20000); it++) {
        size_t len = rng() % 600;
        uint8_t *p = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) p[i] = (uint8_t)rng();
        if (len >= 12 && (it & 1)) {
            p[4] = 0, p[5] = (uint8_t)(rng() % 3);
            p[6] = 0, p[7] = (uint8_t)(rng() % 5);
            p[8] = p[9] = p[10] = 0, p[11] = (uint8_t)(rng() % 3);
        }
        if (dns_parse(p, len, &MSG) == 0) {
            int k = dnssd_extract(&MSG, &names, KEY, now, f, MAX_FOUND_TEST);
            for (int i = 0; i < k; i++) garbage_ok &= !f[i].complete;
        }
        free(p);
    }
    CHECK(garbage_ok);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    randombytes_buf(KEY, sizeof KEY);
    randombytes_buf(OTHER_KEY, sizeof OTHER_KEY);
    test_names();
    test_hand_built();
    test_txt();
    test_response_roundtrip();
    test_queries();
    test_fuzz();
    return check_result("test_mdns");
}
