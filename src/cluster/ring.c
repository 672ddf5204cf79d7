/* ring.c - the nodes a head drives and the pipeline over them (see ring.h):
 * peers, plan, deploy, session end, and the timing analysis of steps.
 *
 * Hop times. Each stage stamps, in its own monotonic clock, when it received
 * a step and when it sent it on, and how long the forward pass took. The
 * time a step spends on the network is exact without any clock sync:
 *   network = (head receive - head send) - sum over stages (send - receive).
 * How that total splits across hops needs the clocks: the head estimates
 * each node's offset from the fastest of a few PINGs (NTP style:
 * offset = t_node - (t_send + rtt/2)), maps the stamps onto its own clock,
 * takes hop = (arrival at next) - (departure from previous), clamps negative
 * values to 0 and scales the hops so they add up to the exact network total.
 * On one machine the clocks are the same (CLOCK_MONOTONIC) and the offsets
 * come out ~0. */
#include "hive/cluster.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "hive/model.h"
#include "hive/discovery.h"
#include "hive/os.h"
#include "hive/trace.h"
#include "proto.h"
#include "ring.h"

#define CONNECT_TIMEOUT_MS 5000
#define N_PINGS 5
#define END_TIMEOUT_MS 1000
#define DEPLOY_TIMEOUT_MS 300000 /* hashing a cached stage or loading a large one */

static int link_request(hive_link *l, uint8_t type, const struct hive_wbuf *w, uint8_t want, const uint8_t **p,
                        size_t *len, int timeout_ms, char *err) {
    int rc = w ? proto_send(l, type, w, err) : hive_link_send(l, type, NULL, 0, NULL, 0, err);
    if (rc) return rc;
    uint8_t got;
    rc = proto_recv_reply(l, &got, p, len, timeout_ms, err);
    if (rc) return rc;
    if (got == MSG_ERROR) {
        struct hive_rbuf r;
        char msg[PROTO_MSG_CAP];
        hive_rbuf_init(&r, *p, *len);
        hive_rbuf_str(&r, msg, sizeof msg);
        return hive_errf(err, HIVE_ERR_IO, "%s", r.bad ? "request refused" : msg);
    }
    if (got != want) return hive_errf(err, HIVE_ERR_PROTO, "unexpected reply %d (wanted %d)", got, want);
    return HIVE_OK;
}

/* Connects, authenticates, says hello, reads capabilities and measures the
 * round trip and clock offset. */
static int peer_open(struct ring_peer *pe, const char *addr, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms,
                     char *err) {
    char host[PROTO_ADDR_CAP], e2[HIVE_ERR_LEN];
    int port = 0, fd = -1;
    proto_copy_str(pe->addr, sizeof pe->addr, addr);
    int rc = hive_net_parse_hostport(addr, host, sizeof host, &port, e2);
    if (!rc) rc = hive_net_connect(host, port, timeout_ms, &fd, e2);
    if (!rc) rc = hive_link_client(&pe->link, fd, key, timeout_ms, e2);
    if (rc) return hive_errf(err, rc, "peer %s: %s", addr, e2);
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = ROLE_CONTROL};
    snprintf(h.name, sizeof h.name, "head");
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_hello_encode(&w, &h);
    const uint8_t *p;
    size_t len;
    rc = link_request(pe->link, MSG_HELLO, &w, MSG_HELLO_OK, &p, &len, timeout_ms, e2);
    hive_wbuf_free(&w);
    if (!rc) rc = link_request(pe->link, MSG_CAPS_REQ, NULL, MSG_CAPS, &p, &len, timeout_ms, e2);
    if (!rc && proto_caps_decode(p, len, &pe->caps) != 0) rc = hive_errf(e2, HIVE_ERR_PROTO, "malformed CAPS");
    if (!rc && pe->caps.proto != HIVE_PROTO_VERSION)
        rc = hive_errf(e2, HIVE_ERR_PROTO, "speaks protocol %u, we speak %d", pe->caps.proto, HIVE_PROTO_VERSION);
    if (!rc) rc = proto_host_check(pe->caps.host, "the node", e2);
    pe->rtt_ms = 1e9;
    for (int i = 0; !rc && i < N_PINGS; i++) {
        uint64_t t0 = hive_now_us();
        rc = proto_send_u64(pe->link, MSG_PING, t0, e2);
        uint8_t type;
        if (!rc) rc = hive_link_recv(pe->link, &type, &p, &len, timeout_ms, e2);
        uint64_t t1 = hive_now_us();
        if (rc) break;
        struct hive_rbuf r;
        hive_rbuf_init(&r, p, len);
        uint64_t echo = hive_rbuf_u64(&r), t_node = hive_rbuf_u64(&r);
        if (type != MSG_PONG || r.bad || echo != t0) {
            rc = hive_errf(e2, HIVE_ERR_PROTO, "bad PONG");
            break;
        }
        double rtt = (double)(t1 - t0) / 1000.0;
        if (rtt < pe->rtt_ms) {
            pe->rtt_ms = rtt;
            pe->offset_us = (int64_t)t_node - (int64_t)(t0 + (t1 - t0) / 2);
        }
    }
    if (rc) return hive_errf(err, rc, "peer %s: %s", addr, e2);
    return HIVE_OK;
}


