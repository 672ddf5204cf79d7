/* mdns.c - the discovery instance (include/hive/discovery.h): one UDP socket
 * on the mDNS port, one thread that answers queries for this node, announces
 * it, browses for peers and keeps the table of verified peers.
 * References: RFC 6762 (sections 5.2 continuous querying and cache refresh,
 * 6 responding and its delays, 6.7 legacy unicast, 7.1 known answers, 8.3
 * announcing, 10.1 goodbyes, 11 source address check), RFC 6763.
 *
 * Timeline of one instance (times from start, ms):
 *   announce: 0, 1000, 3000          (then only answers to queries)
 *   browse:   20..120, then the interval doubles from 1 s up to 1 h;
 *             each peer is re-queried at 80/85/90/95 % of its TTL and
 *             dropped at 100 % (or on a verified goodbye)
 *   stop:     goodbye (TTL 0, "bye=1" in the signed TXT) on every interface
 * Answers to multicast queries go out 20-120 ms after the query (the PTR is
 * shared, RFC 6762 6), at most once a second per interface. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "hive/cluster.h"
#include "hive/discovery.h"
#include "hive/os.h"
#include "net_internal.h"

#define MDNS_GROUP "224.0.0.251"
#define MAX_IFACES 16
#define MAX_FOUND 16          /* instances taken from one message */
#define RECV_BURST 64         /* datagrams handled per wakeup before timers run */
#define QUERY_MAX_INTERVAL_MS (3600 * 1000) /* RFC 6762 5.2 */
#define TOMBSTONES 64         /* node ids that said a verified goodbye */

struct iface {
    unsigned index;
    struct in_addr addr;
    int64_t resp_due_ms;  /* pending multicast answer (0: none) */
    int resp_want;        /* DNSSD_WANT_* of the pending answer */
    int64_t last_resp_ms; /* last multicast answer on this interface */
};

struct peer {
    int used;
    struct hive_peer_info info;
    struct dns_name instance;
    int64_t seen_ms, ttl_ms; /* last refresh and its TTL */
    int refresh_stage;       /* refresh queries sent for this TTL (0..4) */
};

struct hive_discovery {
    uint8_t key[HIVE_KEY_BYTES];
    int announce, browse, mdns_port;
    struct dnssd_announce self;
    struct dnssd_self names;
    void (*on_peer)(void *arg, int event, const struct hive_peer_info *p);
    void *arg;

    int fd, wake[2];
    struct iface ifs[MAX_IFACES];
    int n_ifs;
    pthread_t thread;
    atomic_int stopping;

    int64_t ann_next_ms;
    int ann_count;
    int64_t query_next_ms, query_interval_ms;
    int64_t follow_next_ms; /* rate limit for queries about incomplete instances */

    pthread_mutex_t mu; /* guards peers */
    struct peer peers[HIVE_DISCOVERY_MAX_PEERS];
    /* A replay of an announcement made before a goodbye must not bring the
     * node back; its timestamp is still fresh for up to MAX_SKEW_S. */
    struct {
        uint64_t node_id;
        int64_t ts;
    } gone[TOMBSTONES];
    int n_gone, gone_next; /* entries used; ring position of the next one */

    uint8_t pkt[DNS_PKT_MAX + 1];
    uint8_t out[1500];
    struct dns_msg msg;
    struct dnssd_found found[MAX_FOUND];
};

static int64_t now_ms(void) { return (int64_t)(hive_now_us() / 1000); }

static int64_t unix_now(void) { return (int64_t)time(NULL); }

/* Copies src into dst[cap], cut on a UTF-8 character boundary when too long. */
static void copy_cut(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((uint8_t)src[n] & 0xc0) == 0x80) n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Uniform in [lo, hi]. */
static int64_t jitter(int64_t lo, int64_t hi) { return lo + (int64_t)randombytes_uniform((uint32_t)(hi - lo + 1)); }

/* ---- interfaces and the socket ---- */

/* Every interface to use: the one whose address is want (want.s_addr != 0),
 * or all up, multicast-capable IPv4 ones except loopback (loopback only
 * when there is nothing else). */
