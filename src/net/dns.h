/* dns.h - DNS message codec (dns.c, RFC 1035 section 4 with the mDNS bits of
 * RFC 6762 section 18) and hive's DNS-SD records (dns_sd.c, RFC 6763).
 * Internal to src/net; the tests use it directly.
 *
 * Message: | id u16 | flags u16 | qdcount u16 | ancount u16 | nscount u16 | arcount u16 |
 *          questions: | name | type u16 | class u16 |          (big-endian)
 *          records:   | name | type u16 | class u16 | ttl u32 | rdlength u16 | rdata |
 * A name is a list of labels | len (1..63) | bytes |, ending in a zero byte
 * or a compression pointer | 11 pppppp pppppppp | to an earlier offset. */
#ifndef HIVE_NET_DNS_H
#define HIVE_NET_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "hive/discovery.h"

#define DNS_NAME_MAX 255   /* wire bytes of an uncompressed name, root included (RFC 1035 2.3.4) */
#define DNS_LABEL_MAX 63
#define DNS_MAX_Q 16       /* questions kept per message; more: the message is refused */
#define DNS_MAX_RR 96      /* records kept per message; the rest is not parsed */
#define DNS_PKT_MAX 9000   /* RFC 6762 17: an mDNS message fits a 9 kB jumbo frame */
#define DNS_TXT_MAX 1300   /* RFC 6763 6.2: TXT records over 1300 bytes are refused */
#define DNS_HEADER_BYTES 12

enum { DNS_T_A = 1, DNS_T_PTR = 12, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_ANY = 255 };
#define DNS_CLASS_IN 1
#define DNS_CLASS_ANY 255
#define DNS_CLASS_TOP 0x8000u /* cache-flush (records) / unicast-response wanted (questions) */
#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_AA 0x0400u
#define DNS_FLAG_TC 0x0200u
#define DNS_OPCODE_MASK 0x7800u

/* A name in uncompressed wire form: labels then the zero byte (len counts it). */
struct dns_name {
    uint8_t len;
    uint8_t b[DNS_NAME_MAX];
};

struct dns_question {
    struct dns_name name;
    uint16_t type, klass; /* klass without the top bit */
    int top;              /* unicast-response bit */
};

enum dns_section { DNS_SEC_AN = 0, DNS_SEC_NS, DNS_SEC_AR };

struct dns_rr {
    struct dns_name name;
    uint16_t type, klass; /* klass without the top bit */
    int top;              /* cache-flush bit */
    int section;          /* enum dns_section */
    uint32_t ttl;
    const uint8_t *rdata; /* into the parsed buffer */
    uint16_t rdlen;
    /* decoded for PTR (target) and SRV (target, prio, weight, port); A: a */
    struct dns_name target;
    uint16_t srv_prio, srv_weight, srv_port;
    uint8_t a[4];
};

struct dns_msg {
    uint16_t id, flags;
    int n_q, n_rr;
    int rr_dropped; /* records beyond DNS_MAX_RR, not parsed */
    struct dns_question q[DNS_MAX_Q];
    struct dns_rr rr[DNS_MAX_RR];
};

/* ---- names ---- */
/* "a.b.c" (no escapes; empty labels refused) -> name. 0 or -1. */
int dns_name_from_text(struct dns_name *n, const char *text);
/* out = label + parent. label: 1..63 arbitrary bytes. 0 or -1 when too long. */
int dns_name_prepend(struct dns_name *out, const void *label, size_t label_len, const struct dns_name *parent);
/* out = n without its first label; -1 for the root. */
int dns_name_parent(const struct dns_name *n, struct dns_name *out);
/* ASCII case-insensitive equality (RFC 1035 2.3.3). */
int dns_name_eq(const struct dns_name *a, const struct dns_name *b);
/* Dotted text with '.', '\\' and bytes outside 0x21..0x7e as \DDD. */
void dns_name_to_text(const struct dns_name *n, char *buf, size_t cap);

/* ---- parser ----
 * Parses a whole message into m (which holds pointers into p). Every count,
 * length, label and compression pointer is checked: a pointer must go to an
 * offset before every offset the name was read from so far, so pointer loops
 * end. Refuses (-1) truncation, trailing bytes after the last parsed record
 * are allowed only when records were dropped; rdata of A/PTR/SRV must be
 * exactly what the type says. Returns 0 or -1. */
int dns_parse(const uint8_t *p, size_t len, struct dns_msg *m);

/* TXT rdata iterator: *off starts at 0; returns 1 with one string in
 * (*s, *n), 0 at the end, -1 when a length runs past the rdata. */
int dns_txt_next(const uint8_t *rdata, size_t rdlen, size_t *off, const uint8_t **s, size_t *n);

/* ---- writer ----
 * Fixed buffer; any overflow sets bad and later writes do nothing. Names
 * are compressed against the suffixes written so far. */
