/* head.c - the head of a pipeline: connects to the peers, plans, deploys
 * weights and drives the ring. It holds no layers; it keeps the token log,
 * sends token ids into stage 0 and receives sampled token ids from the last
 * stage.
 *
 * Per step: one FWD to stage 0 on its control link, one TOKEN back from the
 * last stage on its control link. The head waits with poll() on every
 * control link so that a RING_ERROR from any stage, or a node hanging up,
 * ends the wait at once; a silent ring ends it at the step deadline.
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
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "hive/model.h"
#include "hive/trace.h"
#include "proto.h"

#define HANDSHAKE_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define N_PINGS 5
#define DEPLOY_TIMEOUT_MS 300000 /* hashing a cached stage or loading a large one */

struct head_peer {
    char addr[PROTO_ADDR_CAP];
    hive_link *link;
    struct proto_caps caps;
    double rtt_ms;
    int64_t offset_us; /* node clock - head clock */
};

struct step_rec {
    uint32_t n_tok;
    uint64_t t_send, t_recv; /* head clock */
    uint8_t n_tim;
    struct proto_timing tim[PROTO_MAX_STAGES];
};

struct hive_head {
    struct hive_head_opts o;
    char model_path[4096];
    char cache_dir[2048];
    FILE *log;
    hive_gguf *g;
    struct hive_hparams hp;
    uint8_t model_hash[HIVE_HASH_BYTES];
    struct hive_model_profile prof;
    int n_ctx;
    int n_peers;
    struct head_peer *peers;
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    struct hive_plan plan;
    uint64_t session;
    int deployed;
    uint64_t sent[HIVE_PLAN_MAX_NODES]; /* per stage */
    int source[HIVE_PLAN_MAX_NODES];
    int32_t *log_tok;
    int n_log, cap_log, n_prompt;
    struct step_rec *steps;
    int n_steps, cap_steps;
    double prefill_ms, decode_ms;
};