int hive_peer_query(const char *addr, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, struct hive_peer_status *out,
                    char *err) {
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
    struct ring_peer pe;
    memset(&pe, 0, sizeof pe);
    int rc = peer_open(&pe, addr, key, timeout_ms > 0 ? timeout_ms : CONNECT_TIMEOUT_MS, err);
    hive_link_close(pe.link);
    if (rc) return rc;
    snprintf(out->name, sizeof out->name, "%s", pe.caps.name);
    snprintf(out->os, sizeof out->os, "%s", pe.caps.os);
    snprintf(out->cpu, sizeof out->cpu, "%s", pe.caps.cpu);
    out->threads = (int)pe.caps.threads;
    out->mem_budget = pe.caps.mem_budget;
    out->mem_free = pe.caps.mem_free;
    out->speed_bps = pe.caps.speed_bps;
    out->rtt_ms = pe.rtt_ms;
    for (uint32_t i = 0; i < pe.caps.n_held && i < 16; i++) {
        out->held[i].first = (int)pe.caps.held[i].first;
        out->held[i].last = (int)pe.caps.held[i].last;
        out->held[i].live_seqs = (int)pe.caps.held[i].live_seqs;
        out->n_held++;
    }
    return HIVE_OK;
}

const char *ring_peer_name(const struct ring *r, int i) {
    static __thread char buf[160];
    const struct ring_peer *pe = &r->peers[i];
    snprintf(buf, sizeof buf, "%.40s@%.100s", pe->caps.name[0] ? pe->caps.name : "?", pe->addr);
    return buf;
}

/* The port of "host:port" (0 when there is none). */
static int addr_port(const char *addr) {
    const char *c = strrchr(addr, ':');
    return c ? atoi(c + 1) : 0;
}

int ring_connect_peer(struct ring *r, int i, int timeout_ms, char *err) {
    struct ring_peer *pe = &r->peers[i];
    char addr[PROTO_ADDR_CAP];
    snprintf(addr, sizeof addr, "%s", pe->addr);
    hive_link_close(pe->link);
    pe->link = NULL;
    int rc = peer_open(pe, addr, r->o.key, timeout_ms, err);
    if (rc) {
        hive_link_close(pe->link);
        pe->link = NULL;
        pe->state = PEER_DEAD;
        return rc;
    }
    /* The same node under two addresses (named with --peers and found on the
     * LAN): keep the first. Same name and port is the same node. */
    for (int k = 0; k < r->n_peers; k++) {
        const struct ring_peer *o = &r->peers[k];
        if (k == i || o->state != PEER_ALIVE || strcmp(o->caps.name, pe->caps.name) ||
            addr_port(o->addr) != addr_port(pe->addr))
            continue;
        hive_link_close(pe->link);
        pe->link = NULL;
        pe->state = PEER_DEAD;
        pe->next_retry_us = UINT64_MAX;
        return hive_errf(err, HIVE_ERR_INVAL, "%s is %s, already known as %s", pe->addr, pe->caps.name, o->addr);
    }
    pe->state = PEER_ALIVE;
    pe->last_rx_us = pe->last_ping_us = hive_now_us();
    return HIVE_OK;
}

void ring_drop_peer(struct ring *r, int i, int state) {
    struct ring_peer *pe = &r->peers[i];
    hive_link_close(pe->link);
    pe->link = NULL;
    pe->state = state;
    /* A leaving node is on its way out: do not call it back soon. */
    pe->next_retry_us = hive_now_us() + (state == PEER_LEAVING ? 30000000u : 2000000u);
}

int ring_n_alive(const struct ring *r) {
    int n = 0;
    for (int i = 0; i < r->n_peers; i++) n += r->peers[i].state == PEER_ALIVE;
    return n;
}

/* The in-process node: listens on loopback, reads the model file in place
 * (its directory is the node's model dir) and is first in the ring. */
static int start_local_node(struct ring *r, char *err) {
    struct hive_node_opts no = hive_node_default_opts();
    no.listen = "127.0.0.1:0";
    memcpy(no.key, r->o.key, HIVE_KEY_BYTES);
    no.n_threads = r->o.n_threads;
    no.cache_dir = r->o.cache_dir;
    no.name = "head";
    no.progress = r->o.progress;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", r->model_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    no.model_dir = dir;
    return hive_node_start(&r->local, &no, err);
}

