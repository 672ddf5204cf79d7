/* node.c - the node daemon: accepts authenticated links and serves stages.
 *
 * Threads: one accept thread, and one thread per link. A link's first frame
 * (HELLO) says whether it is a control link (from a head: requests, weight
 * transfer, setup; and for stage 0 also the ring input) or a data link (from
 * the previous stage of a session: ring input only).
 *
 * A session is one stage of one pipeline: model range, KV cache, thread
 * pool, sampler (last stage), and the data link to the next stage. It is
 * owned by the control link that set it up and dies with it. A data link
 * thread holds a reference while it runs a forward pass, so a session is
 * freed only when nobody uses it. The last stage sends tokens (and any stage
 * sends RING_ERROR) on the owner's control link, whose sends are serialized
 * by a mutex because the control thread answers requests on it too.
 *
 * Robustness: a connection that fails the handshake (no key, garbage,
 * truncated or oversized frames) costs one short-lived thread and is logged.
 * Admission goes through a hive_gate (net.h): until its HELLO is read a
 * connection is unauthenticated, has the gate's short deadline and counts
 * against a small pool of its own (per source address, with random early
 * drop), so idle or garbage connections cannot take the slots of
 * authenticated links; at most MAX_CONNS authenticated links exist at once.
 * Every field from the wire is checked (proto.c, weights.c and here) before
 * use. */
#include "hive/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "hive/model.h"
#include "hive/os.h"
#include "hive/tensor.h"
#include "proto.h"

#define MAX_CONNS 64
#define HANDSHAKE_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define MAX_VERIFIED 16
#define MAX_QUEUED_STEPS 64
#define STAGE_BYTES_PER_THREAD (16u << 20) /* weights read per token that make a thread worth it */ /* ring messages waiting for a stage's worker */

struct conn;

/* One sequence on a stage: its KV cache and, on the last stage, its sampler. */
struct nseq {
    uint64_t id;
    hive_ctx *ctx;
    struct hive_sampler sampler;
    int has_sampler;
};

/* A FWD frame waiting for the stage's worker (a copy of the payload). */
struct fwd_job {
    struct fwd_job *next;
    uint64_t t_recv;
    size_t len;
    uint8_t data[];
};

struct session {
    uint64_t id;
    struct hive_node *node;
    int first, last, n_layer, n_embd, n_vocab, n_ctx, max_seqs;
    int is_first, is_last, wire, index;
    hive_model *model;
    hive_pool *pool;
    struct conn *ctl;  /* owner; receives TOKENS and RING_ERROR */
    hive_link *next;   /* data link to the next stage, NULL on the last */
    uint64_t mem_reserved;
    /* The worker thread's own state. */
    struct nseq *seqs; /* [max_seqs], the first n_seqs in use */
    int n_seqs;
    struct proto_fwd *f;
    struct proto_tokens *tokens;
    struct hive_batch_item *items;
    float *in, *out;
    size_t in_cap, out_cap; /* floats */
    int32_t *tok;
    size_t tok_cap;
    uint16_t *half;
    size_t half_cap;
    /* The queue from the link threads to the worker (guarded by qmu). */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;       /* a job came (or stop) */
    pthread_cond_t qspace_cv; /* a job left: room in the queue */
    struct fwd_job *q_head, *q_tail;
    int q_len;
    int q_stop;
    /* Guarded by node->mu: */
    int refs;
    int dead;
    int live_seqs;      /* n_seqs as others may read it */
    int worker_done;    /* its worker has stopped and sends nothing more */
    int in_fd;          /* fd of the data link feeding it, -1 when none */
    struct session *next_s;
};

struct verified {
    uint8_t model[HIVE_HASH_BYTES];
    int first, last;
    char path[2304];
};

struct conn {
    struct hive_node *node;
    int fd;             /* for shutdown() on stop; owned by link once it exists */
    hive_link *link;
    pthread_mutex_t send_mu;
    int refs;           /* guarded by node->mu: the thread + sessions that send on it */
    char peer_name[PROTO_NAME_CAP];
    char gate_addr[HIVE_GATE_ADDR_CAP]; /* source address, the gate's key */
    int authed;         /* promoted to the gate's authenticated pool */
    /* Control-link state (its own thread only). */
    struct proto_query query;
    int have_query;
    struct weights_rx *rx;
    char rx_error[HIVE_ERR_LEN];
    struct verified verified[MAX_VERIFIED];
    int n_verified;
    struct conn *next_c;
};

struct hive_node {
    struct hive_node_opts o;
    uint8_t key[HIVE_KEY_BYTES];
    char addr[PROTO_ADDR_CAP];
    char cache_dir[2048];
    char model_dir[2048];
    char name[PROTO_NAME_CAP];
    char os[PROTO_NAME_CAP];
    uint64_t mem_budget;
    uint64_t cache_max; /* 0: hive_cache_default_max() */
    int n_threads;
    double speed_bps;
    int listen_fd;
    hive_gate *gate;
    uint64_t refused_logged_us, refused_quiet; /* guarded by mu: rate limit of the refusal warning */
    pthread_t accept_thread;
    atomic_int stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct conn *conns;
    int n_conns;
    struct session *sessions;
    int n_sessions_alive; /* created and not yet destroyed (workers may outlive the table) */
    uint64_t mem_reserved;
    struct hive_node_stats stats;
};

/* ====================================================================
 * Reference counting
 * ==================================================================== */

static void conn_put(struct conn *c) {
    hive_node *n = c->node;
    pthread_mutex_lock(&n->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&n->mu);
    if (!last) return;
    hive_link_close(c->link);
    if (!c->link && c->fd >= 0) hive_sock_close(c->fd);
    weights_rx_free(c->rx);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}

