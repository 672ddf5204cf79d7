/* fuzz_dns.c - discovery packets as a node receives them on 5353
 * (src/net/dns.c, dns_sd.c): dns_parse, then what mdns.c does with a
 * message: the questions it would answer (dnssd_match_query) and the
 * answer it would build (legacy unicast included), the instances it would
 * learn (dnssd_extract), and every TXT record through the MAC check.
 *   u8 flags | packet
 * flags & 1: the harness first writes the right MAC into every TXT record
 * that carries a "mac=" string of the right size (a fuzzer cannot find
 * BLAKE2b MACs), so the field parser behind the MAC is reached too. The
 * clock is fixed (FUZZ_NOW) so that inputs replay the same way.
 * Seeds: announcements, goodbyes and queries built by the codec itself. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "net/dns.h"

#define FUZZ_NOW 1700000000

static const uint8_t KEY[HIVE_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* The MAC dns_sd.c computes: BLAKE2b-256 keyed with the cluster key over the
 * label and every string (length byte included) but the mac= one. */
static void remac(uint8_t *rdata, size_t rdlen) {
    size_t off = 0, mac_off = (size_t)-1;
    const uint8_t *s;
    size_t n;
    while (dns_txt_next(rdata, rdlen, &off, &s, &n) == 1)
        if (n == 4 + 2 * DNSSD_MAC_BYTES && !memcmp(s, "mac=", 4)) mac_off = (size_t)(s - 1 - rdata);
    if (mac_off == (size_t)-1) return;
    crypto_generichash_state st;
    crypto_generichash_init(&st, KEY, HIVE_KEY_BYTES, DNSSD_MAC_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)DNSSD_MAC_LABEL, strlen(DNSSD_MAC_LABEL));
    off = 0;
    while (dns_txt_next(rdata, rdlen, &off, &s, &n) == 1)
        if (s - 1 != rdata + mac_off) crypto_generichash_update(&st, s - 1, n + 1);
    uint8_t mac[DNSSD_MAC_BYTES];
    crypto_generichash_final(&st, mac, sizeof mac);
    char hex[2 * DNSSD_MAC_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    memcpy(rdata + mac_off + 5, hex, 2 * DNSSD_MAC_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct dnssd_self self;
    static struct dns_msg m;
    static uint8_t pkt[DNS_PKT_MAX], out[DNS_PKT_MAX];
    static int init;
    if (!init) {
        hive_log_set_level(HIVE_LOG_ERROR);
        if (sodium_init() < 0 || dnssd_self_init(&self, "fuzz", 0x1122334455667788ull, "fuzzhost")) abort();
        init = 1;
    }
    if (size < 1 || size - 1 > sizeof pkt) return 0;
    uint8_t flags = data[0];
    size_t len = size - 1;
    memcpy(pkt, data + 1, len);
    if (dns_parse(pkt, len, &m) != 0) return 0;
    FUZZ_ASSERT(m.n_q >= 0 && m.n_q <= DNS_MAX_Q && m.n_rr >= 0 && m.n_rr <= DNS_MAX_RR);
    if (flags & 1) {
        for (int i = 0; i < m.n_rr; i++)
            if (m.rr[i].type == DNS_T_TXT) remac(pkt + (m.rr[i].rdata - pkt), m.rr[i].rdlen);
        /* MAC bytes can be what a compression pointer points at: parse again. */
        if (dns_parse(pkt, len, &m) != 0) return 0;
    }
    char text[4 * DNS_NAME_MAX + 1];
    for (int i = 0; i < m.n_q; i++) dns_name_to_text(&m.q[i].name, text, sizeof text);
    for (int i = 0; i < m.n_rr; i++) {
        const struct dns_rr *rr = &m.rr[i];
        FUZZ_ASSERT(rr->rdlen == 0 || (rr->rdata >= pkt && rr->rdata + rr->rdlen <= pkt + len));
        dns_name_to_text(&rr->name, text, sizeof text);
        if (rr->type != DNS_T_TXT) continue;
        size_t off = 0;
        const uint8_t *s;
        size_t n;
        while (dns_txt_next(rr->rdata, rr->rdlen, &off, &s, &n) == 1) FUZZ_ASSERT(s + n <= rr->rdata + rr->rdlen);
        struct dnssd_announce a;
        dnssd_txt_verify(rr->rdata, rr->rdlen, KEY, FUZZ_NOW, &a);
    }
    if (!(m.flags & DNS_FLAG_QR)) {
        int want = dnssd_match_query(&m, &self, 120);
        if (want) {
            static const uint8_t addr[4] = {192, 168, 1, 2};
            uint8_t txt[512];
            struct dnssd_announce a;
            memset(&a, 0, sizeof a);
            a.node_id = 1;
            snprintf(a.name, sizeof a.name, "fuzz");
            a.port = 7070;
            a.proto = 2;
            a.ts = FUZZ_NOW;
            size_t tl = dnssd_txt_build(&a, KEY, txt, sizeof txt);
            size_t rl = dnssd_build_response(out, sizeof out, &self, txt, tl, 7070, addr, 120, want, &m);
            if (rl) FUZZ_ASSERT(dns_parse(out, rl, &m) == 0); /* what we send parses */
        }
    } else {
        static struct dnssd_found found[8];
        int n = dnssd_extract(&m, &self, KEY, FUZZ_NOW, found, 8);
        FUZZ_ASSERT(n >= 0 && n <= 8);
    }
    return 0;
}