int ring_open(struct ring *r, const struct hive_sched_opts *o, char *err) {
    memset(r, 0, sizeof *r);
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
    if (o->n_peers < 0 || o->n_peers >= HIVE_PLAN_MAX_NODES)
        return hive_errf(err, HIVE_ERR_INVAL, "need 0..%d peers, got %d", HIVE_PLAN_MAX_NODES - 1, o->n_peers);
    r->o = *o;
    r->log = o->log ? o->log : stderr;
    snprintf(r->model_path, sizeof r->model_path, "%s", o->model_path);
    if (o->cache_dir) snprintf(r->cache_dir, sizeof r->cache_dir, "%s", o->cache_dir);
    else hive_default_cache_dir(r->cache_dir, sizeof r->cache_dir);
    int rc = hive_gguf_open(&r->g, r->model_path, err);
    if (!rc) rc = hive_model_read_hparams(r->g, &r->hp, err);
    if (rc) return rc;
    int train = r->hp.n_ctx_train;
    r->n_ctx = o->n_ctx > 0 ? o->n_ctx : (train > 0 && train < 2048 ? train : 2048);
    r->max_seqs = o->max_seqs > 0 ? o->max_seqs : 8;
    if (r->max_seqs > PROTO_MAX_SEQS)
        return hive_errf(err, HIVE_ERR_INVAL, "at most %d sequences at once, asked for %d", PROTO_MAX_SEQS, r->max_seqs);
    if ((uint64_t)r->n_ctx * (uint64_t)r->max_seqs > (1u << 24))
        return hive_errf(err, HIVE_ERR_INVAL, "context %d x %d sequences is too large", r->n_ctx, r->max_seqs);
    rc = hive_file_hash(r->model_path, r->cache_dir, r->model_hash, err);
    if (!rc) rc = hive_model_profile_from_gguf(&r->prof, r->g, r->n_ctx * r->max_seqs, err);
    if (rc) return rc;
    int local = o->n_peers == 0 || o->local_layers;
    r->n_peers = o->n_peers + local;
    r->peers = hive_calloc(HIVE_PLAN_MAX_NODES, sizeof *r->peers);
    if (!r->peers) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    if (local) {
        rc = start_local_node(r, err);
        if (rc) return rc;
        snprintf(r->peers[0].addr, sizeof r->peers[0].addr, "%s", hive_node_address(r->local));
    }
    for (int i = 0; i < o->n_peers; i++) snprintf(r->peers[local + i].addr, sizeof r->peers[0].addr, "%s", o->peers[i]);
    for (int i = 0; i < r->n_peers; i++) {
        /* A node under a connection flood refuses some newcomers at random
         * (its gate): try a few times with a short back-off. */
        for (int attempt = 0;; attempt++) {
            rc = ring_connect_peer(r, i, CONNECT_TIMEOUT_MS, err);
            if (!rc || rc == HIVE_ERR_AUTH || attempt == 4) break;
            hive_sleep_ms(100 << attempt);
        }
        if (rc) return rc;
    }
    if (o->discover_ms > 0) {
        struct hive_discovery_opts d = hive_discovery_default_opts();
        memcpy(d.key, o->key, HIVE_KEY_BYTES);
        d.announce = 0;
        d.iface_addr = o->discover_iface;
        rc = hive_discovery_start(&r->disc, &d, err);
        if (rc) return rc;
        hive_sleep_ms(o->discover_ms);
        int found = ring_add_discovered(r);
        fprintf(r->log, "discovery: %d node%s found on the LAN\n", found, found == 1 ? "" : "s");
        for (int i = r->n_peers - found; i < r->n_peers; i++) {
            char e2[HIVE_ERR_LEN];
            if (ring_connect_peer(r, i, CONNECT_TIMEOUT_MS, e2))
                fprintf(r->log, "discovery: %s: %s\n", r->peers[i].addr, e2);
        }
    }
    return ring_make_plan(r, err);
}

int ring_add_discovered(struct ring *r) {
    if (!r->disc) return 0;
    struct hive_peer_info found[HIVE_PLAN_MAX_NODES];
    int n = hive_discovery_peers(r->disc, found, HIVE_PLAN_MAX_NODES), added = 0;
    if (n > HIVE_PLAN_MAX_NODES) n = HIVE_PLAN_MAX_NODES;
    for (int k = 0; k < n && r->n_peers < HIVE_PLAN_MAX_NODES; k++) {
        char addr[PROTO_ADDR_CAP];
        snprintf(addr, sizeof addr, "%s:%d", found[k].host, found[k].port);
        int known = 0;
        for (int i = 0; i < r->n_peers && !known; i++) known = !strcmp(r->peers[i].addr, addr);
        if (known) continue;
        struct ring_peer *pe = &r->peers[r->n_peers++];
        memset(pe, 0, sizeof *pe);
        snprintf(pe->addr, sizeof pe->addr, "%s", addr);
        pe->state = PEER_DEAD; /* not connected yet */
        added++;
    }
    return added;
}

/* The plan over the ALIVE peers with each peer's speed as measured while
 * it ran (measured_bps, 0 where unknown: its probe), into the given outputs. */