static int find_ifaces(struct hive_discovery *d, struct in_addr want, char *err) {
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list)) return hive_errf(err, HIVE_ERR_IO, "getifaddrs: %s", strerror(errno));
    d->n_ifs = 0;
    struct iface lo = {0};
    int have_lo = 0;
    for (struct ifaddrs *a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP)) continue;
        struct in_addr in = ((const struct sockaddr_in *)(const void *)a->ifa_addr)->sin_addr;
        unsigned idx = if_nametoindex(a->ifa_name);
        if (!idx) continue;
        int dup = 0;
        for (int i = 0; i < d->n_ifs; i++) dup |= d->ifs[i].index == idx;
        if (dup) continue;
        if (want.s_addr) {
            if (in.s_addr != want.s_addr) continue;
        } else if (a->ifa_flags & IFF_LOOPBACK) {
            if (!have_lo) lo = (struct iface){.index = idx, .addr = in};
            have_lo = 1;
            continue;
        } else if (!(a->ifa_flags & IFF_MULTICAST)) {
            continue;
        }
        if (d->n_ifs == MAX_IFACES) break;
        d->ifs[d->n_ifs++] = (struct iface){.index = idx, .addr = in};
    }
    freeifaddrs(list);
    if (!d->n_ifs && !want.s_addr && have_lo) d->ifs[d->n_ifs++] = lo;
    if (!d->n_ifs) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &want, a, sizeof a);
        return want.s_addr ? hive_errf(err, HIVE_ERR_INVAL, "discovery: no interface has address %s", a)
                           : hive_errf(err, HIVE_ERR_IO, "discovery: no IPv4 interface is up");
    }
    return HIVE_OK;
}

static int open_socket(struct hive_discovery *d, int loopback, char *err) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return hive_errf(err, HIVE_ERR_IO, "discovery: socket: %s", strerror(errno));
    int one = 1, zero = 0, ttl = 255;
    unsigned char loop = loopback ? 1 : 0, mttl = 255;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) {
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "discovery: SO_REUSEADDR/SO_REUSEPORT: %s", strerror(errno));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->mdns_port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
        int e = errno;
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "discovery: bind UDP port %d: %s", d->mdns_port, strerror(e));
    }
    /* Only the groups this socket joined (Linux delivers every joined group
     * on the host otherwise), the arrival interface of each datagram, TTL 255
     * on everything we send (RFC 6762 11). */
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &mttl, sizeof mttl);
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop)) {
        int e = errno;
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "discovery: IP_MULTICAST_LOOP: %s", strerror(e));
    }
    int joined = 0;
    for (int i = 0; i < d->n_ifs; i++) {
        struct ip_mreqn mr = {.imr_address = d->ifs[i].addr, .imr_ifindex = (int)d->ifs[i].index};
        inet_pton(AF_INET, MDNS_GROUP, &mr.imr_multiaddr);
        if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0 || errno == EADDRINUSE) joined++;
        else hive_log(HIVE_LOG_WARN, "discovery: cannot join %s on interface %u: %s", MDNS_GROUP, d->ifs[i].index,
                      strerror(errno));
    }
    if (!joined) {
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "discovery: cannot join multicast group %s on any interface", MDNS_GROUP);
    }
    d->fd = fd;
    return HIVE_OK;
}

static void send_to(struct hive_discovery *d, const struct iface *ifc, const struct sockaddr_in *to, const void *p,
                    size_t n) {
    if (!n) return;
    struct sockaddr_in group;
    if (!to) {
        struct ip_mreqn mr = {.imr_address = ifc->addr, .imr_ifindex = (int)ifc->index};
        if (setsockopt(d->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr)) return;
        group = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)d->mdns_port)};
        inet_pton(AF_INET, MDNS_GROUP, &group.sin_addr);
        to = &group;
    }
    if (sendto(d->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to, sizeof *to) < 0)
        hive_log(HIVE_LOG_DEBUG, "discovery: send: %s", strerror(errno));
}

/* ---- responder ---- */

static size_t build_answer(struct hive_discovery *d, const struct iface *ifc, uint32_t ttl, int want,
                           const struct dns_msg *legacy_q) {
    uint8_t txt[DNS_TXT_MAX];
    d->self.ts = unix_now();
    d->self.bye = ttl == 0;
    size_t txt_len = dnssd_txt_build(&d->self, d->key, txt, sizeof txt);
    if (!txt_len) return 0;
    const uint8_t *addr = (const uint8_t *)&ifc->addr.s_addr;
    return dnssd_build_response(d->out, sizeof d->out, &d->names, txt, txt_len, d->self.port, addr, ttl, want,
                                legacy_q);
}