static void session_destroy(struct session *s) {
    hive_node *n = s->node;
    hive_link_close(s->next);
    for (int i = 0; s->seqs && i < s->n_seqs; i++) hive_ctx_free(s->seqs[i].ctx);
    while (s->q_head) {
        struct fwd_job *j = s->q_head;
        s->q_head = j->next;
        free(j);
    }
    hive_pool_free(s->pool);
    hive_model_free(s->model);
    free(s->seqs);
    free(s->f);
    free(s->tokens);
    free(s->items);
    free(s->in);
    free(s->out);
    free(s->tok);
    free(s->half);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_cond_destroy(&s->qspace_cv);
    pthread_mutex_lock(&n->mu);
    n->mem_reserved -= s->mem_reserved;
    n->stats.live_seqs -= (uint64_t)s->n_seqs;
    pthread_mutex_unlock(&n->mu);
    if (s->ctl) conn_put(s->ctl);
    free(s);
    pthread_mutex_lock(&n->mu);
    n->n_sessions_alive--;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static void session_put(struct session *s) {
    hive_node *n = s->node;
    pthread_mutex_lock(&n->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&n->mu);
    if (last) session_destroy(s);
}

/* Looks up a live session and takes a reference. */
static struct session *session_get(hive_node *n, uint64_t id) {
    pthread_mutex_lock(&n->mu);
    struct session *s = n->sessions;
    while (s && s->id != id) s = s->next_s;
    if (s && !s->dead) s->refs++;
    else s = NULL;
    pthread_mutex_unlock(&n->mu);
    return s;
}

/* Unlinks a session from the table, wakes its users and drops the table's
 * reference. */
static void session_kill(struct session *s) {
    hive_node *n = s->node;
    pthread_mutex_lock(&n->mu);
    struct session **pp = &n->sessions;
    while (*pp && *pp != s) pp = &(*pp)->next_s;
    int was_listed = *pp == s;
    if (was_listed) *pp = s->next_s;
    s->dead = 1;
    if (s->in_fd >= 0) hive_sock_shutdown(s->in_fd);
    if (s->next) hive_link_shutdown(s->next);
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_lock(&s->qmu);
    s->q_stop = 1;
    pthread_cond_signal(&s->qcv);
    pthread_cond_broadcast(&s->qspace_cv);
    pthread_mutex_unlock(&s->qmu);
    if (was_listed) session_put(s);
}

/* Kills every session owned by control link c. */
static void kill_sessions_of(hive_node *n, struct conn *c) {
    for (;;) {
        pthread_mutex_lock(&n->mu);
        struct session *s = n->sessions;
        while (s && s->ctl != c) s = s->next_s;
        if (s) s->refs++;
        pthread_mutex_unlock(&n->mu);
        if (!s) return;
        session_kill(s);
        session_put(s);
    }
}

/* ====================================================================
 * Sending helpers
 * ==================================================================== */

static int conn_send(struct conn *c, uint8_t type, const void *head, size_t head_len, const void *body,
                     size_t body_len, char *err) {
    pthread_mutex_lock(&c->send_mu);
    int rc = hive_link_send(c->link, type, head, head_len, body, body_len, err);
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

static int conn_send_w(struct conn *c, uint8_t type, const struct hive_wbuf *w, char *err) {
    if (w->bad) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    return conn_send(c, type, w->p, w->len, NULL, 0, err);
}

static void conn_send_error(struct conn *c, const char *msg) {
    char m[PROTO_MSG_CAP];
    proto_copy_str(m, sizeof m, msg);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    hive_wbuf_str(&w, m);
    conn_send_w(c, MSG_ERROR, &w, NULL);
    hive_wbuf_free(&w);
}

static void conn_send_ok(struct conn *c, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    conn_send(c, MSG_OK, b, sizeof b, NULL, 0, NULL);
}

static void send_ring_error(struct session *s, uint32_t step, const char *msg) {
    struct proto_ring_error e = {.session = s->id, .step = step, .stage = (uint8_t)s->index};
    proto_copy_str(e.msg, sizeof e.msg, msg);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_ring_error_encode(&w, &e);
    conn_send_w(s->ctl, MSG_RING_ERROR, &w, NULL);
    hive_wbuf_free(&w);
}

/* ====================================================================
 * The forward step of a stage
 * ==================================================================== */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    void *q = hive_malloc_array(need, elem);
    if (!q) return -1;
    free(*p);
    *p = q;
    *cap = need;
    return 0;
}

static struct nseq *seq_find(struct session *s, uint64_t id) {
    for (int i = 0; i < s->n_seqs; i++)
        if (s->seqs[i].id == id) return &s->seqs[i];
    return NULL;
}

static void seq_forget(struct session *s, uint64_t id) {
    struct nseq *q = seq_find(s, id);
    if (!q) return;
    hive_ctx_free(q->ctx);
    *q = s->seqs[--s->n_seqs];
    pthread_mutex_lock(&s->node->mu);
    s->node->stats.live_seqs--;
    s->live_seqs--;
    pthread_mutex_unlock(&s->node->mu);
}

/* The stage's sequence for entry q: an existing one, or a new one when the
 * entry starts at position 0. */
static int seq_for_entry(struct session *s, const struct proto_seq *q, struct nseq **out, char *err) {
    struct nseq *x = seq_find(s, q->id);
    if (!x) {
        if (q->pos != 0)
            return hive_errf(err, HIVE_ERR_PROTO, "sequence %016llx is unknown here and does not start at 0",
                             (unsigned long long)q->id);
        if (s->n_seqs >= s->max_seqs)
            return hive_errf(err, HIVE_ERR_INVAL, "all %d sequence slots are in use", s->max_seqs);
        x = &s->seqs[s->n_seqs];
        memset(x, 0, sizeof *x);
        int rc = hive_ctx_create(&x->ctx, s->model, s->first, s->last, s->n_ctx, s->pool, err);
        if (rc) return rc;
        x->id = q->id;
        s->n_seqs++;
        pthread_mutex_lock(&s->node->mu);
        s->node->stats.live_seqs++;
        s->live_seqs++;
        pthread_mutex_unlock(&s->node->mu);
    }
    if ((uint64_t)q->pos + q->n_tok > (uint64_t)s->n_ctx)
        return hive_errf(err, HIVE_ERR_INVAL, "context full: %u + %u positions, the stage holds %d", q->pos, q->n_tok,
                         s->n_ctx);
    if (q->pos > (uint32_t)hive_ctx_n_pos(x->ctx))
        return hive_errf(err, HIVE_ERR_PROTO, "sequence %016llx: position %u leaves a gap after %d",
                         (unsigned long long)q->id, q->pos, hive_ctx_n_pos(x->ctx));
    if (q->sampler && s->is_last) {
        if (hive_sampler_decode(&x->sampler, q->sampler) != 0) return hive_errf(err, HIVE_ERR_PROTO, "bad sampler state");
        x->has_sampler = 1;
    }
    if (s->is_last && (q->flags & SEQ_SAMPLE) && !x->has_sampler)
        return hive_errf(err, HIVE_ERR_PROTO, "no sampler for sequence %016llx", (unsigned long long)q->id);
    *out = x;
    return HIVE_OK;
}

/* Runs one FWD (a micro-batch of sequences) through the stage and sends
 * the result on: hidden states to the next stage, or sampled tokens back to
 * the head. Payload floats travel as raw little-endian (every supported
 * host is little endian). */
static int stage_step(struct session *s, struct proto_fwd *f, uint64_t t_recv, char *err) {
    if (f->session != s->id) return hive_errf(err, HIVE_ERR_PROTO, "message for another session");
    if (f->n_tim != s->index) return hive_errf(err, HIVE_ERR_PROTO, "message skipped a stage");
    for (uint32_t i = 0; i < f->n_free; i++) seq_forget(s, f->free_ids[i]);
    int want_kind_ok = s->is_first ? f->kind == KIND_TOKENS : f->kind == KIND_F32 || f->kind == KIND_F16;
    if (f->n_seq && !want_kind_ok)
        return hive_errf(err, HIVE_ERR_PROTO, "wrong input kind %d for stage %d", f->kind, s->index);
    uint64_t rows = f->n_tok_total;
    uint64_t n_el = s->is_first ? rows : rows * (uint64_t)s->n_embd;
    if (f->payload_len != n_el * proto_kind_elem_bytes(f->kind))
        return hive_errf(err, HIVE_ERR_PROTO, "payload of %zu bytes, expected %llu", f->payload_len,
                         (unsigned long long)(n_el * proto_kind_elem_bytes(f->kind)));
    if (f->kind == KIND_TOKENS) {
        if (grow((void **)&s->tok, &s->tok_cap, rows ? rows : 1, sizeof *s->tok)) goto oom;
        memcpy(s->tok, f->payload, rows * 4);
    } else {
        if (grow((void **)&s->in, &s->in_cap, n_el ? n_el : 1, sizeof *s->in)) goto oom;
        if (f->kind == KIND_F32) {
            memcpy(s->in, f->payload, n_el * 4);
        } else {
            for (uint64_t i = 0; i < n_el; i++) {
                uint16_t h;
                memcpy(&h, f->payload + 2 * i, 2);
                s->in[i] = hive_f16_to_f32(h);
            }
        }
    }
    /* The last stage outputs one row of logits per entry, or one per token
     * for an entry whose draft it verifies. */
    uint64_t out_rows = rows, out_row[PROTO_MAX_SEQS];
    if (s->is_last) {
        out_rows = 0;
        for (uint32_t i = 0; i < f->n_seq; i++) {
            out_row[i] = out_rows;
            out_rows += f->seq[i].flags & SEQ_VERIFY ? f->seq[i].n_tok : 1;
        }
    }
    uint64_t out_floats = out_rows * (uint64_t)(s->is_last ? s->n_vocab : s->n_embd);
    if (grow((void **)&s->out, &s->out_cap, out_floats ? out_floats : 1, sizeof *s->out)) goto oom;
    struct nseq *xs[PROTO_MAX_SEQS];
    uint64_t row = 0;
    for (uint32_t i = 0; i < f->n_seq; i++) {
        const struct proto_seq *q = &f->seq[i];
        int rc = seq_for_entry(s, q, &xs[i], err);
        if (rc) return rc;
        struct hive_batch_item *it = &s->items[i];
        it->ctx = xs[i]->ctx;
        it->tokens = f->kind == KIND_TOKENS ? s->tok + row : NULL;
        it->hidden = f->kind == KIND_TOKENS ? NULL : s->in + row * (uint64_t)s->n_embd;
        it->n_tok = (int)q->n_tok;
        it->pos = (int)q->pos;
        it->out = s->is_last ? s->out + out_row[i] * (uint64_t)s->n_vocab : s->out + row * (uint64_t)s->n_embd;
        it->all_logits = s->is_last && (q->flags & SEQ_VERIFY);
        row += q->n_tok;
    }
    uint64_t t0 = hive_now_us();
    if (f->n_seq) {
        int rc = hive_forward_batch(s->items, (int)f->n_seq, err);
        if (rc) return rc;
    }
    uint64_t compute = hive_now_us() - t0;
    /* Fault injection for tests: a slow stage (HIVE_TEST_STEP_DELAY_MS). */
    static int delay_ms = -1;
    if (delay_ms < 0) {
        const char *d = getenv("HIVE_TEST_STEP_DELAY_MS");
        delay_ms = d ? atoi(d) : 0;
        if (delay_ms < 0 || delay_ms > 10000) delay_ms = 0;
    }
    if (delay_ms && f->n_seq) hive_sleep_ms(delay_ms);

    struct proto_timing me = {.stage = (uint8_t)s->index, .t_recv_us = t_recv,
                              .compute_us = (uint32_t)(compute > UINT32_MAX ? UINT32_MAX : compute),
                              .live_seqs = (uint32_t)s->n_seqs};
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    int rc;
    if (s->is_last) {
        struct proto_tokens *t = s->tokens;
        t->session = s->id;
        t->step = f->step;
        t->n_tim = (uint8_t)(f->n_tim + 1);
        t->n = 0;
        for (uint32_t i = 0; i < f->n_seq; i++) {
            const struct proto_seq *q = &f->seq[i];
            if (!(q->flags & SEQ_SAMPLE)) continue;
            struct nseq *x = xs[i];
            if (!(q->flags & SEQ_VERIFY)) {
                int32_t tok = hive_sample(&x->sampler, s->items[i].out, s->n_vocab);
                hive_sampler_accept(&x->sampler, tok);
                t->out[t->n++] = (struct proto_sampled){.id = x->id, .token = tok, .rng = x->sampler.rng};
                continue;
            }
            /* Token j's logits verify draft token j; the first token that
             * disagrees is the correction and ends the entry. After all n-1
             * agree, the last row gives one token more. */
            for (uint32_t j = 0; j < q->n_tok; j++) {
                int32_t d = j + 1 < q->n_tok ? proto_seq_draft(q, j) : -1;
                float *logits = s->items[i].out + (uint64_t)j * (uint64_t)s->n_vocab;
                int32_t tok = hive_sample_verify(&x->sampler, logits, s->n_vocab, d);
                hive_sampler_accept(&x->sampler, tok);
                t->out[t->n++] = (struct proto_sampled){.id = x->id, .token = tok, .rng = x->sampler.rng};
                if (tok != d) break;
            }
        }
        memcpy(t->tim, f->tim, f->n_tim * sizeof *f->tim);
        me.t_send_us = hive_now_us();
        t->tim[f->n_tim] = me;
        proto_tokens_encode(&w, t);
        rc = conn_send_w(s->ctl, MSG_TOKENS, &w, err);
    } else {
        const void *body = s->out;
        size_t n = (size_t)rows * (size_t)s->n_embd;
        size_t body_len = n * 4;
        uint8_t kind = (uint8_t)s->wire;
        if (kind == KIND_F16) {
            if (grow((void **)&s->half, &s->half_cap, n ? n : 1, sizeof *s->half)) {
                hive_wbuf_free(&w);
                goto oom;
            }
            for (size_t i = 0; i < n; i++) s->half[i] = hive_f32_to_f16(s->out[i]);
            body = s->half;
            body_len = n * 2;
        }
        /* Forwarded in place: the same entries and frees, this stage's
         * timing appended, the payload now hidden states. */
        f->kind = kind;
        me.t_send_us = hive_now_us();
        f->tim[f->n_tim++] = me;
        proto_fwd_encode_head(&w, f);
        rc = w.bad ? hive_errf(err, HIVE_ERR_NOMEM, "out of memory")
                   : hive_link_send(s->next, MSG_FWD, w.p, w.len, body, body_len, err);
        if (rc) {
            char m[HIVE_ERR_LEN];
            snprintf(m, sizeof m, "%s", err ? err : "");
            hive_errf(err, rc, "sending to the next stage: %s", m);
        }
    }
    hive_wbuf_free(&w);
    return rc;
oom:
    return hive_errf(err, HIVE_ERR_NOMEM, "out of memory for %llu rows", (unsigned long long)rows);
}

/* The worker: runs the session's FWDs one at a time, in arrival order (the
 * ring keeps each link in order, so a stage sees micro-batches and frees in
 * the order the head sent them). Errors go back to the head as RING_ERROR.
 * A malformed frame kills the session. */
static void *session_worker(void *arg) {
    struct session *s = arg;
    hive_node *n = s->node;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->q_head && !s->q_stop) pthread_cond_wait(&s->qcv, &s->qmu);
        struct fwd_job *j = s->q_stop ? NULL : s->q_head;
        if (j) {
            s->q_head = j->next;
            if (!s->q_head) s->q_tail = NULL;
            s->q_len--;
            pthread_cond_signal(&s->qspace_cv);
        }
        pthread_mutex_unlock(&s->qmu);
        if (!j) break;
        char err[HIVE_ERR_LEN] = "";
        int rc;
        if (proto_fwd_decode(j->data, j->len, s->f) != 0) {
            rc = hive_errf(err, HIVE_ERR_PROTO, "malformed ring message");
            s->f->step = 0;
        } else {
            rc = stage_step(s, s->f, j->t_recv, err);
        }
        pthread_mutex_lock(&n->mu);
        int dead = s->dead;
        pthread_mutex_unlock(&n->mu);
        if (rc && !dead) {
            char msg[HIVE_ERR_LEN + PROTO_NAME_CAP + 32];
            snprintf(msg, sizeof msg, "stage %d on %s: %s", s->index, n->name, err);
            hive_log(HIVE_LOG_WARN, "node: %s", msg);
            send_ring_error(s, s->f->step, msg);
        }
        free(j);
    }
    pthread_mutex_lock(&n->mu);
    s->worker_done = 1;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    session_put(s);
    return NULL;
}