static int link_request(hive_link *l, uint8_t type, const struct hive_wbuf *w, uint8_t want, const uint8_t **p,
                        size_t *len, int timeout_ms, char *err) {
    int rc = w ? proto_send(l, type, w, err) : hive_link_send(l, type, NULL, 0, NULL, 0, err);
    if (rc) return rc;
    uint8_t got;
    rc = hive_link_recv(l, &got, p, len, timeout_ms, err);
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
static int peer_open(struct head_peer *pe, const char *addr, const uint8_t key[HIVE_KEY_BYTES], char *err) {
    char host[PROTO_ADDR_CAP], e2[HIVE_ERR_LEN];
    int port = 0, fd = -1;
    proto_copy_str(pe->addr, sizeof pe->addr, addr);
    int rc = hive_net_parse_hostport(addr, host, sizeof host, &port, e2);
    if (!rc) rc = hive_net_connect(host, port, CONNECT_TIMEOUT_MS, &fd, e2);
    if (!rc) rc = hive_link_client(&pe->link, fd, key, HANDSHAKE_TIMEOUT_MS, e2);
    if (rc) return hive_errf(err, rc, "peer %s: %s", addr, e2);
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = ROLE_CONTROL};
    snprintf(h.name, sizeof h.name, "head");
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_hello_encode(&w, &h);
    const uint8_t *p;
    size_t len;
    rc = link_request(pe->link, MSG_HELLO, &w, MSG_HELLO_OK, &p, &len, HANDSHAKE_TIMEOUT_MS, e2);
    hive_wbuf_free(&w);
    if (!rc) rc = link_request(pe->link, MSG_CAPS_REQ, NULL, MSG_CAPS, &p, &len, HANDSHAKE_TIMEOUT_MS, e2);
    if (!rc && proto_caps_decode(p, len, &pe->caps) != 0) rc = hive_errf(e2, HIVE_ERR_PROTO, "malformed CAPS");
    if (!rc && pe->caps.proto != HIVE_PROTO_VERSION)
        rc = hive_errf(e2, HIVE_ERR_PROTO, "speaks protocol %u, we speak %d", pe->caps.proto, HIVE_PROTO_VERSION);
    pe->rtt_ms = 1e9;
    for (int i = 0; !rc && i < N_PINGS; i++) {
        uint64_t t0 = hive_now_us();
        rc = proto_send_u64(pe->link, MSG_PING, t0, e2);
        uint8_t type;
        if (!rc) rc = hive_link_recv(pe->link, &type, &p, &len, HANDSHAKE_TIMEOUT_MS, e2);
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

int hive_head_open(hive_head **out, const struct hive_head_opts *o, char *err) {
    *out = NULL;
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
    if (o->n_peers < 1 || o->n_peers > HIVE_PLAN_MAX_NODES)
        return hive_errf(err, HIVE_ERR_INVAL, "need 1..%d peers, got %d", HIVE_PLAN_MAX_NODES, o->n_peers);
    hive_head *h = hive_calloc(1, sizeof *h);
    if (!h) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    h->o = *o;
    h->log = o->log ? o->log : stderr;
    snprintf(h->model_path, sizeof h->model_path, "%s", o->model_path);
    if (o->cache_dir) snprintf(h->cache_dir, sizeof h->cache_dir, "%s", o->cache_dir);
    else hive_default_cache_dir(h->cache_dir, sizeof h->cache_dir);
    int rc = hive_gguf_open(&h->g, h->model_path, err);
    if (!rc) rc = hive_model_read_hparams(h->g, &h->hp, err);
    if (rc) goto fail;
    h->n_ctx = o->n_ctx > 0 ? o->n_ctx : (h->hp.n_ctx_train > 0 && h->hp.n_ctx_train < 4096 ? h->hp.n_ctx_train : 4096);
    rc = hive_file_hash(h->model_path, h->cache_dir, h->model_hash, err);
    if (rc) goto fail;
    rc = hive_model_profile_from_gguf(&h->prof, h->g, h->n_ctx, err);
    if (rc) goto fail;
    h->n_peers = o->n_peers;
    h->peers = hive_calloc((size_t)o->n_peers, sizeof *h->peers);
    if (!h->peers) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < o->n_peers; i++) {
        rc = peer_open(&h->peers[i], o->peers[i], o->key, err);
        if (rc) goto fail;
        struct hive_plan_node *nd = &h->nodes[i];
        snprintf(nd->name, sizeof nd->name, "%.20s@%.40s", h->peers[i].caps.name, h->peers[i].addr);
        nd->mem_budget = h->peers[i].caps.mem_budget;
        nd->speed_bps = (double)h->peers[i].caps.speed_bps;
        nd->latency_ms = h->peers[i].rtt_ms / 2;
    }
    struct hive_plan_opts po = {.use_all = o->use_all};
    rc = hive_plan_make(&h->prof, h->nodes, h->n_peers, &po, &h->plan, err);
    if (rc) goto fail;
    *out = h;
    return HIVE_OK;
fail:
    hive_head_close(h);
    return rc;
}

const struct hive_plan *hive_head_plan(const hive_head *h) { return &h->plan; }
const struct hive_plan_node *hive_head_nodes(const hive_head *h) { return h->nodes; }

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

int hive_head_deploy(hive_head *h, char *err) {
    uint8_t *meta = NULL;
    size_t meta_len = 0;
    int rc = HIVE_OK;
    const char *base = strrchr(h->model_path, '/');
    base = base ? base + 1 : h->model_path;
    for (int s = 0; !rc && s < h->plan.n_stages; s++) {
        const struct hive_plan_stage *st = &h->plan.stage[s];
        struct head_peer *pe = &h->peers[st->node];
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
            fprintf(h->log, "  stage %d on %s: weights from its %s\n", s, h->nodes[st->node].name,
                    p[0] == SOURCE_CACHE ? "cache" : "model directory");
            continue;
        }
        if (!meta) {
            rc = weights_meta_image(h->g, &meta, &meta_len, err);
            if (rc) break;
        }
        struct progress pr = {.f = stderr, .name = h->nodes[st->node].name, .tty = h->o.progress && isatty(2)};
        double t0 = hive_now_ms();
        rc = weights_send(pe->link, h->g, meta, meta_len, st->first, st->last, show_progress, &pr, &h->sent[s],
                          DEPLOY_TIMEOUT_MS, e2);
        if (rc) {
            rc = hive_errf(err, rc, "sending weights to %s: %s", h->nodes[st->node].name, e2);
            break;
        }
        double ms = hive_now_ms() - t0;
        char sz[32];
        fprintf(h->log, "  stage %d on %s: sent %s of weights in %.0f ms (%.0f MB/s)\n", s, h->nodes[st->node].name,
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
                                 .n_stages = (uint8_t)h->plan.n_stages};
        memcpy(su.model, h->model_hash, HIVE_HASH_BYTES);
        if (s + 1 < h->plan.n_stages) proto_copy_str(su.next, sizeof su.next, h->peers[h->plan.stage[s + 1].node].addr);
        struct hive_wbuf w;
        hive_wbuf_init(&w);
        proto_setup_encode(&w, &su);
        const uint8_t *p;
        size_t len;
        char e2[HIVE_ERR_LEN];
        rc = link_request(h->peers[st->node].link, MSG_SETUP, &w, MSG_OK, &p, &len, DEPLOY_TIMEOUT_MS, e2);
        hive_wbuf_free(&w);
        if (rc) return hive_errf(err, rc, "setting up stage %d on %s: %s", s, h->nodes[st->node].name, e2);
    }
    h->deployed = 1;
    return HIVE_OK;
}