static int plan_alive(const struct ring *r, struct hive_plan_node *nodes, int *node_peer, int *n_nodes,
                      struct hive_plan *plan, char *err) {
    *n_nodes = 0;
    for (int i = 0; i < r->n_peers; i++) {
        const struct ring_peer *pe = &r->peers[i];
        if (pe->state != PEER_ALIVE) continue;
        struct hive_plan_node *nd = &nodes[*n_nodes];
        memset(nd, 0, sizeof *nd);
        snprintf(nd->name, sizeof nd->name, "%.20s@%.40s", pe->caps.name, pe->addr);
        nd->mem_budget = pe->caps.mem_budget;
        nd->speed_bps = pe->measured_bps > 0 ? pe->measured_bps : (double)pe->caps.speed_bps;
        nd->latency_ms = pe->rtt_ms / 2;
        node_peer[(*n_nodes)++] = i;
    }
    if (*n_nodes == 0) return hive_errf(err, HIVE_ERR_IO, "no node is left to run the model");
    struct hive_plan_opts po = {.use_all = r->o.use_all};
    return hive_plan_make(&r->prof, nodes, *n_nodes, &po, plan, err);
}

int ring_make_plan(struct ring *r, char *err) {
    return plan_alive(r, r->nodes, r->node_peer, &r->n_nodes, &r->plan, err);
}

#define SLOW_MEMORY_US 60000000u /* how long a node found slow is taken to be slow */

int ring_balance_check(struct ring *r, double min_gain, char *why, size_t why_cap) {
    int n = r->plan.n_stages;
    if (!r->deployed || n < 1 || ring_n_alive(r) < 2) return 0;
    /* Each stage's speed as it ran: weight bytes it reads per token over its
     * recent compute per step. */
    double now_ms = 0, speed[HIVE_PLAN_MAX_NODES];
    int slowest = -1;
    double slowest_ratio = 1.0;
    for (int i = 0; i < n; i++) {
        const struct hive_plan_stage *ps = &r->plan.stage[i];
        double ms = r->ewma_compute_ms[i];
        if (ms <= 0) return 0;
        speed[i] = (double)ps->read_bytes / (ms / 1000.0);
        /* A node found slow stays slow for a while: under a CPU quota a node
         * given little work looks fast again (its few steps fit the quota),
         * and trusting that would move the layers back and forth. */
        const struct ring_peer *pe = &r->peers[ring_stage_peer(r, i)];
        if (pe->slow_bps > 0 && hive_now_us() < pe->slow_until_us && speed[i] > pe->slow_bps) speed[i] = pe->slow_bps;
        now_ms += ms;
    }
    /* Compare each stage with the fastest: a node several times slower than
     * its peers per byte is the one to unload. */
    double best = 0;
    for (int i = 0; i < n; i++)
        if (speed[i] > best) best = speed[i];
    for (int i = 0; i < n; i++) {
        double ratio = best / speed[i];
        if (ratio > slowest_ratio) {
            slowest_ratio = ratio;
            slowest = i;
        }
    }
    for (int i = 0; i <= n; i++) now_ms += r->ewma_hop_ms[i];
    if (slowest < 0 || slowest_ratio < 1.6) return 0;
    /* Try the plan with every stage's measured speed. */
    double saved[HIVE_PLAN_MAX_NODES];
    for (int i = 0; i < r->n_peers; i++) saved[i] = r->peers[i].measured_bps;
    for (int i = 0; i < n; i++) r->peers[ring_stage_peer(r, i)].measured_bps = speed[i];
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    int node_peer[HIVE_PLAN_MAX_NODES], n_nodes;
    static __thread struct hive_plan trial;
    char err[HIVE_ERR_LEN];
    int rc = plan_alive(r, nodes, node_peer, &n_nodes, &trial, err);
    int moves = !rc && trial.n_stages > 0;
    if (moves) { /* the same ranges on the same nodes is no move */
        int same = trial.n_stages == n;
        for (int i = 0; same && i < n; i++)
            same = node_peer[trial.stage[i].node] == ring_stage_peer(r, i) && trial.stage[i].first == r->plan.stage[i].first &&
                   trial.stage[i].last == r->plan.stage[i].last;
        moves = !same;
    }
    /* The current plan under the same model (measured speeds, estimated
     * hops), so the two figures compare like with like. */
    double cur_ms = 0;
    for (int i = 0; moves && i < n; i++) {
        int k = 0;
        while (k < n_nodes && node_peer[k] != ring_stage_peer(r, i)) k++;
        if (k == n_nodes) {
            moves = 0;
            break;
        }
        cur_ms += hive_plan_stage_cost_ms(&r->prof, &nodes[k], r->plan.stage[i].first, r->plan.stage[i].last);
    }
    if (!moves || trial.total_ms > cur_ms * (1.0 - min_gain)) {
        for (int i = 0; i < r->n_peers; i++) r->peers[i].measured_bps = saved[i];
        return 0;
    }
    struct ring_peer *sp = &r->peers[ring_stage_peer(r, slowest)];
    sp->slow_bps = speed[slowest];
    sp->slow_until_us = hive_now_us() + SLOW_MEMORY_US;
    const struct hive_plan_stage *ps = &r->plan.stage[slowest];
    snprintf(why, why_cap,
             "stage %d on %s runs %.1fx slower per byte than the fastest (%.2f ms per step for layers [%d, %d)); "
             "a new plan expects %.2f ms per token against %.2f ms for this one (%.2f ms measured)",
             slowest, ring_peer_name(r, ring_stage_peer(r, slowest)), slowest_ratio, r->ewma_compute_ms[slowest],
             ps->first, ps->last, trial.total_ms, cur_ms, now_ms);
    return 1;
}