static void send_announcement(struct hive_discovery *d, uint32_t ttl) {
    int64_t now = now_ms();
    for (int i = 0; i < d->n_ifs; i++) {
        send_to(d, &d->ifs[i], NULL, d->out, build_answer(d, &d->ifs[i], ttl, DNSSD_WANT_PTR, NULL));
        d->ifs[i].last_resp_ms = now;
    }
}

static void handle_query(struct hive_discovery *d, struct iface *ifc, const struct sockaddr_in *from) {
    int want = dnssd_match_query(&d->msg, &d->names, HIVE_DISCOVERY_TTL_S);
    if (!want) return;
    if (ntohs(from->sin_port) != d->mdns_port) {
        /* Legacy unicast query (dig -p 5353 @224.0.0.251 ...): answer at once,
         * to the sender only. */
        send_to(d, ifc, from, d->out, build_answer(d, ifc, HIVE_DISCOVERY_TTL_S, want, &d->msg));
        return;
    }
    int64_t now = now_ms();
    if (ifc->resp_due_ms) {
        ifc->resp_want |= want;
        return;
    }
    int64_t due = now + jitter(20, 120);
    if (due < ifc->last_resp_ms + 1000) due = ifc->last_resp_ms + 1000;
    ifc->resp_due_ms = due;
    ifc->resp_want = want;
}

/* ---- browser ---- */

static void emit(struct hive_discovery *d, int event, const struct hive_peer_info *p) {
    if (d->on_peer) d->on_peer(d->arg, event, p);
}

static void send_query(struct hive_discovery *d, const struct dns_name *instance) {
    struct dns_name known[HIVE_DISCOVERY_MAX_PEERS];
    uint32_t known_ttl[HIVE_DISCOVERY_MAX_PEERS];
    int n_known = 0;
    int64_t now = now_ms();
    if (!instance) {
        pthread_mutex_lock(&d->mu);
        for (int i = 0; i < HIVE_DISCOVERY_MAX_PEERS; i++) {
            const struct peer *p = &d->peers[i];
            if (!p->used) continue;
            int64_t left = p->seen_ms + p->ttl_ms - now;
            if (left * 2 < p->ttl_ms) continue; /* RFC 6762 7.1: only answers with over half their TTL left */
            known[n_known] = p->instance;
            known_ttl[n_known++] = (uint32_t)(left / 1000);
        }
        pthread_mutex_unlock(&d->mu);
    }
    size_t n = dnssd_build_query(d->out, sizeof d->out, &d->names, instance, known, known_ttl, n_known);
    for (int i = 0; i < d->n_ifs; i++) send_to(d, &d->ifs[i], NULL, d->out, n);
}

static void take_found(struct hive_discovery *d, const struct dnssd_found *f, const struct sockaddr_in *from) {
    if (f->a.node_id == d->self.node_id && d->announce) return; /* ourselves */
    int64_t now = now_ms();
    int event = 0, slot = -1, free_slot = -1;
    struct hive_peer_info info;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < HIVE_DISCOVERY_MAX_PEERS; i++) {
        if (d->peers[i].used && d->peers[i].info.node_id == f->a.node_id) slot = i;
        else if (!d->peers[i].used && free_slot < 0) free_slot = i;
    }
    struct peer *p = slot >= 0 ? &d->peers[slot] : NULL;
    int replay = p && f->a.ts < p->info.announced_unix; /* older than what we have */
    for (int i = 0; i < d->n_gone; i++)
        replay |= d->gone[i].node_id == f->a.node_id && f->a.ts <= d->gone[i].ts;
    if (replay) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    if (f->ttl == 0 || f->a.bye) {
        d->gone[d->gone_next].node_id = f->a.node_id;
        d->gone[d->gone_next].ts = f->a.ts;
        d->gone_next = (d->gone_next + 1) % TOMBSTONES;
        if (d->n_gone < TOMBSTONES) d->n_gone++;
        if (p) {
            info = p->info;
            p->used = 0;
            event = HIVE_PEER_REMOVED;
        }
    } else {
        if (!p && free_slot >= 0) {
            p = &d->peers[free_slot];
            memset(p, 0, sizeof *p);
            p->used = 1;
            event = HIVE_PEER_ADDED;
        }
        if (p) {
            struct hive_peer_info *in = &p->info;
            struct hive_peer_info old = *in;
            in->node_id = f->a.node_id;
            snprintf(in->name, sizeof in->name, "%s", f->a.name);
            struct in_addr a = from->sin_addr;
            if (f->have_addr) memcpy(&a.s_addr, f->addr, 4);
            inet_ntop(AF_INET, &a, in->host, sizeof in->host);
            in->port = f->a.port;
            in->proto = f->a.proto;
            snprintf(in->os, sizeof in->os, "%s", f->a.os);
            snprintf(in->cpu, sizeof in->cpu, "%s", f->a.cpu);
            in->mem_budget = f->a.mem_budget;
            in->speed_bps = f->a.speed_bps;
            in->announced_unix = f->a.ts;
            in->last_seen_ms = (double)now;
            if (!event && (strcmp(old.name, in->name) || strcmp(old.host, in->host) || old.port != in->port ||
                           old.mem_budget != in->mem_budget || old.speed_bps != in->speed_bps))
                event = HIVE_PEER_UPDATED;
            p->instance = f->instance;
            p->seen_ms = now;
            p->ttl_ms = (int64_t)f->ttl * 1000;
            p->refresh_stage = 0;
            info = *in;
        }
    }
    pthread_mutex_unlock(&d->mu);
    if (event) emit(d, event, &info);
}