/* ---- generation ---- */

static int log_push(hive_head *h, int32_t t) {
    if (h->n_log == h->cap_log) {
        int cap = h->cap_log ? h->cap_log * 2 : 256;
        int32_t *p = realloc(h->log_tok, (size_t)cap * sizeof *p);
        if (!p) return -1;
        h->log_tok = p;
        h->cap_log = cap;
    }
    h->log_tok[h->n_log++] = t;
    return 0;
}

static struct step_rec *step_new(hive_head *h) {
    if (h->n_steps == h->cap_steps) {
        int cap = h->cap_steps ? h->cap_steps * 2 : 256;
        struct step_rec *p = realloc(h->steps, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        h->steps = p;
        h->cap_steps = cap;
    }
    struct step_rec *r = &h->steps[h->n_steps++];
    memset(r, 0, sizeof *r);
    return r;
}

/* Waits for the TOKEN of `step`, watching every stage's control link. */
static int wait_token(hive_head *h, uint32_t step, struct proto_token *tok, char *err) {
    int n = h->plan.n_stages;
    int timeout_ms = h->o.timeout_ms > 0 ? h->o.timeout_ms : 60000;
    uint64_t deadline = hive_now_us() + (uint64_t)timeout_ms * 1000u;
    struct pollfd pfd[HIVE_PLAN_MAX_NODES];
    int last_node = h->plan.stage[n - 1].node;
    for (;;) {
        uint64_t now = hive_now_us();
        if (now >= deadline)
            return hive_errf(err, HIVE_ERR_TIMEOUT, "no token from the ring within %d ms (a stage is stuck or a link is down)",
                             timeout_ms);
        for (int s = 0; s < n; s++) {
            pfd[s].fd = hive_link_fd(h->peers[h->plan.stage[s].node].link);
            pfd[s].events = POLLIN;
            pfd[s].revents = 0;
        }
        int left_ms = (int)((deadline - now + 999) / 1000);
        int pr = poll(pfd, (nfds_t)n, left_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return hive_errf(err, HIVE_ERR_IO, "poll: %s", strerror(errno));
        for (int s = 0; s < n; s++) {
            if (!pfd[s].revents) continue;
            int node = h->plan.stage[s].node;
            uint8_t type;
            const uint8_t *p;
            size_t len;
            char e2[HIVE_ERR_LEN];
            int rc = hive_link_recv(h->peers[node].link, &type, &p, &len,
                                    (int)((deadline - hive_now_us() + 999) / 1000) + 1, e2);
            if (rc == HIVE_ERR_CLOSED)
                return hive_errf(err, rc, "node %s (stage %d) closed the connection during generation",
                                 h->nodes[node].name, s);
            if (rc) return hive_errf(err, rc, "node %s (stage %d): %s", h->nodes[node].name, s, e2);
            if (type == MSG_RING_ERROR) {
                struct proto_ring_error re;
                if (proto_ring_error_decode(p, len, &re) != 0)
                    return hive_errf(err, HIVE_ERR_PROTO, "malformed error from %s", h->nodes[node].name);
                return hive_errf(err, HIVE_ERR_IO, "%s", re.msg);
            }
            if (type == MSG_TOKEN && node == last_node) {
                if (proto_token_decode(p, len, tok) != 0 || tok->session != h->session)
                    return hive_errf(err, HIVE_ERR_PROTO, "malformed token from %s", h->nodes[node].name);
                if (tok->step != step) continue; /* stale */
                if (tok->n_tim != n)
                    return hive_errf(err, HIVE_ERR_PROTO, "token carries %d stage timings, expected %d", tok->n_tim, n);
                return HIVE_OK;
            }
            return hive_errf(err, HIVE_ERR_PROTO, "unexpected message %d from %s", type, h->nodes[node].name);
        }
    }
}

/* One step through the ring: tokens in, a sampled token out. */
static int ring_step(hive_head *h, uint32_t step, const int32_t *toks, int n_tok, int pos,
                     const uint8_t *sampler_wire, int32_t *out, char *err) {
    struct proto_fwd *f = hive_calloc(1, sizeof *f);
    struct proto_token *t = hive_calloc(1, sizeof *t);
    struct step_rec *rec = step_new(h);
    if (!f || !t || !rec) {
        free(f);
        free(t);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    f->session = h->session;
    f->step = step;
    f->pos = (uint32_t)pos;
    f->n_tok = (uint32_t)n_tok;
    f->kind = KIND_TOKENS;
    f->sampler = sampler_wire;
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_fwd_encode_head(&w, f);
    rec->n_tok = (uint32_t)n_tok;
    rec->t_send = hive_now_us();
    char e2[HIVE_ERR_LEN];
    int first_node = h->plan.stage[0].node;
    int rc = w.bad ? hive_errf(e2, HIVE_ERR_NOMEM, "out of memory")
                   : hive_link_send(h->peers[first_node].link, MSG_FWD, w.p, w.len, toks, (size_t)n_tok * 4, e2);
    hive_wbuf_free(&w);
    if (rc) rc = hive_errf(err, rc, "sending to %s (stage 0): %s", h->nodes[first_node].name, e2);
    if (!rc) rc = wait_token(h, step, t, err);
    if (!rc) {
        rec->t_recv = hive_now_us();
        rec->n_tim = t->n_tim;
        memcpy(rec->tim, t->tim, t->n_tim * sizeof *t->tim);
        *out = t->token;
    } else {
        h->n_steps--;
    }
    free(f);
    free(t);
    return rc;
}

int hive_head_generate(hive_head *h, const int32_t *prompt, int n_prompt, int n_predict,
                       const struct hive_sampler *sampler, hive_token_fn on_token, void *arg, char *err) {
    if (!h->deployed) return hive_errf(err, HIVE_ERR_INVAL, "pipeline not deployed");
    if (n_prompt < 1) return hive_errf(err, HIVE_ERR_INVAL, "the prompt is empty");
    if (n_prompt > h->n_ctx)
        return hive_errf(err, HIVE_ERR_INVAL, "prompt is %d tokens but the context holds %d", n_prompt, h->n_ctx);
    if ((uint64_t)n_prompt * 4 > HIVE_LINK_MAX_PAYLOAD / 2)
        return hive_errf(err, HIVE_ERR_INVAL, "prompt too long for one message");
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= h->hp.n_vocab)
            return hive_errf(err, HIVE_ERR_INVAL, "prompt token %d out of range", prompt[i]);
    h->n_log = 0;
    h->n_steps = 0;
    h->prefill_ms = h->decode_ms = 0;
    for (int i = 0; i < n_prompt; i++)
        if (log_push(h, prompt[i])) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    h->n_prompt = n_prompt;
    if (n_predict <= 0) return HIVE_OK;
    uint8_t wire[HIVE_SAMPLER_WIRE_BYTES];
    hive_sampler_encode(sampler, wire);
    double t0 = hive_now_ms();
    int32_t tok;
    int rc = ring_step(h, 0, prompt, n_prompt, 0, wire, &tok, err);
    h->prefill_ms = hive_now_ms() - t0;
    double t1 = hive_now_ms();
    for (int k = 0; !rc; k++) {
        if (log_push(h, tok)) {
            rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
            break;
        }
        if (on_token && on_token(arg, tok)) break;
        if (k + 1 >= n_predict || h->n_log >= h->n_ctx) break;
        rc = ring_step(h, (uint32_t)(k + 1), &tok, 1, h->n_log - 1, NULL, &tok, err);
    }
    h->decode_ms = hive_now_ms() - t1;
    return rc;
}

const int32_t *hive_head_token_log(const hive_head *h, int *n) {
    *n = h->n_log;
    return h->log_tok;
}

/* ---- timing analysis ---- */

/* Splits one step's network time into n + 1 hops (see the file header). */
static void step_hops(const hive_head *h, const struct step_rec *r, double *hop_us) {
    int n = r->n_tim;
    double raw[PROTO_MAX_STAGES + 1], sum_raw = 0, residence = 0;
    double prev_send = (double)r->t_send;
    for (int i = 0; i < n; i++) {
        double off = (double)h->peers[h->plan.stage[i].node].offset_us;
        double recv = (double)r->tim[i].t_recv_us - off;
        raw[i] = recv - prev_send;
        prev_send = (double)r->tim[i].t_send_us - off;
        residence += (double)r->tim[i].t_send_us - (double)r->tim[i].t_recv_us;
    }
    raw[n] = (double)r->t_recv - prev_send;
    double network = (double)(r->t_recv - r->t_send) - residence;
    if (network < 0) network = 0;
    for (int i = 0; i <= n; i++) {
        if (raw[i] < 0) raw[i] = 0;
        sum_raw += raw[i];
    }
    for (int i = 0; i <= n; i++) hop_us[i] = sum_raw > 0 ? raw[i] * network / sum_raw : network / (n + 1);
}

void hive_head_get_stats(const hive_head *h, struct hive_head_stats *st) {
    memset(st, 0, sizeof *st);
    int n = h->plan.n_stages;
    st->n_stages = n;
    st->n_prompt = h->n_prompt;
    st->n_gen = h->n_log - h->n_prompt;
    st->prefill_ms = h->prefill_ms;
    st->decode_ms = h->decode_ms;
    double compute[PROTO_MAX_STAGES] = {0}, hops[PROTO_MAX_STAGES + 1] = {0}, ring = 0;
    int n_dec = 0;
    /* Decode steps (one token); the prefill step when there are none. */
    int only_prefill = h->n_steps <= 1;
    for (int k = 0; k < h->n_steps; k++) {
        const struct step_rec *r = &h->steps[k];
        if (!only_prefill && k == 0) continue;
        if (r->n_tim != n) continue;
        double hop_us[PROTO_MAX_STAGES + 1];
        step_hops(h, r, hop_us);
        for (int i = 0; i < n; i++) compute[i] += r->tim[i].compute_us;
        for (int i = 0; i <= n; i++) hops[i] += hop_us[i];
        ring += (double)(r->t_recv - r->t_send);
        n_dec++;
    }
    double div = n_dec ? n_dec * 1000.0 : 1;
    for (int i = 0; i < n; i++) {
        const struct hive_plan_stage *ps = &h->plan.stage[i];
        struct hive_head_stage_stats *s = &st->st[i];
        snprintf(s->name, sizeof s->name, "%s", h->peers[ps->node].caps.name);
        snprintf(s->addr, sizeof s->addr, "%s", h->peers[ps->node].addr);
        s->first = ps->first;
        s->last = ps->last;
        s->compute_ms_avg = compute[i] / div;
        s->hop_in_ms_avg = hops[i] / div;
        s->weight_bytes_sent = h->sent[i];
        s->from_cache = h->source[i];
        st->weight_bytes_sent += h->sent[i];
    }
    st->hop_out_ms_avg = hops[n] / div;
    st->ring_ms_avg = ring / div;
}

void hive_head_print_summary(const hive_head *h, FILE *f) {
    struct hive_head_stats st;
    hive_head_get_stats(h, &st);
    int n = st.n_stages, slow_stage = 0, slow_hop = 0;
    fprintf(f, "per token (decode averages):\n");
    for (int i = 0; i < n; i++) {
        const struct hive_head_stage_stats *s = &st.st[i];
        char from[24];
        if (i == 0) snprintf(from, sizeof from, "head");
        else snprintf(from, sizeof from, "stage %d", i - 1);
        fprintf(f, "  hop   %-7s -> stage %d  %8.3f ms\n", from, i, s->hop_in_ms_avg);
        fprintf(f, "  stage %d  %-32s layers [%d, %d)  compute %8.3f ms\n", i, h->nodes[h->plan.stage[i].node].name,
                s->first, s->last, s->compute_ms_avg);
        if (s->compute_ms_avg > st.st[slow_stage].compute_ms_avg) slow_stage = i;
        if (s->hop_in_ms_avg > (slow_hop < n ? st.st[slow_hop].hop_in_ms_avg : st.hop_out_ms_avg)) slow_hop = i;
    }
    fprintf(f, "  hop   stage %d -> head     %8.3f ms\n", n - 1, st.hop_out_ms_avg);
    if (st.hop_out_ms_avg > (slow_hop < n ? st.st[slow_hop].hop_in_ms_avg : st.hop_out_ms_avg)) slow_hop = n;
    fprintf(f, "slowest stage: %d (%s, %.3f ms/token); slowest hop: ", slow_stage,
            h->nodes[h->plan.stage[slow_stage].node].name, st.st[slow_stage].compute_ms_avg);
    if (slow_hop == 0) fprintf(f, "head -> stage 0");
    else if (slow_hop == n) fprintf(f, "stage %d -> head", n - 1);
    else fprintf(f, "stage %d -> stage %d", slow_hop - 1, slow_hop);
    fprintf(f, " (%.3f ms/token)\n", slow_hop == n ? st.hop_out_ms_avg : st.st[slow_hop].hop_in_ms_avg);
    double tps = st.decode_ms > 0 && st.n_gen > 1 ? (st.n_gen - 1) / (st.decode_ms / 1000.0) : 0;
    char sz[32];
    fprintf(f, "prompt: %d tok in %.1f ms | generation: %d tok, %.1f tok/s | ring round trip %.3f ms | weights sent: %s\n",
            st.n_prompt, st.prefill_ms, st.n_gen, tps, st.ring_ms_avg,
            hive_format_size(st.weight_bytes_sent, sz, sizeof sz));
}

int hive_head_write_trace(const hive_head *h, const char *path, char *err) {
    hive_trace *t = hive_trace_new();
    if (!t) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    int n = h->plan.n_stages;
    hive_trace_name_process(t, 0, "head");
    hive_trace_name_thread(t, 0, 0, "ring steps");
    hive_trace_name_thread(t, 0, 100, "hop in");
    for (int i = 0; i < n; i++) {
        int pid = h->plan.stage[i].node + 1;
        char name[160];
        snprintf(name, sizeof name, "node %s", h->nodes[h->plan.stage[i].node].name);
        hive_trace_name_process(t, pid, name);
        snprintf(name, sizeof name, "stage %d layers [%d, %d)", i, h->plan.stage[i].first, h->plan.stage[i].last);
        hive_trace_name_thread(t, pid, i, name);
        snprintf(name, sizeof name, "hop into stage %d", i);
        hive_trace_name_thread(t, pid, 100 + i, name);
    }
    for (int k = 0; k < h->n_steps; k++) {
        const struct step_rec *r = &h->steps[k];
        if (r->n_tim != n) continue;
        char name[64];
        snprintf(name, sizeof name, k == 0 ? "prefill (%u tokens)" : "token %d", k == 0 ? r->n_tok : (unsigned)k);
        hive_trace_complete(t, name, "ring", 0, 0, (double)r->t_send, (double)(r->t_recv - r->t_send), "step", k);
        double hop_us[PROTO_MAX_STAGES + 1];
        step_hops(h, r, hop_us);
        for (int i = 0; i < n; i++) {
            int pid = h->plan.stage[i].node + 1;
            double off = (double)h->peers[h->plan.stage[i].node].offset_us;
            double recv = (double)r->tim[i].t_recv_us - off, send = (double)r->tim[i].t_send_us - off;
            hive_trace_complete(t, "compute", "stage", pid, i, send - r->tim[i].compute_us, r->tim[i].compute_us,
                                "step", k);
            snprintf(name, sizeof name, i == 0 ? "hop head -> 0" : "hop %d -> %d", i - 1, i);
            hive_trace_complete(t, name, "hop", pid, 100 + i, recv - hop_us[i], hop_us[i], "step", k);
        }
        snprintf(name, sizeof name, "hop %d -> head", n - 1);
        hive_trace_complete(t, name, "hop", 0, 100, (double)r->t_recv - hop_us[n], hop_us[n], "step", k);
    }
    int rc = hive_trace_write_json(t, path, err);
    hive_trace_free(t);
    return rc;
}

int hive_head_write_stats_json(const hive_head *h, const char *path, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));
    struct hive_head_stats st;
    hive_head_get_stats(h, &st);
    double tps = st.decode_ms > 0 && st.n_gen > 1 ? (st.n_gen - 1) / (st.decode_ms / 1000.0) : 0;
    fprintf(f, "{\"n_prompt\":%d,\"n_gen\":%d,\"weight_bytes_sent\":%llu,\"prefill_ms\":%.3f,\"decode_ms\":%.3f,"
               "\"tok_per_s\":%.3f,\"ring_ms\":%.4f,\"hop_out_ms\":%.4f,\"plan_ms\":%.4f,\n\"tokens\":[",
            st.n_prompt, st.n_gen, (unsigned long long)st.weight_bytes_sent, st.prefill_ms, st.decode_ms, tps,
            st.ring_ms_avg, st.hop_out_ms_avg, h->plan.total_ms);
    for (int i = 0; i < h->n_log; i++) fprintf(f, "%s%d", i ? "," : "", h->log_tok[i]);
    fprintf(f, "],\n\"stages\":[");
    static const char *src[] = {"sent", "cache", "model-dir"};
    for (int i = 0; i < st.n_stages; i++) {
        const struct hive_head_stage_stats *s = &st.st[i];
        fprintf(f, "%s\n {\"node\":%d,\"addr\":\"%s\",\"first\":%d,\"last\":%d,\"weights\":\"%s\",\"weight_bytes_sent\":%llu,"
                   "\"compute_ms\":%.4f,\"hop_in_ms\":%.4f}",
                i ? "," : "", h->plan.stage[i].node, s->addr, s->first, s->last,
                s->from_cache >= 0 && s->from_cache <= 2 ? src[s->from_cache] : "?",
                (unsigned long long)s->weight_bytes_sent, s->compute_ms_avg, s->hop_in_ms_avg);
    }
    fprintf(f, "]}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return hive_errf(err, HIVE_ERR_IO, "write %s failed", path);
    return HIVE_OK;
}

/* Ends the session on every stage and waits briefly for each to confirm,
 * so the nodes have released its memory when the head is gone. */
static void end_session(hive_head *h) {
    for (int s = 0; s < h->plan.n_stages; s++) {
        hive_link *l = h->peers[h->plan.stage[s].node].link;
        if (!l || proto_send_u64(l, MSG_END, h->session, NULL)) continue;
        uint64_t deadline = hive_now_us() + 1000000;
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

void hive_head_close(hive_head *h) {
    if (!h) return;
    if (h->deployed) end_session(h);
    for (int i = 0; h->peers && i < h->n_peers; i++) hive_link_close(h->peers[i].link);
    free(h->peers);
    hive_model_profile_free(&h->prof);
    hive_gguf_close(h->g);
    free(h->log_tok);
    free(h->steps);
    free(h);
}