void ring_reset_timing(struct ring *r) {
    memset(r->ewma_compute_ms, 0, sizeof r->ewma_compute_ms);
    memset(r->ewma_hop_ms, 0, sizeof r->ewma_hop_ms);
}

/* ---- deploy ---- */

struct progress {
    FILE *f;
    const char *name;
    double last_ms;
    int tty;
};

static void show_progress(void *arg, uint64_t done, uint64_t total) {
    struct progress *pr = arg;
    if (!pr->tty) return;
    double now = hive_now_ms();
    if (done < total && now - pr->last_ms < 100) return;
    pr->last_ms = now;
    int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(pr->f, "\r  weights -> %-28s [%s] %5.1f%% of %.1f MiB", pr->name, bar,
            total ? 100.0 * (double)done / (double)total : 100.0, (double)total / (1024.0 * 1024.0));
    if (done >= total) fputc('\n', pr->f);
    fflush(pr->f);
}

int ring_deploy(struct ring *h, char *err) {
    h->deployed = 0;
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    int rc = HIVE_OK;
    const char *base = strrchr(h->model_path, '/');
    base = base ? base + 1 : h->model_path;
    for (int s = 0; !rc && s < h->plan.n_stages; s++) {
        const struct hive_plan_stage *st = &h->plan.stage[s];
        struct ring_peer *pe = &h->peers[h->node_peer[st->node]];
        struct proto_query q = {.first = (uint32_t)st->first, .last = (uint32_t)st->last,
                                .file_size = hive_gguf_file_size(h->g)};
        memcpy(q.model, h->model_hash, HIVE_HASH_BYTES);
        proto_copy_str(q.file_name, sizeof q.file_name, base);
        struct hive_wbuf w;
        hive_wbuf_init(&w);
        proto_query_encode(&w, &q);
        const uint8_t *p;
        size_t len;
        char e2[HIVE_ERR_LEN];
        rc = link_request(pe->link, MSG_QUERY, &w, MSG_QUERY_REPLY, &p, &len, DEPLOY_TIMEOUT_MS, e2);
        hive_wbuf_free(&w);
        if (!rc && len != 1) rc = hive_errf(e2, HIVE_ERR_PROTO, "malformed QUERY_REPLY");
        if (rc) {
            rc = hive_errf(err, rc, "%s: %s", h->nodes[st->node].name, e2);
            break;
        }
        h->source[s] = p[0];
        h->sent[s] = 0;
        if (p[0] != SOURCE_NEED) {
            if (!h->quiet) fprintf(h->log, "  stage %d on %s: weights from its %s\n", s, h->nodes[st->node].name,
                    p[0] == SOURCE_CACHE ? "cache" : "model directory");
            continue;
        }
        if (!meta) {
            rc = weights_meta_image(h->g, &meta, &meta_len, err);
            if (rc) break;
        }
        struct progress pr = {.f = stderr, .name = h->nodes[st->node].name, .tty = h->o.progress && !h->quiet && isatty(2)};
        double t0 = hive_now_ms();
        rc = weights_send(pe->link, h->g, meta, meta_len, st->first, st->last, show_progress, &pr, &h->sent[s],
                          DEPLOY_TIMEOUT_MS, e2);
        if (rc) {
            rc = hive_errf(err, rc, "sending weights to %s: %s", h->nodes[st->node].name, e2);
            break;
        }
        double ms = hive_now_ms() - t0;
        char sz[32];
        if (!h->quiet) fprintf(h->log, "  stage %d on %s: sent %s of weights in %.0f ms (%.0f MB/s)\n", s, h->nodes[st->node].name,
                hive_format_size(h->sent[s], sz, sizeof sz), ms, ms > 0 ? (double)h->sent[s] / ms / 1000.0 : 0.0);
    }
    free(meta);
    if (rc) return rc;
    randombytes_buf(&h->session, sizeof h->session);
    /* Last stage first, so each stage's next hop already knows the session. */
    for (int s = h->plan.n_stages - 1; s >= 0; s--) {
        const struct hive_plan_stage *st = &h->plan.stage[s];
        struct proto_setup su = {.session = h->session, .first = (uint32_t)st->first, .last = (uint32_t)st->last,
                                 .n_ctx = (uint32_t)h->n_ctx, .n_threads = (uint32_t)(h->o.n_threads > 0 ? h->o.n_threads : 0),
                                 .wire = (uint8_t)(h->o.wire_f16 ? KIND_F16 : KIND_F32), .stage = (uint8_t)s,
                                 .n_stages = (uint8_t)h->plan.n_stages,
                                 .max_seqs = (uint32_t)h->max_seqs};
        memcpy(su.model, h->model_hash, HIVE_HASH_BYTES);
        if (s + 1 < h->plan.n_stages) proto_copy_str(su.next, sizeof su.next, h->peers[ring_stage_peer(h, s + 1)].addr);
        struct hive_wbuf w;
        hive_wbuf_init(&w);
        proto_setup_encode(&w, &su);
        const uint8_t *p;
        size_t len;
        char e2[HIVE_ERR_LEN];
        rc = link_request(h->peers[h->node_peer[st->node]].link, MSG_SETUP, &w, MSG_OK, &p, &len, DEPLOY_TIMEOUT_MS, e2);
        hive_wbuf_free(&w);
        if (rc) return hive_errf(err, rc, "setting up stage %d on %s: %s", s, h->nodes[st->node].name, e2);
    }
    h->deployed = 1;
    return HIVE_OK;
}