/* Queues a FWD frame for its session's worker. The session is s_given (a
 * data link) or found from the frame (stage 0's input on a control link).
 * Returns nonzero when the link should close (a malformed frame). */
static int handle_fwd(hive_node *n, struct session *s_given, const uint8_t *p, size_t len, uint64_t t_recv) {
    if (len < 8) {
        hive_log(HIVE_LOG_WARN, "node: malformed ring message dropped");
        return -1;
    }
    uint64_t id = 0;
    for (int i = 0; i < 8; i++) id |= (uint64_t)p[i] << (8 * i);
    struct session *s = s_given ? s_given : session_get(n, id);
    if (!s) {
        hive_log(HIVE_LOG_WARN, "node: ring message for an unknown session");
        return 0;
    }
    struct fwd_job *j = malloc(sizeof *j + len);
    if (j) {
        j->next = NULL;
        j->t_recv = t_recv;
        j->len = len;
        memcpy(j->data, p, len);
        pthread_mutex_lock(&s->qmu);
        /* Back-pressure: a link that runs ahead of the stage waits here, and
         * TCP slows its sender down, instead of the queue growing. */
        while (s->q_len >= MAX_QUEUED_STEPS && !s->q_stop) pthread_cond_wait(&s->qspace_cv, &s->qmu);
        if (s->q_tail) s->q_tail->next = j;
        else s->q_head = j;
        s->q_tail = j;
        s->q_len++;
        pthread_cond_signal(&s->qcv);
        pthread_mutex_unlock(&s->qmu);
    } else {
        send_ring_error(s, 0, "out of memory queueing a ring message");
    }
    if (!s_given) session_put(s);
    return 0;
}