static void handle_response(struct hive_discovery *d, const struct sockaddr_in *from) {
    int n = dnssd_extract(&d->msg, &d->names, d->key, unix_now(), d->found, MAX_FOUND);
    int64_t now = now_ms();
    for (int i = 0; i < n; i++) {
        const struct dnssd_found *f = &d->found[i];
        if (f->complete) {
            take_found(d, f, from);
        } else if (!f->rc && now >= d->follow_next_ms) {
            /* A PTR without SRV/TXT beside it (a cache answered): ask the
             * instance itself, at most once a second. */
            send_query(d, &f->instance);
            d->follow_next_ms = now + 1000;
        } else if (f->rc) {
            char name[300], addr[INET_ADDRSTRLEN];
            dns_name_to_text(&f->instance, name, sizeof name);
            inet_ntop(AF_INET, &from->sin_addr, addr, sizeof addr);
            hive_log(HIVE_LOG_DEBUG, "discovery: ignored %s from %s: %s", name, addr, hive_status_name(f->rc));
        }
    }
}

/* ---- the thread ---- */

static void handle_packet(struct hive_discovery *d, size_t len, unsigned ifindex, const struct sockaddr_in *from) {
    struct iface *ifc = NULL;
    for (int i = 0; i < d->n_ifs; i++)
        if (d->ifs[i].index == ifindex) ifc = &d->ifs[i];
    if (!ifc) return; /* an interface we do not serve */
    if (dns_parse(d->pkt, len, &d->msg)) return;
    if (d->msg.flags & DNS_FLAG_QR) {
        /* RFC 6762 11: responses must come from port 5353. */
        if (d->browse && ntohs(from->sin_port) == d->mdns_port) handle_response(d, from);
    } else if (d->announce) {
        handle_query(d, ifc, from);
    }
}

static void drain(struct hive_discovery *d) {
    for (int k = 0; k < RECV_BURST; k++) {
        struct sockaddr_in from;
        union {
            char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = d->pkt, .iov_len = sizeof d->pkt};
        struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(d->fd, &mh, MSG_DONTWAIT);
        if (n < 0) return;
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n > DNS_PKT_MAX) continue;
        if (mh.msg_namelen < sizeof from || from.sin_family != AF_INET) continue;
        unsigned ifindex = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof pi);
                ifindex = (unsigned)pi.ipi_ifindex;
            }
        }
        handle_packet(d, (size_t)n, ifindex, &from);
    }
}