void ring_end_session(struct ring *r) {
    if (!r->deployed) return;
    r->deployed = 0;
    for (int s = 0; s < r->plan.n_stages; s++) {
        hive_link *l = ring_stage_link(r, s);
        if (!l || proto_send_u64(l, MSG_END, r->session, NULL)) continue;
        uint64_t deadline = hive_now_us() + END_TIMEOUT_MS * 1000u;
        for (;;) { /* skip late ring messages until the OK */
            uint8_t type;
            const uint8_t *p;
            size_t len;
            uint64_t now = hive_now_us();
            if (now >= deadline || hive_link_recv(l, &type, &p, &len, (int)((deadline - now) / 1000) + 1, NULL))
                break;
            if (type == MSG_OK) break;
        }
    }
}

void ring_close(struct ring *r) {
    ring_end_session(r);
    for (int i = 0; r->peers && i < r->n_peers; i++) hive_link_close(r->peers[i].link);
    free(r->peers);
    r->peers = NULL;
    hive_discovery_stop(r->disc);
    r->disc = NULL;
    hive_node_stop(r->local);
    r->local = NULL;
    hive_model_profile_free(&r->prof);
    hive_gguf_close(r->g);
    r->g = NULL;
    free(r->recs);
    r->recs = NULL;
}

/* ---- timing analysis ---- */

/* Splits one step's network time into n + 1 hops (see the file header). */
static void step_hops(const struct ring *r, const struct ring_step_rec *rec, double *hop_us) {
    int n = rec->n_tim;
    double raw[PROTO_MAX_STAGES + 1], sum_raw = 0, residence = 0;
    double prev_send = (double)rec->t_send;
    for (int i = 0; i < n; i++) {
        double off = (double)r->peers[ring_stage_peer(r, i)].offset_us;
        double recv = (double)rec->tim[i].t_recv_us - off;
        raw[i] = recv - prev_send;
        prev_send = (double)rec->tim[i].t_send_us - off;
        residence += (double)rec->tim[i].t_send_us - (double)rec->tim[i].t_recv_us;
    }
    raw[n] = (double)rec->t_recv - prev_send;
    double network = (double)(rec->t_recv - rec->t_send) - residence;
    if (network < 0) network = 0;
    for (int i = 0; i <= n; i++) {
        if (raw[i] < 0) raw[i] = 0;
        sum_raw += raw[i];
    }
    for (int i = 0; i <= n; i++) hop_us[i] = sum_raw > 0 ? raw[i] * network / sum_raw : network / (n + 1);
}

#define EWMA_ALPHA 0.1
#define MAX_RECS (1 << 20)

void ring_record_step(struct ring *r, const struct ring_step_rec *rec, int keep) {
    int n = r->plan.n_stages;
    if (rec->n_tim != n) return;
    for (int i = 0; i < n; i++) r->live_seqs[i] = (int)rec->tim[i].live_seqs;
    if (rec->n_seq == 0) return; /* a message that only carried frees */
    for (int i = 0; i < n; i++) {
        struct ring_peer *pe = &r->peers[ring_stage_peer(r, i)];
        pe->tokens += rec->n_tok;
        pe->layer_passes += (uint64_t)rec->n_tok * (uint64_t)(r->plan.stage[i].last - r->plan.stage[i].first);
    }
    double hop_us[PROTO_MAX_STAGES + 1];
    step_hops(r, rec, hop_us);
    for (int i = 0; i < n; i++) {
        double c = rec->tim[i].compute_us / 1000.0;
        r->ewma_compute_ms[i] = r->ewma_compute_ms[i] ? r->ewma_compute_ms[i] + EWMA_ALPHA * (c - r->ewma_compute_ms[i]) : c;
    }
    for (int i = 0; i <= n; i++) {
        double h = hop_us[i] / 1000.0;
        r->ewma_hop_ms[i] = r->ewma_hop_ms[i] ? r->ewma_hop_ms[i] + EWMA_ALPHA * (h - r->ewma_hop_ms[i]) : h;
    }
    if (rec->decode) { /* decode only (with drafts or not) */
        for (int i = 0; i < n; i++) r->sum_compute_us[i] += rec->tim[i].compute_us;
        for (int i = 0; i <= n; i++) r->sum_hop_us[i] += hop_us[i];
        r->sum_ring_us += (double)(rec->t_recv - rec->t_send);
        r->n_decode_steps++;
    }
    if (!keep || r->n_recs >= MAX_RECS) return;
    if (r->n_recs == r->cap_recs) {
        int cap = r->cap_recs ? r->cap_recs * 2 : 256;
        struct ring_step_rec *p = realloc(r->recs, (size_t)cap * sizeof *p);
        if (!p) return;
        r->recs = p;
        r->cap_recs = cap;
    }
    r->recs[r->n_recs++] = *rec;
}