/* ====================================================================
 * Control requests
 * ==================================================================== */

static void reply_caps(struct conn *c) {
    hive_node *n = c->node;
    struct proto_caps caps = {.proto = HIVE_PROTO_VERSION, .threads = (uint32_t)n->n_threads,
                              .speed_bps = (uint64_t)n->speed_bps};
    snprintf(caps.name, sizeof caps.name, "%s", n->name);
    snprintf(caps.os, sizeof caps.os, "%s", n->os);
    snprintf(caps.cpu, sizeof caps.cpu, "%s", hive_cpu_features());
    pthread_mutex_lock(&n->mu);
    caps.mem_budget = n->mem_budget > n->mem_reserved ? n->mem_budget - n->mem_reserved : 0;
    for (struct session *s = n->sessions; s && caps.n_held < PROTO_MAX_HELD; s = s->next_s) {
        caps.held[caps.n_held].first = (uint32_t)s->first;
        caps.held[caps.n_held].last = (uint32_t)s->last;
        caps.held[caps.n_held].live_seqs = (uint32_t)s->live_seqs;
        caps.n_held++;
    }
    pthread_mutex_unlock(&n->mu);
    caps.mem_free = hive_mem_available();
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_caps_encode(&w, &caps);
    conn_send_w(c, MSG_CAPS, &w, NULL);
    hive_wbuf_free(&w);
}

static void remember_verified(struct conn *c, const uint8_t model[HIVE_HASH_BYTES], int first, int last,
                              const char *path) {
    struct verified *v = NULL;
    for (int i = 0; i < c->n_verified; i++)
        if (!memcmp(c->verified[i].model, model, HIVE_HASH_BYTES) && c->verified[i].first == first &&
            c->verified[i].last == last)
            v = &c->verified[i];
    if (!v) v = &c->verified[c->n_verified < MAX_VERIFIED ? c->n_verified++ : MAX_VERIFIED - 1];
    memcpy(v->model, model, HIVE_HASH_BYTES);
    v->first = first;
    v->last = last;
    snprintf(v->path, sizeof v->path, "%s", path);
}

static const char *find_verified(struct conn *c, const uint8_t model[HIVE_HASH_BYTES], int first, int last) {
    for (int i = 0; i < c->n_verified; i++)
        if (!memcmp(c->verified[i].model, model, HIVE_HASH_BYTES) && c->verified[i].first == first &&
            c->verified[i].last == last)
            return c->verified[i].path;
    return NULL;
}

/* A file in --model-dir with the same content hash, or 0. */
static int find_in_model_dir(hive_node *n, const struct proto_query *q, char *path, size_t cap) {
    if (!n->model_dir[0]) return 0;
    const char *base = strrchr(q->file_name, '/');
    base = base ? base + 1 : q->file_name;
    if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) return 0;
    snprintf(path, cap, "%s/%s", n->model_dir, base);
    uint8_t h[HIVE_HASH_BYTES];
    return hive_file_hash(path, n->cache_dir, h, NULL) == HIVE_OK && !memcmp(h, q->model, HIVE_HASH_BYTES);
}