/* Runs what is due; returns ms until the next timer. */
static int64_t run_timers(struct hive_discovery *d) {
    int64_t now = now_ms(), next = now + 60000;
    if (d->announce) {
        if (d->ann_count < 3 && now >= d->ann_next_ms) {
            send_announcement(d, HIVE_DISCOVERY_TTL_S);
            d->ann_count++;
            d->ann_next_ms = now + (1000 << (d->ann_count - 1));
        }
        if (d->ann_count < 3 && d->ann_next_ms < next) next = d->ann_next_ms;
        for (int i = 0; i < d->n_ifs; i++) {
            struct iface *ifc = &d->ifs[i];
            if (!ifc->resp_due_ms) continue;
            if (now >= ifc->resp_due_ms) {
                send_to(d, ifc, NULL, d->out, build_answer(d, ifc, HIVE_DISCOVERY_TTL_S, ifc->resp_want, NULL));
                ifc->last_resp_ms = now;
                ifc->resp_due_ms = 0;
            } else if (ifc->resp_due_ms < next) {
                next = ifc->resp_due_ms;
            }
        }
    }
    if (d->browse) {
        if (now >= d->query_next_ms) {
            send_query(d, NULL);
            d->query_next_ms = now + d->query_interval_ms;
            d->query_interval_ms = d->query_interval_ms * 2 > QUERY_MAX_INTERVAL_MS ? QUERY_MAX_INTERVAL_MS
                                                                                    : d->query_interval_ms * 2;
        }
        if (d->query_next_ms < next) next = d->query_next_ms;
        /* Cache maintenance (RFC 6762 5.2): re-query at 80, 85, 90, 95 % of
         * the TTL, drop at 100 %. */
        struct dns_name refresh[8];
        int n_refresh = 0;
        struct hive_peer_info gone[8];
        int n_gone = 0;
        pthread_mutex_lock(&d->mu);
        for (int i = 0; i < HIVE_DISCOVERY_MAX_PEERS; i++) {
            struct peer *p = &d->peers[i];
            if (!p->used) continue;
            int64_t expire = p->seen_ms + p->ttl_ms;
            if (now >= expire) {
                if (n_gone == 8) continue;
                gone[n_gone++] = p->info;
                p->used = 0;
                continue;
            }
            if (expire < next) next = expire;
            if (p->refresh_stage < 4) {
                int64_t at = p->seen_ms + p->ttl_ms * (80 + 5 * p->refresh_stage) / 100;
                if (now >= at && n_refresh < 8) {
                    refresh[n_refresh++] = p->instance;
                    p->refresh_stage++;
                    at = p->seen_ms + p->ttl_ms * (80 + 5 * p->refresh_stage) / 100;
                }
                if (p->refresh_stage < 4 && at < next) next = at;
            }
        }
        pthread_mutex_unlock(&d->mu);
        for (int i = 0; i < n_refresh; i++) send_query(d, &refresh[i]);
        for (int i = 0; i < n_gone; i++) emit(d, HIVE_PEER_REMOVED, &gone[i]);
        if (n_gone == 8 || n_refresh == 8) next = now; /* more to do */
    }
    return next - now > 0 ? next - now : 0;
}

static void *thread_main(void *arg) {
    struct hive_discovery *d = arg;
    while (!atomic_load(&d->stopping)) {
        int64_t wait = run_timers(d);
        struct pollfd pf[2] = {{.fd = d->fd, .events = POLLIN}, {.fd = d->wake[0], .events = POLLIN}};
        int r = poll(pf, 2, (int)(wait > 60000 ? 60000 : wait));
        if (r < 0 && errno != EINTR) break;
        if (r > 0 && (pf[0].revents & POLLIN)) drain(d);
    }
    if (d->announce) send_announcement(d, 0); /* goodbye (RFC 6762 10.1) */
    return NULL;
}

/* ---- API ---- */