#define DNS_WR_COMP 24
struct dns_wr {
    uint8_t *p;
    size_t len, cap;
    int bad;
    uint16_t counts[4]; /* qd, an, ns, ar: patched into the header by dns_wr_finish */
    int n_comp;
    struct {
        uint16_t off;
        struct dns_name suffix;
    } comp[DNS_WR_COMP];
};
void dns_wr_init(struct dns_wr *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags);
void dns_wr_name(struct dns_wr *w, const struct dns_name *n);
void dns_wr_question(struct dns_wr *w, const struct dns_name *n, uint16_t type, uint16_t klass);
/* Starts a record in section sec; returns the rdlength offset for dns_wr_rr_end. */
size_t dns_wr_rr_begin(struct dns_wr *w, int sec, const struct dns_name *n, uint16_t type, uint16_t klass,
                       uint32_t ttl);
void dns_wr_rr_end(struct dns_wr *w, size_t rdlen_off);
void dns_wr_u16(struct dns_wr *w, uint16_t v);
void dns_wr_u32(struct dns_wr *w, uint32_t v);
void dns_wr_bytes(struct dns_wr *w, const void *p, size_t n);
/* Writes the counts into the header; returns the length, or 0 when bad. */
size_t dns_wr_finish(struct dns_wr *w);

/* ======================================================================
 * hive's DNS-SD records (dns_sd.c)
 * ====================================================================== */

#define DNSSD_MAC_LABEL "hive-announce-v1"
#define DNSSD_MAC_BYTES 32
#define DNSSD_TXT_STRINGS_MAX 32

/* What one node says about itself in its TXT record. */
struct dnssd_announce {
    uint64_t node_id;
    char name[64];
    int port, proto;
    char os[64];
    char cpu[128];
    uint64_t mem_budget, speed_bps;
    int64_t ts;   /* unix seconds */
    int bye;      /* "bye=1": this is a goodbye */
};

/* The TXT rdata (strings, each | len | key=value |) with its MAC into out.
 * Returns the length, 0 when it does not fit or a field is out of range. */
size_t dnssd_txt_build(const struct dnssd_announce *a, const uint8_t key[HIVE_KEY_BYTES], uint8_t *out, size_t cap);
/* Checks a TXT rdata: size, MAC, then every field; then the timestamp
 * against now_unix (+- HIVE_DISCOVERY_MAX_SKEW_S). HIVE_OK with *a filled,
 * HIVE_ERR_AUTH (no or bad MAC), HIVE_ERR_FORMAT (fields), HIVE_ERR_TIMEOUT (stale). */
int dnssd_txt_verify(const uint8_t *rdata, size_t rdlen, const uint8_t key[HIVE_KEY_BYTES], int64_t now_unix,
                     struct dnssd_announce *a);

/* The names this node answers for. */
struct dnssd_self {
    struct dns_name service;  /* _hive._tcp.local */
    struct dns_name instance; /* <name>-<id8>._hive._tcp.local */
    struct dns_name host;     /* <host>.local */
    struct dns_name enumerate;/* _services._dns-sd._udp.local */
};
/* Fills the names from the node name, id and host name (sanitised). */
int dnssd_self_init(struct dnssd_self *s, const char *name, uint64_t node_id, const char *hostname);

/* Which of our records a query asks for (bit set), from its questions, minus
 * those the querier already knows (known answers with more than half the TTL
 * left, RFC 6762 7.1). */
#define DNSSD_WANT_PTR 1
#define DNSSD_WANT_INSTANCE 2 /* SRV / TXT */
#define DNSSD_WANT_HOST 4     /* A */
#define DNSSD_WANT_ENUM 8     /* _services._dns-sd._udp PTR */
int dnssd_match_query(const struct dns_msg *m, const struct dnssd_self *s, uint32_t ttl);

/* A response: the wanted records as answers, the rest of PTR/SRV/TXT/A as
 * additionals. ttl 0 = goodbye. legacy_q: for a legacy unicast reply
 * (RFC 6762 6.7) the query whose id and questions are echoed (TTLs capped
 * at 10 s, no cache-flush bits), else NULL. Returns the length or 0. */
size_t dnssd_build_response(uint8_t *buf, size_t cap, const struct dnssd_self *s, const uint8_t *txt,
                            size_t txt_len, int port, const uint8_t addr[4], uint32_t ttl, int want,
                            const struct dns_msg *legacy_q);

/* A query for the PTR (instance == NULL) with known answers, or for one
 * instance's SRV and TXT. Returns the length or 0. */
size_t dnssd_build_query(uint8_t *buf, size_t cap, const struct dnssd_self *s, const struct dns_name *instance,
                         const struct dns_name *known, const uint32_t *known_ttl, int n_known);

/* One service instance found in a message. */
struct dnssd_found {
    struct dns_name instance;
    int complete;        /* SRV and TXT were present and the TXT verified */
    int rc;              /* dnssd_txt_verify's result when SRV and TXT were present */
    struct dnssd_announce a;
    int have_addr;
    uint8_t addr[4];     /* A record of the SRV target, when present */
    uint32_t ttl;        /* min TTL of SRV and TXT; 0 = goodbye */
};
/* Every _hive._tcp instance named by a PTR or owning a SRV in a response
 * message, at most cap; returns the count. A found entry is complete only
 * when the SRV port equals the TXT port and the TXT verified. */
int dnssd_extract(const struct dns_msg *m, const struct dnssd_self *s, const uint8_t key[HIVE_KEY_BYTES],
                  int64_t now_unix, struct dnssd_found *out, int cap);

#endif