static void handle_query(struct conn *c, const uint8_t *p, size_t len) {
    hive_node *n = c->node;
    if (proto_query_decode(p, len, &c->query) != 0) {
        conn_send_error(c, "malformed QUERY");
        return;
    }
    c->have_query = 1;
    const struct proto_query *q = &c->query;
    char path[2304];
    char err[HIVE_ERR_LEN];
    uint8_t source = SOURCE_NEED;
    stage_cache_path(n->cache_dir, q->model, (int)q->first, (int)q->last, path, sizeof path);
    if (stage_file_verify(path, q->model, (int)q->first, (int)q->last, err) == HIVE_OK) {
        source = SOURCE_CACHE;
    } else {
        struct hive_file_id id;
        if (hive_file_id(path, &id) == 0) {
            hive_log(HIVE_LOG_WARN, "node: dropping a bad cache entry: %s", err);
            unlink(path);
        }
        if (find_in_model_dir(n, q, path, sizeof path)) source = SOURCE_MODEL_DIR;
    }
    if (source != SOURCE_NEED) remember_verified(c, q->model, (int)q->first, (int)q->last, path);
    conn_send(c, MSG_QUERY_REPLY, &source, 1, NULL, 0, NULL);
}

/* META / TENSOR / CHUNK / TENSOR_END / WEIGHTS_END. After an error the rest
 * of the transfer is read and dropped, and WEIGHTS_END answers ERROR. */
static void handle_weights(struct conn *c, uint8_t type, const uint8_t *p, size_t len) {
    hive_node *n = c->node;
    char err[HIVE_ERR_LEN] = "";
    int rc = HIVE_OK;
    if (type == MSG_META) {
        weights_rx_free(c->rx);
        c->rx = NULL;
        c->rx_error[0] = '\0';
        struct hive_rbuf r;
        hive_rbuf_init(&r, p, len);
        uint32_t n_tensors = hive_rbuf_u32(&r);
        uint64_t total = hive_rbuf_u64(&r);
        size_t meta_len = hive_rbuf_left(&r);
        const uint8_t *meta = hive_rbuf_bytes(&r, meta_len);
        if (r.bad || !c->have_query) {
            rc = hive_errf(err, HIVE_ERR_PROTO, "weights: META without a QUERY, or malformed");
        } else {
            pthread_mutex_lock(&n->mu);
            uint64_t room = n->mem_budget > n->mem_reserved ? n->mem_budget - n->mem_reserved : 0;
            pthread_mutex_unlock(&n->mu);
            rc = weights_rx_begin(&c->rx, n->cache_dir, c->query.model, (int)c->query.first, (int)c->query.last,
                                  meta, meta_len, n_tensors, total, room, err);
            if (!rc) weights_rx_set_cache_max(c->rx, n->cache_max);
        }
    } else if (!c->rx) {
        if (!c->rx_error[0]) snprintf(c->rx_error, sizeof c->rx_error, "weights: transfer not started");
    } else if (type == MSG_TENSOR) {
        struct proto_tensor t;
        rc = proto_tensor_decode(p, len, &t) ? hive_errf(err, HIVE_ERR_PROTO, "weights: malformed TENSOR")
                                             : weights_rx_tensor(c->rx, &t, err);
    } else if (type == MSG_CHUNK) {
        rc = weights_rx_chunk(c->rx, p, len, err);
        if (!rc) {
            pthread_mutex_lock(&n->mu);
            n->stats.weight_bytes_received += len;
            pthread_mutex_unlock(&n->mu);
        }
    } else if (type == MSG_TENSOR_END) {
        rc = weights_rx_tensor_end(c->rx, p, len, err);
    }
    if (rc) {
        snprintf(c->rx_error, sizeof c->rx_error, "%s", err);
        weights_rx_free(c->rx);
        c->rx = NULL;
    }
    if (type != MSG_WEIGHTS_END) return;
    char path[2304] = "";
    if (c->rx) {
        rc = weights_rx_finish(c->rx, path, sizeof path, err);
        if (rc) snprintf(c->rx_error, sizeof c->rx_error, "%s", err);
        weights_rx_free(c->rx);
        c->rx = NULL;
    }
    if (c->rx_error[0]) {
        hive_log(HIVE_LOG_WARN, "node: %s", c->rx_error);
        conn_send_error(c, c->rx_error);
        c->rx_error[0] = '\0';
        return;
    }
    remember_verified(c, c->query.model, (int)c->query.first, (int)c->query.last, path);
    conn_send_ok(c, 0);
}

/* Opens the data link to the next stage and checks it knows the session. */
static int connect_next(hive_node *n, const struct proto_setup *su, hive_link **out, char *err) {
    char host[PROTO_ADDR_CAP];
    int port = 0, fd = -1;
    int rc = hive_net_parse_hostport(su->next, host, sizeof host, &port, err);
    if (!rc) rc = hive_net_connect(host, port, CONNECT_TIMEOUT_MS, &fd, err);
    if (!rc) rc = hive_link_client(out, fd, n->key, HANDSHAKE_TIMEOUT_MS, err);
    if (rc) return rc;
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = ROLE_DATA, .session = su->session};
    snprintf(h.name, sizeof h.name, "%s", n->name);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_hello_encode(&w, &h);
    rc = proto_send(*out, MSG_HELLO, &w, err);
    hive_wbuf_free(&w);
    uint8_t type;
    const uint8_t *p;
    size_t len;
    if (!rc) rc = hive_link_recv(*out, &type, &p, &len, HANDSHAKE_TIMEOUT_MS, err);
    if (!rc && type != MSG_HELLO_OK) rc = hive_errf(err, HIVE_ERR_PROTO, "next stage %s refused the data link", su->next);
    if (rc) {
        hive_link_close(*out);
        *out = NULL;
    }
    return rc;
}

struct load_progress {
    int first, last;
    double last_ms;
};