int hive_discovery_start(hive_discovery **out, const struct hive_discovery_opts *o, char *err) {
    *out = NULL;
    int rc = net_crypto_init(err);
    if (rc) return rc;
    if (!o->announce && !o->browse) return hive_errf(err, HIVE_ERR_INVAL, "discovery: neither announce nor browse");
    if (o->announce && (o->port < 1 || o->port > 65535))
        return hive_errf(err, HIVE_ERR_INVAL, "discovery: bad port %d to announce", o->port);
    if (o->mdns_port < 0 || o->mdns_port > 65535)
        return hive_errf(err, HIVE_ERR_INVAL, "discovery: bad mDNS port %d", o->mdns_port);
    struct in_addr want = {0};
    if (o->iface_addr && o->iface_addr[0] && inet_pton(AF_INET, o->iface_addr, &want) != 1)
        return hive_errf(err, HIVE_ERR_INVAL, "discovery: bad interface address '%s' (IPv4 wanted)", o->iface_addr);

    struct hive_discovery *d = calloc(1, sizeof *d);
    if (!d) return hive_errf(err, HIVE_ERR_NOMEM, "discovery: out of memory");
    d->fd = d->wake[0] = d->wake[1] = -1;
    memcpy(d->key, o->key, HIVE_KEY_BYTES);
    d->announce = o->announce;
    d->browse = o->browse;
    d->mdns_port = o->mdns_port ? o->mdns_port : HIVE_DISCOVERY_MDNS_PORT;
    const char *env_port = getenv("HIVE_MDNS_PORT");
    if (!o->mdns_port && env_port && *env_port) {
        char *end;
        long v = strtol(env_port, &end, 10);
        if (*end || v < 1 || v > 65535) {
            free(d);
            return hive_errf(err, HIVE_ERR_INVAL, "discovery: bad HIVE_MDNS_PORT '%s'", env_port);
        }
        d->mdns_port = (int)v;
    }
    d->on_peer = o->on_peer;
    d->arg = o->arg;
    pthread_mutex_init(&d->mu, NULL);

    char hostname[256] = "";
    if (hive_host_name(hostname, sizeof hostname)) snprintf(hostname, sizeof hostname, "hive");
    struct dnssd_announce *s = &d->self;
    do randombytes_buf(&s->node_id, sizeof s->node_id);
    while (!s->node_id);
    copy_cut(s->name, sizeof s->name, o->name && o->name[0] ? o->name : hostname);
    if (o->os) copy_cut(s->os, sizeof s->os, o->os);
    else hive_os_name(s->os, sizeof s->os);
    copy_cut(s->cpu, sizeof s->cpu, o->cpu ? o->cpu : "");
    s->port = o->port;
    s->proto = o->proto;
    s->mem_budget = o->mem_budget;
    s->speed_bps = o->speed_bps;
    uint8_t probe[DNS_TXT_MAX];
    if (dnssd_self_init(&d->names, s->name, s->node_id, hostname)) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "discovery: bad node name '%s'", s->name);
        goto fail;
    }
    if (d->announce && !dnssd_txt_build(s, d->key, probe, sizeof probe)) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "discovery: node fields do not fit a TXT record (control characters?)");
        goto fail;
    }
    rc = find_ifaces(d, want, err);
    if (rc) goto fail;
    rc = open_socket(d, o->loopback, err);
    if (rc) goto fail;
    if (pipe2(d->wake, O_CLOEXEC | O_NONBLOCK)) {
        rc = hive_errf(err, HIVE_ERR_IO, "discovery: pipe: %s", strerror(errno));
        goto fail;
    }
    int64_t now = now_ms();
    d->ann_next_ms = now;
    d->query_next_ms = now + jitter(20, 120); /* RFC 6762 5.2 */
    d->query_interval_ms = 1000;
    if (pthread_create(&d->thread, NULL, thread_main, d)) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "discovery: cannot start thread");
        goto fail;
    }
    *out = d;
    return HIVE_OK;
fail:
    if (d->fd >= 0) close(d->fd);
    if (d->wake[0] >= 0) close(d->wake[0]);
    if (d->wake[1] >= 0) close(d->wake[1]);
    pthread_mutex_destroy(&d->mu);
    sodium_memzero(d->key, sizeof d->key);
    free(d);
    return rc;
}

int hive_discovery_peers(hive_discovery *d, struct hive_peer_info *out, int cap) {
    int n = 0;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < HIVE_DISCOVERY_MAX_PEERS; i++) {
        if (!d->peers[i].used) continue;
        if (out && n < cap) out[n] = d->peers[i].info;
        n++;
    }
    pthread_mutex_unlock(&d->mu);
    /* A stable listing: by name, then node id (insertion sort; n is small). */
    int k = out ? (n < cap ? n : cap) : 0;
    for (int i = 1; i < k; i++) {
        struct hive_peer_info x = out[i];
        int j = i - 1;
        while (j >= 0) {
            int c = strcmp(out[j].name, x.name);
            if (c < 0 || (c == 0 && out[j].node_id < x.node_id)) break;
            out[j + 1] = out[j];
            j--;
        }
        out[j + 1] = x;
    }
    return n;
}

uint64_t hive_discovery_node_id(const hive_discovery *d) { return d->self.node_id; }

void hive_discovery_stop(hive_discovery *d) {
    if (!d) return;
    atomic_store(&d->stopping, 1);
    char b = 1;
    if (write(d->wake[1], &b, 1) < 0) {
        /* the pipe is non-blocking and nearly empty; the thread also polls the flag */
    }
    pthread_join(d->thread, NULL);
    close(d->fd);
    close(d->wake[0]);
    close(d->wake[1]);
    pthread_mutex_destroy(&d->mu);
    sodium_memzero(d->key, sizeof d->key);
    free(d);
}