void ring_stage_stats(const struct ring *r, struct hive_sched_stats *st) {
    int n = r->deployed ? r->plan.n_stages : 0;
    st->n_stages = n;
    for (int i = 0; i < n; i++) {
        const struct hive_plan_stage *ps = &r->plan.stage[i];
        struct hive_sched_stage_stats *s = &st->st[i];
        const struct ring_peer *pe = &r->peers[ring_stage_peer(r, i)];
        snprintf(s->name, sizeof s->name, "%s", pe->caps.name);
        snprintf(s->addr, sizeof s->addr, "%s", pe->addr);
        s->first = ps->first;
        s->last = ps->last;
        s->live_seqs = r->live_seqs[i];
        s->compute_ms_avg = r->ewma_compute_ms[i];
        s->hop_in_ms_avg = r->ewma_hop_ms[i];
        s->weight_bytes_sent = r->sent[i];
        s->from_cache = r->source[i];
    }
    st->hop_out_ms_avg = n ? r->ewma_hop_ms[n] : 0;
}

void ring_print_summary(const struct ring *r, FILE *f, int n_prompt, int n_gen, double prefill_ms, double decode_ms) {
    int n = r->plan.n_stages, slow_stage = 0, slow_hop = 0;
    double div = r->n_decode_steps ? (double)r->n_decode_steps * 1000.0 : 1;
    double hop[PROTO_MAX_STAGES + 1] = {0};
    for (int i = 0; i <= n; i++) hop[i] = r->sum_hop_us[i] / div;
    fprintf(f, "per token (decode averages):\n");
    for (int i = 0; i < n; i++) {
        char from[24];
        if (i == 0) snprintf(from, sizeof from, "head");
        else snprintf(from, sizeof from, "stage %d", i - 1);
        double c = r->sum_compute_us[i] / div;
        fprintf(f, "  hop   %-7s -> stage %d  %8.3f ms\n", from, i, hop[i]);
        fprintf(f, "  stage %d  %-32s layers [%d, %d)  compute %8.3f ms\n", i, r->nodes[r->plan.stage[i].node].name,
                r->plan.stage[i].first, r->plan.stage[i].last, c);
        if (c > r->sum_compute_us[slow_stage] / div) slow_stage = i;
    }
    fprintf(f, "  hop   stage %d -> head     %8.3f ms\n", n - 1, hop[n]);
    for (int i = 0; i <= n; i++)
        if (hop[i] > hop[slow_hop]) slow_hop = i;
    fprintf(f, "slowest stage: %d (%s, %.3f ms/token); slowest hop: ", slow_stage,
            r->nodes[r->plan.stage[slow_stage].node].name, r->sum_compute_us[slow_stage] / div);
    if (slow_hop == 0) fprintf(f, "head -> stage 0");
    else if (slow_hop == n) fprintf(f, "stage %d -> head", n - 1);
    else fprintf(f, "stage %d -> stage %d", slow_hop - 1, slow_hop);
    fprintf(f, " (%.3f ms/token)\n", hop[slow_hop]);
    double tps = decode_ms > 0 && n_gen > 1 ? (n_gen - 1) / (decode_ms / 1000.0) : 0;
    uint64_t sent = 0;
    for (int i = 0; i < n; i++) sent += r->sent[i];
    char sz[32];
    fprintf(f, "prompt: %d tok in %.1f ms | generation: %d tok, %.1f tok/s | ring round trip %.3f ms | weights sent: %s\n",
            n_prompt, prefill_ms, n_gen, tps, r->sum_ring_us / div, hive_format_size(sent, sz, sizeof sz));
    /* How honest the plan was: its estimate against what the steps took. */
    double measured = r->sum_ring_us / div;
    if (r->n_decode_steps && measured > 0) {
        double expected = hive_plan_expected_ms(&r->prof, &r->plan, r->nodes);
        fprintf(f, "plan estimate: %.3f ms/token expected, %.3f ms measured (%+.0f%%)\n", expected, measured,
                (expected / measured - 1.0) * 100.0);
    }
}