/* "loading layers [a, b): 45% of 210.3 MiB" on one updating line. */
static void show_load_progress(void *ctx, uint64_t done, uint64_t total) {
    struct load_progress *lp = ctx;
    double now = hive_now_ms();
    if (done < total && now - lp->last_ms < 100) return;
    lp->last_ms = now;
    fprintf(stderr, "\r  loading layers [%d, %d): %3d%% of %.1f MiB", lp->first, lp->last,
            total ? (int)(done * 100 / total) : 100, (double)total / (1024.0 * 1024.0));
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

static int setup_session(struct conn *c, const struct proto_setup *su, char *err) {
    hive_node *n = c->node;
    const char *path = find_verified(c, su->model, (int)su->first, (int)su->last);
    if (!path) return hive_errf(err, HIVE_ERR_INVAL, "setup: no verified weights for this stage (QUERY first)");
    struct session *dup = session_get(n, su->session);
    if (dup) {
        session_put(dup);
        return hive_errf(err, HIVE_ERR_INVAL, "setup: session exists");
    }
    /* Memory: weights + KV + scratch of this stage against what is left. */
    hive_gguf *g = NULL;
    int rc = hive_gguf_open(&g, path, err);
    if (rc) return rc;
    struct hive_model_profile prof;
    /* KV for max_seqs sequences of n_ctx positions each. */
    rc = hive_model_profile_from_gguf(&prof, g, (int)su->n_ctx * (int)su->max_seqs, err);
    hive_gguf_close(g);
    if (rc) return rc;
    if ((int)su->last > prof.n_layer) {
        hive_model_profile_free(&prof);
        return hive_errf(err, HIVE_ERR_INVAL, "setup: layers [%u, %u) but the model has %d", su->first, su->last,
                         prof.n_layer);
    }
    uint64_t need = hive_plan_stage_mem(&prof, (int)su->first, (int)su->last);
    int n_layer = prof.n_layer;
    hive_model_profile_free(&prof);
    pthread_mutex_lock(&n->mu);
    uint64_t room = n->mem_budget > n->mem_reserved ? n->mem_budget - n->mem_reserved : 0;
    if (need <= room) n->mem_reserved += need;
    pthread_mutex_unlock(&n->mu);
    if (need > room) {
        char a[32], b[32];
        return hive_errf(err, HIVE_ERR_INVAL, "setup: the stage needs %s but %s of the memory budget is free",
                         hive_format_size(need, a, sizeof a), hive_format_size(room, b, sizeof b));
    }
    struct session *s = hive_calloc(1, sizeof *s);
    if (!s) {
        pthread_mutex_lock(&n->mu);
        n->mem_reserved -= need;
        pthread_mutex_unlock(&n->mu);
        return hive_errf(err, HIVE_ERR_NOMEM, "setup: out of memory");
    }
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_cond_init(&s->qspace_cv, NULL);
    s->node = n;
    s->id = su->session;
    s->mem_reserved = need;
    s->first = (int)su->first;
    s->last = (int)su->last;
    s->n_layer = n_layer;
    s->n_ctx = (int)su->n_ctx;
    s->max_seqs = (int)su->max_seqs;
    s->is_first = su->first == 0;
    s->is_last = (int)su->last == n_layer;
    s->wire = su->wire;
    s->index = su->stage;
    s->in_fd = -1;
    s->refs = 1;
    pthread_mutex_lock(&n->mu);
    c->refs++;
    n->n_sessions_alive++;
    pthread_mutex_unlock(&n->mu);
    s->ctl = c;
    if (s->is_last != !su->next[0]) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "setup: only the last stage has no next hop");
        goto fail;
    }
    if (s->is_first != (su->stage == 0)) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "setup: stage 0 must start at layer 0");
        goto fail;
    }
    struct hive_model_opts mo = hive_model_default_opts();
    mo.first_layer = s->first;
    mo.last_layer = s->last;
    struct load_progress lp = {.first = s->first, .last = s->last};
    if (n->o.progress && isatty(2)) {
        mo.progress = show_load_progress;
        mo.progress_ctx = &lp;
    }
    rc = hive_model_load(&s->model, path, &mo, err);
    if (rc) goto fail;
    const struct hive_hparams *hp = hive_model_hparams(s->model);
    s->n_embd = hp->n_embd;
    s->n_vocab = hp->n_vocab;
    /* A stage whose weights are a few MB runs each matmul in microseconds:
     * a second thread only adds hand-offs (and on a busy machine waits for
     * a core). One thread per STAGE_BYTES_PER_THREAD of weights, at most
     * what was asked. */
    int threads = su->n_threads ? (int)su->n_threads : n->n_threads;
    uint64_t per_token = hive_model_stage_bytes(hive_model_gguf(s->model), s->first, s->last);
    int useful = (int)(per_token / STAGE_BYTES_PER_THREAD) + 1;
    if (threads > useful) threads = useful;
    s->pool = hive_pool_create(threads);
    if (!s->pool) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "setup: cannot start threads");
        goto fail;
    }
    s->seqs = hive_calloc((size_t)s->max_seqs, sizeof *s->seqs);
    s->items = hive_calloc(PROTO_MAX_SEQS, sizeof *s->items);
    s->f = hive_calloc(1, sizeof *s->f);
    s->tokens = hive_calloc(1, sizeof *s->tokens);
    if (!s->seqs || !s->items || !s->f || !s->tokens) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "setup: out of memory");
        goto fail;
    }
    if (!s->is_last) {
        rc = connect_next(n, su, &s->next, err);
        if (rc) goto fail;
    }
    /* The worker holds a reference of its own. */
    pthread_mutex_lock(&n->mu);
    s->refs++;
    pthread_mutex_unlock(&n->mu);
    pthread_t worker;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = pthread_create(&worker, &attr, session_worker, s) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        pthread_mutex_lock(&n->mu);
        s->refs--;
        pthread_mutex_unlock(&n->mu);
        rc = hive_errf(err, HIVE_ERR_NOMEM, "setup: cannot start the stage's worker");
        goto fail;
    }
    pthread_mutex_lock(&n->mu);
    s->next_s = n->sessions;
    n->sessions = s;
    n->stats.sessions++;
    pthread_mutex_unlock(&n->mu);
    hive_log(HIVE_LOG_INFO, "node: stage %d layers [%d, %d) ready", s->index, s->first, s->last);
    return HIVE_OK;
fail:
    session_put(s);
    return rc;
}

static void handle_setup(struct conn *c, const uint8_t *p, size_t len) {
    struct proto_setup su;
    char err[HIVE_ERR_LEN] = "";
    if (proto_setup_decode(p, len, &su) != 0) {
        conn_send_error(c, "malformed SETUP");
        return;
    }
    int rc = setup_session(c, &su, err);
    if (rc) {
        hive_log(HIVE_LOG_WARN, "node: %s", err);
        conn_send_error(c, err);
    } else {
        conn_send_ok(c, 0);
    }
}

static void control_loop(struct conn *c) {
    hive_node *n = c->node;
    for (;;) {
        uint8_t type;
        const uint8_t *p;
        size_t len;
        char err[HIVE_ERR_LEN];
        int rc = hive_link_recv(c->link, &type, &p, &len, -1, err);
        uint64_t t_recv = hive_now_us();
        if (rc) {
            if (rc != HIVE_ERR_CLOSED || !atomic_load(&n->stopping))
                hive_log(rc == HIVE_ERR_CLOSED ? HIVE_LOG_INFO : HIVE_LOG_WARN, "node: control link from %s: %s",
                         c->peer_name, err);
            return;
        }
        switch (type) {
        case MSG_CAPS_REQ: reply_caps(c); break;
        case MSG_PING: {
            struct hive_rbuf r;
            hive_rbuf_init(&r, p, len);
            uint64_t t = hive_rbuf_u64(&r);
            if (r.bad) return;
            uint8_t b[16];
            uint64_t now = hive_now_us();
            for (int i = 0; i < 8; i++) {
                b[i] = (uint8_t)(t >> (8 * i));
                b[8 + i] = (uint8_t)(now >> (8 * i));
            }
            conn_send(c, MSG_PONG, b, sizeof b, NULL, 0, NULL);
            break;
        }
        case MSG_QUERY: handle_query(c, p, len); break;
        case MSG_META:
        case MSG_TENSOR:
        case MSG_CHUNK:
        case MSG_TENSOR_END:
        case MSG_WEIGHTS_END: handle_weights(c, type, p, len); break;
        case MSG_SETUP: handle_setup(c, p, len); break;
        case MSG_FWD: {
            /* Stage 0's input arrives on the control link. */
            if (handle_fwd(n, NULL, p, len, t_recv)) return;
            break;
        }
        case MSG_END: {
            struct hive_rbuf r;
            hive_rbuf_init(&r, p, len);
            uint64_t id = hive_rbuf_u64(&r);
            struct session *s = r.bad ? NULL : session_get(n, id);
            if (s && s->ctl == c) {
                session_kill(s);
                /* The OK promises that nothing more comes about this
                 * session: let a step in progress finish first. */
                pthread_mutex_lock(&n->mu);
                uint64_t deadline = hive_now_us() + 10000000u;
                while (!s->worker_done && hive_now_us() < deadline) {
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_nsec += 20 * 1000000L;
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&n->cv, &n->mu, &ts);
                }
                pthread_mutex_unlock(&n->mu);
            }
            if (s) session_put(s);
            conn_send_ok(c, 0);
            break;
        }
        default:
            hive_log(HIVE_LOG_WARN, "node: unexpected message %d on a control link; closing it", type);
            return;
        }
    }
}

static void data_loop(struct conn *c, struct session *s) {
    hive_node *n = c->node;
    for (;;) {
        uint8_t type;
        const uint8_t *p;
        size_t len;
        char err[HIVE_ERR_LEN];
        int rc = hive_link_recv(c->link, &type, &p, &len, -1, err);
        uint64_t t_recv = hive_now_us();
        if (rc) {
            if (rc != HIVE_ERR_CLOSED) hive_log(HIVE_LOG_WARN, "node: data link: %s", err);
            return;
        }
        if (type != MSG_FWD || handle_fwd(n, s, p, len, t_recv)) {
            hive_log(HIVE_LOG_WARN, "node: unexpected message %d on a data link; closing it", type);
            return;
        }
    }
}

/* ====================================================================
 * Connections
 * ==================================================================== */

static void *conn_main(void *arg) {
    struct conn *c = arg;
    hive_node *n = c->node;
    char err[HIVE_ERR_LEN] = "";
    /* One deadline for the handshake and the HELLO: an unauthenticated
     * connection holds its gate slot no longer than that. */
    int gate_ms = hive_gate_handshake_ms(n->gate);
    double t_start = hive_now_ms();
    int rc = hive_link_server(&c->link, c->fd, n->key, gate_ms, err);
    if (rc) {
        /* The failed handshake closed the socket. Forget its number at once:
         * the accept thread may already have handed the same number to a
         * new connection, which a second close would reset. */
        pthread_mutex_lock(&n->mu);
        c->fd = -1;
        pthread_mutex_unlock(&n->mu);
    }
    struct proto_hello h = {0};
    uint8_t type = 0;
    const uint8_t *p = NULL;
    size_t len = 0;
    if (!rc) {
        int left = gate_ms - (int)(hive_now_ms() - t_start);
        rc = hive_link_recv(c->link, &type, &p, &len, left > 1 ? left : 1, err);
    }
    if (!rc && (type != MSG_HELLO || proto_hello_decode(p, len, &h) != 0 || h.proto != HIVE_PROTO_VERSION))
        rc = hive_errf(err, HIVE_ERR_PROTO, "bad hello");
    if (!rc) rc = proto_host_check(h.host, "the peer", err);
    int holds_slot = 1; /* the unauthenticated one from accept, then the authenticated one */
    if (!rc) {
        if (hive_gate_promote(n->gate, c->gate_addr) == HIVE_OK) {
            c->authed = 1;
        } else {
            holds_slot = 0; /* a refused promotion gave its slot back */
            rc = hive_errf(err, HIVE_ERR_BUSY, "too many links (%d)", MAX_CONNS);
        }
    }
    struct session *s = NULL;
    if (!rc && h.role == ROLE_DATA) {
        s = session_get(n, h.session);
        if (!s) rc = hive_errf(err, HIVE_ERR_PROTO, "data link for an unknown session");
    }
    if (rc) {
        /* At most one line a second: a flood must not fill the log. */
        uint64_t now = hive_now_us(), quiet = 0;
        pthread_mutex_lock(&n->mu);
        n->stats.refused++;
        int say = now - n->refused_logged_us >= 1000000;
        if (say) {
            n->refused_logged_us = now;
            quiet = n->refused_quiet;
            n->refused_quiet = 0;
        } else {
            n->refused_quiet++;
        }
        pthread_mutex_unlock(&n->mu);
        if (say && !atomic_load(&n->stopping))
            hive_log(HIVE_LOG_WARN, "node: refused a connection from %s: %s (%llu more refused since the last such line)",
                     c->gate_addr, err, (unsigned long long)quiet);
        if (c->link && type == MSG_HELLO) conn_send_error(c, err);
    } else {
        snprintf(c->peer_name, sizeof c->peer_name, "%s", h.name);
        struct hive_wbuf w;
        hive_wbuf_init(&w);
        hive_wbuf_u32(&w, HIVE_PROTO_VERSION);
        hive_wbuf_str(&w, n->name);
        rc = conn_send_w(c, MSG_HELLO_OK, &w, err);
        hive_wbuf_free(&w);
        if (!rc && s) {
            pthread_mutex_lock(&n->mu);
            int dead = s->dead;
            if (!dead) s->in_fd = c->fd;
            pthread_mutex_unlock(&n->mu);
            if (!dead) data_loop(c, s);
            pthread_mutex_lock(&n->mu);
            if (s->in_fd == c->fd) s->in_fd = -1;
            pthread_mutex_unlock(&n->mu);
        } else if (!rc) {
            control_loop(c);
            kill_sessions_of(n, c);
        }
    }
    if (s) session_put(s);
    if (holds_slot) hive_gate_release(n->gate, c->gate_addr, c->authed);
    /* Unlist before the fd can be closed and reused; the count goes down
     * last, because hive_node_stop frees the node once it reaches 0. */
    pthread_mutex_lock(&n->mu);
    struct conn **pp = &n->conns;
    while (*pp && *pp != c) pp = &(*pp)->next_c;
    if (*pp) *pp = c->next_c;
    if (c->link) hive_link_shutdown(c->link);
    pthread_mutex_unlock(&n->mu);
    conn_put(c);
    pthread_mutex_lock(&n->mu);
    n->n_conns--;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static void *accept_main(void *arg) {
    hive_node *n = arg;
    while (!atomic_load(&n->stopping)) {
        int fd = -1;
        char err[HIVE_ERR_LEN];
        int rc = hive_net_accept(n->listen_fd, 200, &fd, err);
        if (rc == HIVE_ERR_TIMEOUT) continue;
        if (rc) {
            if (atomic_load(&n->stopping)) break;
            hive_log(HIVE_LOG_WARN, "node: accept: %s", err);
            hive_sleep_ms(50);
            continue;
        }
        char addr[HIVE_GATE_ADDR_CAP];
        hive_gate_peer_addr(fd, addr, sizeof addr);
        int full = atomic_load(&n->stopping) || hive_gate_admit(n->gate, addr) != HIVE_OK;
        struct conn *c = full ? NULL : hive_calloc(1, sizeof *c);
        if (!c) {
            if (!full) hive_gate_release(n->gate, addr, 0);
            pthread_mutex_lock(&n->mu);
            n->stats.refused++;
            pthread_mutex_unlock(&n->mu);
            hive_sock_close(fd);
            continue;
        }
        snprintf(c->gate_addr, sizeof c->gate_addr, "%s", addr);
        c->node = n;
        c->fd = fd;
        c->refs = 1;
        pthread_mutex_init(&c->send_mu, NULL);
        pthread_mutex_lock(&n->mu);
        c->next_c = n->conns;
        n->conns = c;
        n->n_conns++;
        n->stats.connections++;
        pthread_mutex_unlock(&n->mu);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            pthread_mutex_lock(&n->mu);
            n->conns = c->next_c;
            n->n_conns--;
            pthread_mutex_unlock(&n->mu);
            hive_gate_release(n->gate, c->gate_addr, 0);
            conn_put(c);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

/* ====================================================================
 * Public API
 * ==================================================================== */

struct hive_node_opts hive_node_default_opts(void) {
    struct hive_node_opts o;
    memset(&o, 0, sizeof o);
    o.listen = "127.0.0.1:0";
    o.probe = 1;
    return o;
}

int hive_node_start(hive_node **out, const struct hive_node_opts *o, char *err) {
    *out = NULL;
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
    hive_node *n = hive_calloc(1, sizeof *n);
    if (!n) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    n->o = *o;
    memcpy(n->key, o->key, HIVE_KEY_BYTES);
    n->listen_fd = -1;
    struct hive_gate_opts go = hive_gate_default_opts();
    go.max_auth = MAX_CONNS;
    n->gate = hive_gate_new(&go);
    if (!n->gate) {
        free(n);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    atomic_init(&n->stopping, 0);
    char host[PROTO_ADDR_CAP];
    int port = 0, rc;
    if (o->cache_dir && strlen(o->cache_dir) >= sizeof n->cache_dir - 64) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "cache directory path too long");
        goto fail;
    }
    if (o->cache_dir) snprintf(n->cache_dir, sizeof n->cache_dir, "%s", o->cache_dir);
    else hive_default_cache_dir(n->cache_dir, sizeof n->cache_dir - 64);
    if (o->model_dir) snprintf(n->model_dir, sizeof n->model_dir, "%s", o->model_dir);
    rc = hive_mkdirs(n->cache_dir, err);
    if (rc) goto fail;
    n->cache_max = o->cache_max;
    if (o->cache_max) { /* an explicit cap applies at once; the default after the next transfer */
        char e2[HIVE_ERR_LEN];
        if (hive_cache_trim(n->cache_dir, o->cache_max, NULL, NULL, NULL, e2) != HIVE_OK)
            hive_log(HIVE_LOG_WARN, "node: %s", e2);
    }
    if (o->name && o->name[0]) snprintf(n->name, sizeof n->name, "%s", o->name);
    else if (hive_host_name(n->name, sizeof n->name) != 0) snprintf(n->name, sizeof n->name, "node");
    hive_os_name(n->os, sizeof n->os);
    n->n_threads = o->n_threads > 0 ? o->n_threads : hive_cpu_count();
    n->mem_budget = o->mem_budget ? o->mem_budget : hive_mem_budget_default();
    n->speed_bps = o->probe ? hive_probe_speed(n->n_threads) : 1e9;
    rc = hive_net_parse_hostport(o->listen ? o->listen : "127.0.0.1:0", host, sizeof host, &port, err);
    if (!rc) rc = hive_net_listen(host, port, &n->listen_fd, &port, err);
    if (rc) goto fail;
    snprintf(n->addr, sizeof n->addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (pthread_create(&n->accept_thread, NULL, accept_main, n) != 0) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "cannot start the accept thread");
        goto fail;
    }
    *out = n;
    return HIVE_OK;
fail:
    if (n->listen_fd >= 0) hive_sock_close(n->listen_fd);
    hive_gate_free(n->gate);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
    return rc;
}

const char *hive_node_address(const hive_node *n) { return n->addr; }

void hive_node_get_stats(hive_node *n, struct hive_node_stats *st) {
    pthread_mutex_lock(&n->mu);
    *st = n->stats;
    pthread_mutex_unlock(&n->mu);
}

void hive_node_describe(const hive_node *n, char *buf, size_t cap) {
    char mem[32];
    snprintf(buf, cap, "node %s: memory budget %s, decode speed %.0f MB/s, %d threads, %s, cpu: %s", n->name,
             hive_format_size(n->mem_budget, mem, sizeof mem), n->speed_bps / 1e6, n->n_threads, n->os,
             hive_cpu_features());
}

int hive_node_leave(hive_node *n, int timeout_ms) {
    /* Tell every head that owns a session here; each moves the layers off
     * (re-plans without this node and replays) and then ends the session. */
    pthread_mutex_lock(&n->mu);
    struct conn *owners[MAX_CONNS];
    int n_owners = 0;
    for (struct session *s = n->sessions; s; s = s->next_s) {
        int seen = 0;
        for (int i = 0; i < n_owners; i++) seen |= owners[i] == s->ctl;
        if (!seen && n_owners < MAX_CONNS) {
            owners[n_owners++] = s->ctl;
            s->ctl->refs++;
        }
    }
    pthread_mutex_unlock(&n->mu);
    for (int i = 0; i < n_owners; i++) {
        conn_send(owners[i], MSG_LEAVING, NULL, 0, NULL, 0, NULL);
        conn_put(owners[i]);
    }
    uint64_t deadline = hive_now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        int left = n->sessions != NULL;
        pthread_mutex_unlock(&n->mu);
        if (!left) return 0;
        if (hive_now_us() >= deadline) return 1;
        hive_sleep_ms(20);
    }
}

void hive_node_stop(hive_node *n) {
    if (!n) return;
    atomic_store(&n->stopping, 1);
    pthread_join(n->accept_thread, NULL);
    hive_sock_close(n->listen_fd);
    pthread_mutex_lock(&n->mu);
    for (struct conn *c = n->conns; c; c = c->next_c) hive_sock_shutdown(c->fd);
    for (struct session *s = n->sessions; s; s = s->next_s)
        if (s->next) hive_link_shutdown(s->next);
    while (n->n_conns > 0) pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    /* Control threads killed their sessions on the way out; workers may
     * still be finishing a step. */
    while (n->sessions) session_kill(n->sessions);
    pthread_mutex_lock(&n->mu);
    while (n->n_sessions_alive > 0) pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    sodium_memzero(n->key, sizeof n->key);
    hive_gate_free(n->gate);
    free(n);
}