int ring_write_trace(const struct ring *r, const char *path, char *err) {
    hive_trace *t = hive_trace_new();
    if (!t) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    int n = r->plan.n_stages;
    /* Speculative decoding, from the decode steps: drafted tokens are the
     * rows beyond one per sequence, accepted ones the tokens beyond one. */
    uint64_t passes = 0, drafted = 0, out = 0;
    for (int k = 0; k < r->n_recs; k++) {
        const struct ring_step_rec *rec = &r->recs[k];
        if (!rec->decode) continue;
        passes += rec->n_seq;
        drafted += rec->n_tok - rec->n_seq;
        out += rec->n_out;
    }
    char head[160] = "head";
    if (drafted && passes)
        snprintf(head, sizeof head, "head (drafts %.0f%% of %llu accepted, %.2f tok/pass)",
                 100.0 * (double)(out > passes ? out - passes : 0) / (double)drafted, (unsigned long long)drafted,
                 (double)out / (double)passes);
    hive_trace_name_process(t, 0, head);
    hive_trace_name_thread(t, 0, 0, "ring steps");
    hive_trace_name_thread(t, 0, 100, "hop in");
    for (int i = 0; i < n; i++) {
        int pid = ring_stage_peer(r, i) + 1;
        char name[192];
        snprintf(name, sizeof name, "node %s", r->nodes[r->plan.stage[i].node].name);
        hive_trace_name_process(t, pid, name);
        snprintf(name, sizeof name, "stage %d layers [%d, %d)", i, r->plan.stage[i].first, r->plan.stage[i].last);
        hive_trace_name_thread(t, pid, i, name);
        snprintf(name, sizeof name, "hop into stage %d", i);
        hive_trace_name_thread(t, pid, 100 + i, name);
    }
    for (int k = 0; k < r->n_recs; k++) {
        const struct ring_step_rec *rec = &r->recs[k];
        if (rec->n_tim != n) continue;
        char name[96];
        if (rec->decode && rec->n_tok == rec->n_seq) snprintf(name, sizeof name, "decode (%u sequences)", rec->n_seq);
        else if (rec->decode)
            snprintf(name, sizeof name, "decode + verify (%u sequences, %u drafted, %u tokens out)", rec->n_seq,
                     rec->n_tok - rec->n_seq, rec->n_out);
        else snprintf(name, sizeof name, "step (%u sequences, %u tokens)", rec->n_seq, rec->n_tok);
        hive_trace_complete(t, name, "ring", 0, 0, (double)rec->t_send, (double)(rec->t_recv - rec->t_send), "step", k);
        double hop_us[PROTO_MAX_STAGES + 1];
        step_hops(r, rec, hop_us);
        for (int i = 0; i < n; i++) {
            int pid = ring_stage_peer(r, i) + 1;
            double off = (double)r->peers[ring_stage_peer(r, i)].offset_us;
            double recv = (double)rec->tim[i].t_recv_us - off, send = (double)rec->tim[i].t_send_us - off;
            hive_trace_complete(t, "compute", "stage", pid, i, send - rec->tim[i].compute_us, rec->tim[i].compute_us,
                                "step", k);
            snprintf(name, sizeof name, i == 0 ? "hop head -> 0" : "hop %d -> %d", i - 1, i);
            hive_trace_complete(t, name, "hop", pid, 100 + i, recv - hop_us[i], hop_us[i], "step", k);
        }
        snprintf(name, sizeof name, "hop %d -> head", n - 1);
        hive_trace_complete(t, name, "hop", 0, 100, (double)rec->t_recv - hop_us[n], hop_us[n], "step", k);
    }
    for (int k = 0; k < r->n_recov; k++) {
        const struct ring_recovery_rec *x = &r->recov[k];
        char name[160];
        hive_trace_name_thread(t, 0, 200, "recovery");
        snprintf(name, sizeof name, "recovery: node %.120s lost", x->node);
        uint64_t end = x->t_first_token ? x->t_first_token : x->t_deployed;
        hive_trace_complete(t, name, "recovery", 0, 200, (double)x->t_last_alive, (double)(end - x->t_last_alive), "n", k);
        hive_trace_complete(t, "detection", "recovery", 0, 201, (double)x->t_last_alive,
                            (double)(x->t_detect - x->t_last_alive), "n", k);
        hive_trace_complete(t, "re-plan", "recovery", 0, 201, (double)x->t_detect, (double)(x->t_planned - x->t_detect),
                            "n", k);
        hive_trace_complete(t, "weights + setup", "recovery", 0, 201, (double)x->t_planned,
                            (double)(x->t_deployed - x->t_planned), "n", k);
        if (x->t_first_token)
            hive_trace_complete(t, "replay", "recovery", 0, 201, (double)x->t_deployed,
                                (double)(x->t_first_token - x->t_deployed), "n", k);
    }
    if (r->n_recov) hive_trace_name_thread(t, 0, 201, "recovery parts");
    int rc = hive_trace_write_json(t, path, err);
    hive_trace_free(t);
    return rc;
}
