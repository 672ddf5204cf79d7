/* sched.c - the scheduler: owns every sequence of a head (see hive/sched.h).
 *
 * One thread runs the loop; clients only touch a sequence under s->mu.
 * Per turn of the loop:
 *   1. released sequences are dropped (freed on the stages with the next
 *      message, which keeps the free in order behind any step in the ring);
 *   2. queued sequences are admitted while slots are free;
 *   3. micro-batches are sent while fewer than n_stages are in the ring:
 *      each takes about 1/n_stages of the busy sequences, so stage 1 works
 *      on one group while stage 2 works on the next;
 *   4. poll() on every control link (and a wake-up channel, hive_wake_open): TOKENS from the
 *      last stage hand each sampled token to its sequence; PONGs and any
 *      other frame prove a node alive; a closed link, a RING_ERROR or a
 *      LEAVING is handled at once;
 *   5. heartbeats: a PING to each live node every heartbeat_ms; a node
 *      silent for dead_after_ms is dead.
 * A dead or leaving node starts a recovery: end the session on the nodes
 * left, re-plan on them, deploy (from their caches where they have the
 * stage), and replay each running sequence's whole token log as its next
 * prefill, with the sampler state the head mirrored from the last stage
 * (the rng state comes back with every token), so the continuation is
 * token for token the one the lost ring would have produced.
 *
 * A sequence's feed: positions [0, n_fed) are in the stages' KV caches (or
 * on their way); tokens [n_fed, n_log) of its log are still to be fed. A
 * step feeds a chunk and, when the chunk reaches the end of the log, asks
 * the last stage to sample.
 *
 * Speculative decoding: a decoding sequence's entry may carry a draft of
 * the next k tokens (draft.h) after its last token. The stages run the k+1
 * positions in one pass and the last stage answers the tokens it sampled
 * while the draft agreed, plus the first that did not (1 to k+1 tokens).
 * Positions past the accepted ones hold a rejected draft: the next entry
 * starts before them and overwrites them. k adapts per sequence to how
 * much of its drafts the ring accepts. */
#include "hive/sched.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_internal.h"
#include "draft.h"
#include "proto.h"
#include "ring.h"

#define MAX_IN_FLIGHT HIVE_PLAN_MAX_NODES
#define POLL_MAX_MS 100
#define REJOIN_TIMEOUT_MS 500
#define VIEW_EVERY_MS 50 /* how fresh the stats and node views are */
#define GATHER_MS 10     /* an idle ring waits this long for prompts arriving together */
/* Adaptive balance: look after this many decode steps on a plan, then every
 * BALANCE_EVERY; move layers when a plan with the measured speeds expects at
 * least this fraction less time per token (moving costs a replay). */
#define BALANCE_MIN_STEPS 48
#define BALANCE_EVERY 16
#define BALANCE_MIN_GAIN 0.25
#define BALANCE_MIN_INTERVAL_MS 5000 /* between two moves: each costs a replay */
/* Speculative decoding: draft at most this many tokens per pass by default;
 * a sequence that drafts nothing (it did not pay) tries again this often. */
#define DRAFT_DEFAULT_MAX 8
#define DRAFT_PROBE_EVERY 8

enum seq_state { SEQ_QUEUED = 0, SEQ_RUNNING, SEQ_DONE };

struct hive_seq {
    hive_sched *s;
    uint64_t id;
    int refs;                 /* the client's and the scheduler's (guarded by s->mu) */
    int state;                /* enum seq_state (s->mu) */
    enum hive_finish finish;  /* (s->mu) */
    char error[HIVE_ERR_LEN + 96];
    int released;             /* the client let go (s->mu) */
    int32_t *log;             /* prompt + generated (s->mu; the loop appends) */
    int n_log, cap_log, n_prompt;
    int n_read;               /* tokens handed to the client (s->mu) */
    int max_tokens;
    pthread_cond_t cv;        /* signalled on a new token or the end */
    double t_submit_ms, t_first_ms, t_last_ms;
    /* The loop's own: */
    struct hive_sampler mirror; /* the last stage's sampler, as of the last token */
    int n_fed;
    int in_flight;
    int sampler_sent;           /* on the current session */
    /* Speculative decoding (the loop's own): */
    int32_t draft[PROTO_MAX_DRAFT];
    int n_draft;                /* tokens drafted for the log as it was at draft_for */
    int draft_for;              /* n_log when drafted (-1: none) */
    int spec_k;                 /* draft tokens in the entry in flight */
    int n_log_sent;             /* n_log when the entry in flight was sent */
    int entry_decode;           /* the entry in flight is a decode entry */
    double acc_num, acc_den;    /* decayed counts: draft tokens accepted / tried */
    int passes_undrafted;       /* decode passes since it last drafted */
    uint64_t rows;              /* token rows it sent through the ring (replays and drafts too) */
    struct draft_seq dseq;      /* its cache in the draft model */
    struct hive_seq *next;      /* in the queue or the running list */
};

struct step {
    uint32_t id;
    int n_seq;
    int decode;  /* every entry is a decode entry (one token, or one and a draft) */
    uint64_t seq_ids[PROTO_MAX_SEQS];
    struct ring_step_rec rec;
};

struct hive_sched {
    struct ring r;
    pthread_t thread;
    int thread_started;
    int wake[2];            /* wakes the loop on submit and release (hive_wake_open) */
    pthread_mutex_t mu;
    int stop;
    char fatal[HIVE_ERR_LEN + 96]; /* set when the ring cannot be recovered: submits fail with it */
    struct hive_seq *queue, *queue_tail;
    int n_queued;
    struct hive_seq *running;
    int n_running;
    struct hive_sched_stats counters; /* the counting fields */
    /* The loop's own: */
    struct step flight[MAX_IN_FLIGHT]; /* FIFO of steps in the ring */
    int flight_head, n_flight;
    uint32_t next_step;
    uint64_t frees[PROTO_MAX_SEQS * 2];
    int n_frees;
    struct proto_fwd *fwd;
    int32_t *toks;
    size_t toks_cap;
    struct proto_tokens *tokens;
    int rejoin_pending;       /* a node came back: re-plan when idle */
    uint64_t replay_since_us; /* a recovery's replay runs until the next token (s->mu) */
    int decode_steps_since_plan; /* for the adaptive balance */
    uint64_t last_rebalance_us;
    /* What readers see (s->mu): a copy the loop refreshes (publish_view). */
    uint64_t view_us;
    struct hive_sched_stats view_stages; /* its per-stage part */
    struct hive_sched_node view_nodes[HIVE_PLAN_MAX_NODES], view_nodes_tmp[HIVE_PLAN_MAX_NODES];
    int view_n_nodes;
    /* For `hive run`'s summary: the last finished sequence's timings. */
    double prefill_ms, decode_ms;
    int last_prompt, last_gen;
    int32_t *last_log;        /* its token log (prompt + generated) */
    int n_last_log;
    /* Speculative decoding (the loop's own). */
    int spec_on, draft_max, draft_fixed;
    draft_model *draft;
    struct hive_seq **cand;   /* max_seqs: sequences to draft for */
    struct draft_tuner tuner; /* what a pass, a row and a drafted token cost */
    uint8_t draft_wire[PROTO_MAX_SEQS][PROTO_MAX_DRAFT * 4];
};

/* ====================================================================
 * Sequences (client side)
 * ==================================================================== */

static void seq_put_locked(struct hive_seq *q) {
    if (--q->refs > 0) return;
    pthread_cond_destroy(&q->cv);
    draft_seq_free(&q->dseq);
    free(q->log);
    free(q);
}

static void wake_loop(hive_sched *s) { hive_wake_signal(s->wake[1]); }

static int log_push(struct hive_seq *q, int32_t t) {
    if (q->n_log == q->cap_log) {
        int cap = q->cap_log ? q->cap_log * 2 : 64;
        int32_t *p = realloc(q->log, (size_t)cap * sizeof *p);
        if (!p) return -1;
        q->log = p;
        q->cap_log = cap;
    }
    q->log[q->n_log++] = t;
    return 0;
}

int hive_sched_submit(hive_sched *s, const struct hive_seq_params *p, hive_seq **out, char *err) {
    *out = NULL;
    const struct ring *r = &s->r;
    if (p->n_prompt < 1) return hive_errf(err, HIVE_ERR_INVAL, "the prompt is empty");
    if (p->n_prompt >= r->n_ctx)
        return hive_errf(err, HIVE_ERR_INVAL, "the prompt is %d tokens but the context holds %d (one is needed to answer)",
                         p->n_prompt, r->n_ctx);
    for (int i = 0; i < p->n_prompt; i++)
        if (p->prompt[i] < 0 || p->prompt[i] >= r->hp.n_vocab)
            return hive_errf(err, HIVE_ERR_INVAL, "prompt token %d out of range [0, %d)", p->prompt[i], r->hp.n_vocab);
    struct hive_seq *q = hive_calloc(1, sizeof *q);
    if (!q) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    q->s = s;
    q->refs = 2;
    q->max_tokens = p->max_tokens;
    q->n_prompt = p->n_prompt;
    q->draft_for = -1;
    q->acc_num = 1.2, q->acc_den = 2.0; /* a prior: drafts are accepted 60% of the time */
    pthread_cond_init(&q->cv, NULL);
    if (p->resume) q->mirror = *p->resume;
    else hive_sampler_init(&q->mirror, &p->sampling);
    for (int i = 0; i < p->n_prompt; i++) {
        if (log_push(q, p->prompt[i])) {
            q->refs = 1;
            seq_put_locked(q);
            return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        }
        if (p->penalize_prompt && !p->resume) hive_sampler_accept(&q->mirror, p->prompt[i]);
    }
    randombytes_buf(&q->id, sizeof q->id);
    q->t_submit_ms = hive_now_ms();
    pthread_mutex_lock(&s->mu);
    int rc = HIVE_OK;
    if (s->fatal[0]) rc = hive_errf(err, HIVE_ERR_IO, "%s", s->fatal);
    else if (s->stop) rc = hive_errf(err, HIVE_ERR_IO, "the scheduler is shutting down");
    else if (s->n_queued >= s->counters.max_queue)
        rc = hive_errf(err, HIVE_ERR_BUSY, "%d requests are already waiting; try again shortly", s->n_queued);
    if (rc) {
        if (rc == HIVE_ERR_BUSY) s->counters.rejected++;
        q->refs = 1;
        seq_put_locked(q);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    if (s->queue_tail) s->queue_tail->next = q;
    else s->queue = q;
    s->queue_tail = q;
    s->n_queued++;
    s->counters.submitted++;
    s->counters.prompt_tokens += (uint64_t)p->n_prompt;
    pthread_mutex_unlock(&s->mu);
    wake_loop(s);
    *out = q;
    return HIVE_OK;
}

int hive_seq_next(hive_seq *q, int32_t *token, int timeout_ms) {
    hive_sched *s = q->s;
    struct timespec ts;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&s->mu);
    int rc;
    for (;;) {
        if (q->n_prompt + q->n_read < q->n_log) {
            *token = q->log[q->n_prompt + q->n_read++];
            rc = 1;
            break;
        }
        if (q->state == SEQ_DONE) {
            rc = 0;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->cv, &s->mu);
        } else if (pthread_cond_timedwait(&q->cv, &s->mu, &ts) == ETIMEDOUT) {
            rc = -HIVE_ERR_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

enum hive_finish hive_seq_finish(const hive_seq *q) {
    pthread_mutex_lock(&q->s->mu);
    enum hive_finish f = q->finish;
    pthread_mutex_unlock(&q->s->mu);
    return f;
}

const char *hive_seq_error(const hive_seq *q) { return q->error; }

int hive_seq_state(const hive_seq *q, int32_t **log, int *n_log, struct hive_sampler *sampler) {
    pthread_mutex_lock(&q->s->mu);
    int32_t *copy = malloc((size_t)q->n_log * sizeof *copy);
    if (copy) {
        memcpy(copy, q->log, (size_t)q->n_log * sizeof *copy);
        *n_log = q->n_log;
        *sampler = q->mirror;
    }
    pthread_mutex_unlock(&q->s->mu);
    *log = copy;
    return copy ? HIVE_OK : HIVE_ERR_NOMEM;
}

int hive_seq_credit(const hive_seq *q, struct hive_sched_node *out, int cap) {
    hive_sched *s = q->s;
    pthread_mutex_lock(&s->mu);
    uint64_t rows = q->rows;
    int n = 0;
    for (int i = 0; i < s->view_stages.n_stages && n < cap; i++, n++) {
        const struct hive_sched_stage_stats *st = &s->view_stages.st[i];
        memset(&out[n], 0, sizeof out[n]);
        snprintf(out[n].name, sizeof out[n].name, "%s", st->name);
        snprintf(out[n].addr, sizeof out[n].addr, "%s", st->addr);
        out[n].first = st->first, out[n].last = st->last;
        out[n].tokens = rows;
        out[n].layer_passes = rows * (uint64_t)(st->last - st->first);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void hive_seq_usage(const hive_seq *q, int *n_prompt, int *n_generated) {
    pthread_mutex_lock(&q->s->mu);
    *n_prompt = q->n_prompt;
    *n_generated = q->n_log - q->n_prompt;
    pthread_mutex_unlock(&q->s->mu);
}

double hive_seq_ttft_ms(const hive_seq *q) {
    pthread_mutex_lock(&q->s->mu);
    double t = q->t_first_ms > 0 ? q->t_first_ms - q->t_submit_ms : 0;
    pthread_mutex_unlock(&q->s->mu);
    return t;
}

void hive_seq_release(hive_seq *q) {
    if (!q) return;
    hive_sched *s = q->s;
    pthread_mutex_lock(&s->mu);
    q->released = 1;
    int running = q->state != SEQ_DONE;
    seq_put_locked(q);
    pthread_mutex_unlock(&s->mu);
    if (running) wake_loop(s);
}

/* ====================================================================
 * The loop: bookkeeping (all under s->mu)
 * ==================================================================== */

/* Ends a sequence: wakes its client, remembers to free it on the stages. */
static void seq_finish_locked(hive_sched *s, struct hive_seq *q, enum hive_finish why, const char *msg) {
    if (q->state == SEQ_DONE) return;
    int was_running = q->state == SEQ_RUNNING;
    q->state = SEQ_DONE;
    q->finish = why;
    if (msg) snprintf(q->error, sizeof q->error, "%s", msg);
    if (q->t_first_ms > 0) {
        s->prefill_ms = q->t_first_ms - q->t_submit_ms;
        s->decode_ms = q->t_last_ms - q->t_first_ms;
        s->last_prompt = q->n_prompt;
        s->last_gen = q->n_log - q->n_prompt;
        int32_t *copy = malloc((size_t)q->n_log * sizeof *copy);
        if (copy) {
            memcpy(copy, q->log, (size_t)q->n_log * sizeof *copy);
            free(s->last_log);
            s->last_log = copy;
            s->n_last_log = q->n_log;
        }
    }
    if (why == HIVE_FINISH_CANCELLED) s->counters.cancelled++;
    else if (why == HIVE_FINISH_ERROR) s->counters.failed++;
    else s->counters.finished++;
    if (was_running && q->n_fed > 0 && s->n_frees < (int)(sizeof s->frees / sizeof s->frees[0]))
        s->frees[s->n_frees++] = q->id;
    pthread_cond_broadcast(&q->cv);
}

/* Unlinks done sequences from the running list (once no step holds them)
 * and drops the scheduler's reference. */
static void reap_locked(hive_sched *s) {
    for (struct hive_seq **pp = &s->running; *pp;) {
        struct hive_seq *q = *pp;
        if (q->released && q->state != SEQ_DONE && !q->in_flight)
            seq_finish_locked(s, q, HIVE_FINISH_CANCELLED, NULL);
        if (q->state == SEQ_DONE && !q->in_flight) {
            *pp = q->next;
            s->n_running--;
            seq_put_locked(q);
            continue;
        }
        pp = &q->next;
    }
    for (struct hive_seq **pp = &s->queue; *pp;) {
        struct hive_seq *q = *pp;
        if (q->released || q->state == SEQ_DONE) {
            if (q->state != SEQ_DONE) seq_finish_locked(s, q, HIVE_FINISH_CANCELLED, NULL);
            *pp = q->next;
            s->n_queued--;
            seq_put_locked(q);
            continue;
        }
        pp = &q->next;
    }
    s->queue_tail = NULL;
    for (struct hive_seq *q = s->queue; q; q = q->next) s->queue_tail = q;
}

/* The running sequence with this id, or NULL (under s->mu). */
static struct hive_seq *running_find(hive_sched *s, uint64_t id) {
    struct hive_seq *q = s->running;
    while (q && q->id != id) q = q->next;
    return q;
}

static void admit_locked(hive_sched *s) {
    while (s->queue && s->n_running < s->r.max_seqs) {
        struct hive_seq *q = s->queue;
        s->queue = q->next;
        if (!s->queue) s->queue_tail = NULL;
        s->n_queued--;
        q->state = SEQ_RUNNING;
        q->next = s->running;
        s->running = q;
        s->n_running++;
    }
}

static void fail_all_locked(hive_sched *s, const char *msg) {
    for (struct hive_seq *q = s->running; q; q = q->next) {
        q->in_flight = 0;
        seq_finish_locked(s, q, HIVE_FINISH_ERROR, msg);
    }
    for (struct hive_seq *q = s->queue; q; q = q->next) seq_finish_locked(s, q, HIVE_FINISH_ERROR, msg);
    s->n_frees = 0;
    reap_locked(s);
}

/* ====================================================================
 * The loop: steps
 * ==================================================================== */

static int has_work(const struct hive_seq *q) {
    return q->state == SEQ_RUNNING && !q->released && !q->in_flight && q->n_fed < q->n_log;
}

/* Builds the next micro-batch under s->mu: about 1/n_stages of the busy
 * sequences, decode entries first, prompt chunks within the token budget.
 * Returns the number of entries (0: nothing to send). */
static int build_step_locked(hive_sched *s, struct step *st, int budget_tokens) {
    struct proto_fwd *f = s->fwd;
    int n_stages = s->r.plan.n_stages, busy = 0, ready = 0;
    for (struct hive_seq *q = s->running; q; q = q->next) {
        if (q->state != SEQ_RUNNING || q->released) continue;
        busy += q->in_flight || q->n_fed < q->n_log;
        ready += has_work(q);
    }
    if (!ready) return 0;
    int want = (busy + n_stages - 1) / n_stages;
    if (want < 1) want = 1;
    f->n_seq = 0;
    size_t n_tok = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: decode, pass 1: prompts */
        for (struct hive_seq *q = s->running; q && (int)f->n_seq < want; q = q->next) {
            if (!has_work(q)) continue;
            int left = q->n_log - q->n_fed;
            if ((pass == 0) != (left == 1)) continue;
            int chunk = left;
            if (pass == 1 && (int)n_tok + chunk > budget_tokens) chunk = budget_tokens - (int)n_tok;
            if (chunk < 1) break;
            int k = pass == 0 && q->draft_for == q->n_log ? q->n_draft : 0;
            if (n_tok + (size_t)chunk + (size_t)k > s->toks_cap) {
                size_t cap = (n_tok + (size_t)chunk + (size_t)k) * 2;
                int32_t *p = realloc(s->toks, cap * sizeof *p);
                if (!p) break;
                s->toks = p;
                s->toks_cap = cap;
            }
            memcpy(s->toks + n_tok, q->log + q->n_fed, (size_t)chunk * sizeof *q->log);
            struct proto_seq *e = &f->seq[f->n_seq];
            e->id = q->id;
            e->pos = (uint32_t)q->n_fed;
            e->n_tok = (uint32_t)chunk;
            e->flags = q->n_fed + chunk == q->n_log ? SEQ_SAMPLE : 0;
            e->sampler = NULL;
            e->draft = NULL;
            if (k > 0) { /* the draft follows the last token, and goes to the last stage in the header */
                memcpy(s->toks + n_tok + chunk, q->draft, (size_t)k * sizeof *q->draft);
                for (int j = 0; j < k; j++) proto_put_i32(s->draft_wire[f->n_seq] + 4 * j, q->draft[j]);
                e->draft = s->draft_wire[f->n_seq];
                e->flags |= SEQ_VERIFY;
                e->n_tok += (uint32_t)k;
                chunk += k;
            }
            q->spec_k = k;
            q->n_log_sent = q->n_log;
            q->entry_decode = pass == 0;
            st->seq_ids[f->n_seq] = q->id;
            f->n_seq++;
            n_tok += (size_t)chunk;
            q->n_fed += chunk;
            q->rows += (uint64_t)chunk;
            q->in_flight = 1;
        }
    }
    f->n_tok_total = (uint32_t)n_tok;
    st->n_seq = (int)f->n_seq;
    st->decode = f->n_seq > 0;
    for (uint32_t i = 0; i < f->n_seq; i++)
        if (f->seq[i].n_tok > 1 && !(f->seq[i].flags & SEQ_VERIFY)) st->decode = 0;
    return (int)f->n_seq;
}

/* Sends s->fwd (entries built, frees attached) to stage 0. Samplers go
 * with each sequence's first entry on this session. */
static int send_step(hive_sched *s, struct step *st, char *err) {
    struct ring *r = &s->r;
    struct proto_fwd *f = s->fwd;
    uint8_t (*wires)[HIVE_SAMPLER_WIRE_BYTES] = NULL;
    if (f->n_seq) {
        wires = malloc((size_t)f->n_seq * HIVE_SAMPLER_WIRE_BYTES);
        if (!wires) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < f->n_seq; i++) {
        struct hive_seq *q = running_find(s, f->seq[i].id);
        if (!q || q->sampler_sent) continue;
        hive_sampler_encode(&q->mirror, wires[i]);
        f->seq[i].sampler = wires[i];
        q->sampler_sent = 1;
    }
    pthread_mutex_unlock(&s->mu);
    f->session = r->session;
    f->step = st->id = s->next_step++;
    f->kind = KIND_TOKENS;
    f->n_tim = 0;
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_fwd_encode_head(&w, f);
    memset(&st->rec, 0, sizeof st->rec);
    st->rec.n_tok = f->n_tok_total;
    st->rec.n_seq = f->n_seq;
    st->rec.decode = (uint8_t)st->decode;
    st->rec.t_send = hive_now_us();
    int rc = w.bad ? hive_errf(err, HIVE_ERR_NOMEM, "out of memory")
                   : hive_link_send(ring_stage_link(r, 0), MSG_FWD, w.p, w.len, s->toks, (size_t)f->n_tok_total * 4, err);
    hive_wbuf_free(&w);
    free(wires);
    return rc;
}

/* Sends as many micro-batches as the ring has room for. A failed send is
 * the first stage's failure: its peer index goes to *dead_peer. */
/* Requests that arrive together (a client opening several streams at once)
 * should be prefilled together: when the ring is idle and the only work is
 * prompts that came in the last GATHER_MS, wait that long for the others.
 * Returns the ms left to wait, 0 to go now. */
static int gather_wait_ms(hive_sched *s) {
    if (s->n_flight) return 0;
    double now = hive_now_ms(), newest = 0;
    pthread_mutex_lock(&s->mu);
    int fresh = 0, other = 0;
    for (struct hive_seq *q = s->running; q; q = q->next) {
        if (!has_work(q)) continue;
        if (q->n_fed == 0 && now - q->t_submit_ms < GATHER_MS) {
            fresh = 1;
            if (q->t_submit_ms > newest) newest = q->t_submit_ms;
        } else {
            other = 1;
        }
    }
    int queued = s->n_queued > 0;
    pthread_mutex_unlock(&s->mu);
    if (!fresh || other || queued) return 0;
    int left = (int)(newest + GATHER_MS - now + 0.999);
    return left > 0 ? left : 0;
}

/* How many tokens to draft for q (0: drafting does not pay now). A
 * sequence that drafts nothing tries one token every DRAFT_PROBE_EVERY
 * passes, so that a change in its text is noticed. */
static int draft_len(const hive_sched *s, struct hive_seq *q) {
    if (s->draft_fixed) return s->draft_max;
    int k = draft_tuner_k(&s->tuner, q->acc_num, q->acc_den, s->draft_max);
    if (k == 0 && ++q->passes_undrafted >= DRAFT_PROBE_EVERY) k = 1;
    if (k > 0) q->passes_undrafted = 0;
    return k;
}

/* Drafts the next tokens of every sequence about to decode, outside the
 * lock (a draft model takes a while). Only the loop changes a running
 * sequence's log, so reading it here is safe. */
static void make_drafts(hive_sched *s) {
    if (!s->spec_on) return;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (struct hive_seq *q = s->running; q && n < s->r.max_seqs; q = q->next)
        if (has_work(q) && q->n_log - q->n_fed == 1 && q->draft_for != q->n_log) s->cand[n++] = q;
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < n; i++) {
        struct hive_seq *q = s->cand[i];
        int k = draft_len(s, q);
        /* Never past the context or the tokens asked for: every accepted
         * token must be one plain decoding would also give. */
        int room = s->r.n_ctx - q->n_log;
        if (k > room) k = room;
        if (q->max_tokens > 0 && k > q->max_tokens - (q->n_log - q->n_prompt) - 1)
            k = q->max_tokens - (q->n_log - q->n_prompt) - 1;
        q->n_draft = 0;
        if (k >= 1) {
            double t0 = hive_now_ms();
            q->n_draft = s->draft ? draft_model_propose(s->draft, &q->dseq, q->log, q->n_log, k, q->draft)
                                  : draft_ngram_propose(q->log, q->n_log, k, q->draft);
            draft_tuner_drafted(&s->tuner, hive_now_ms() - t0, k);
        }
        q->draft_for = q->n_log;
    }
}

static int fill_ring(hive_sched *s, int *dead_peer, char *err) {
    struct ring *r = &s->r;
    int budget = r->o.max_batch_tokens > 0 ? r->o.max_batch_tokens : 2048;
    if (gather_wait_ms(s) > 0) return HIVE_OK;
    if (s->n_flight < r->plan.n_stages) make_drafts(s);
    while (s->n_flight < r->plan.n_stages && s->n_flight < MAX_IN_FLIGHT) {
        struct step *st = &s->flight[(s->flight_head + s->n_flight) % MAX_IN_FLIGHT];
        pthread_mutex_lock(&s->mu);
        int n = build_step_locked(s, st, budget);
        struct proto_fwd *f = s->fwd;
        f->n_free = 0;
        if (n > 0 || s->n_frees > 0) {
            int k = s->n_frees < PROTO_MAX_SEQS ? s->n_frees : PROTO_MAX_SEQS;
            memcpy(f->free_ids, s->frees, (size_t)k * sizeof *s->frees);
            f->n_free = (uint32_t)k;
            memmove(s->frees, s->frees + k, (size_t)(s->n_frees - k) * sizeof *s->frees);
            s->n_frees -= k;
        }
        pthread_mutex_unlock(&s->mu);
        if (n == 0 && f->n_free == 0) break;
        if (n == 0) { /* frees only */
            f->n_seq = 0;
            f->n_tok_total = 0;
            st->n_seq = 0;
        }
        int rc = send_step(s, st, err);
        if (rc) {
            *dead_peer = ring_stage_peer(r, 0);
            return rc;
        }
        s->n_flight++;
        pthread_mutex_lock(&s->mu);
        s->counters.steps++;
        pthread_mutex_unlock(&s->mu);
    }
    return HIVE_OK;
}

/* TOKENS from the last stage: the oldest step in flight came back. */
static int on_tokens(hive_sched *s, const uint8_t *p, size_t len, char *err) {
    struct ring *r = &s->r;
    struct proto_tokens *t = s->tokens;
    if (proto_tokens_decode(p, len, t) != 0) return hive_errf(err, HIVE_ERR_PROTO, "malformed TOKENS");
    if (t->session != r->session) return HIVE_OK; /* late, from a session ended by a recovery */
    if (s->n_flight == 0 || t->step != s->flight[s->flight_head].id)
        return hive_errf(err, HIVE_ERR_PROTO, "TOKENS for step %u, which is not the oldest in flight", t->step);
    if (t->n_tim != r->plan.n_stages)
        return hive_errf(err, HIVE_ERR_PROTO, "TOKENS carries %d stage timings, expected %d", t->n_tim, r->plan.n_stages);
    struct step *st = &s->flight[s->flight_head];
    s->flight_head = (s->flight_head + 1) % MAX_IN_FLIGHT;
    s->n_flight--;
    st->rec.t_recv = hive_now_us();
    st->rec.n_tim = t->n_tim;
    st->rec.n_out = t->n;
    memcpy(st->rec.tim, t->tim, t->n_tim * sizeof *t->tim);
    ring_record_step(r, &st->rec, r->o.trace);
    if (st->decode) {
        s->decode_steps_since_plan++;
        draft_tuner_pass(&s->tuner, st->rec.n_tok, (double)(st->rec.t_recv - st->rec.t_send) / 1000.0);
    }
    double now_ms = hive_now_ms();
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < st->n_seq; i++) {
        struct hive_seq *q = running_find(s, st->seq_ids[i]);
        if (q) q->in_flight = 0;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        struct hive_seq *q = running_find(s, t->out[i].id);
        if (!q || q->state != SEQ_RUNNING) continue;
        int32_t tok = t->out[i].token;
        /* A verified entry answers its tokens in a row. The first continues
         * the log; each next one is in place only when the one before it
         * agreed with its draft token, whose position is then fed. */
        if (q->spec_k > 0) {
            int j = q->n_log - q->n_log_sent; /* this token's index in the entry's answer */
            if (j == 0) q->n_fed -= q->spec_k;
            else if (j <= q->spec_k && q->log[q->n_log - 1] == q->draft[j - 1]) q->n_fed++;
            else q->n_fed = -1; /* out of place */
        }
        if (tok < 0 || tok >= r->hp.n_vocab || q->n_fed != q->n_log) {
            seq_finish_locked(s, q, HIVE_FINISH_ERROR, "the ring returned a token out of place");
            continue;
        }
        if (log_push(q, tok)) {
            seq_finish_locked(s, q, HIVE_FINISH_ERROR, "out of memory");
            continue;
        }
        hive_sampler_accept(&q->mirror, tok);
        q->mirror.rng = t->out[i].rng;
        s->counters.generated_tokens++;
        if (q->t_first_ms == 0) q->t_first_ms = now_ms;
        if (s->replay_since_us) {
            uint64_t now_us = hive_now_us();
            double replay_ms = (double)(now_us - s->replay_since_us) / 1000.0;
            s->counters.last_replay_ms = replay_ms;
            s->counters.last_recovery_ms += replay_ms;
            if (r->n_recov) r->recov[r->n_recov - 1].t_first_token = now_us;
            s->replay_since_us = 0;
        }
        q->t_last_ms = now_ms;
        int n_gen = q->n_log - q->n_prompt;
        if (q->max_tokens > 0 && n_gen >= q->max_tokens) seq_finish_locked(s, q, HIVE_FINISH_LENGTH, NULL);
        else if (q->n_log >= r->n_ctx) seq_finish_locked(s, q, HIVE_FINISH_CONTEXT, NULL);
        pthread_cond_broadcast(&q->cv);
    }
    /* Speculation's counters, and each sequence's acceptance for its next k. */
    for (int i = 0; i < st->n_seq; i++) {
        struct hive_seq *q = running_find(s, st->seq_ids[i]);
        if (!q) continue;
        int got = q->n_log - q->n_log_sent, k = q->spec_k;
        q->spec_k = 0;
        if (!q->entry_decode || got < 1) continue;
        s->counters.decode_passes++;
        s->counters.decode_pass_tokens += (uint64_t)got;
        if (k > 0 && q->state == SEQ_RUNNING) {
            int acc = got - 1;
            s->counters.draft_tokens += (uint64_t)k;
            s->counters.draft_accepted += (uint64_t)acc;
            /* Geometric: acc tokens agreed, then one did not (unless all did). */
            q->acc_num = 0.8 * q->acc_num + acc;
            q->acc_den = 0.8 * q->acc_den + acc + (acc < k);
        }
    }
    reap_locked(s);
    pthread_mutex_unlock(&s->mu);
    return HIVE_OK;
}

/* ====================================================================
 * Recovery
 * ==================================================================== */

/* Re-plans on the live nodes, redeploys and rewinds every running sequence
 * to replay its log. Loops while nodes keep failing during the deploy.
 * dead_peer < 0: nobody failed; the plan changes to rebalance (why says
 * why) and no recovery is counted. */
static void recover(hive_sched *s, int dead_peer, int state, const char *why) {
    struct ring *r = &s->r;
    double t0 = hive_now_ms();
    int rebalance = dead_peer < 0;
    char name[160] = "";
    if (!rebalance) snprintf(name, sizeof name, "%s", ring_peer_name(r, dead_peer));
    struct ring_recovery_rec *rec = !rebalance && r->n_recov < RING_MAX_RECOVERIES ? &r->recov[r->n_recov++] : NULL;
    uint64_t t_detect = hive_now_us(), t_alive = rebalance ? t_detect : r->peers[dead_peer].last_rx_us;
    if (t_alive > t_detect || t_alive == 0) t_alive = t_detect;
    if (rec) {
        memset(rec, 0, sizeof *rec);
        snprintf(rec->node, sizeof rec->node, "%s", name);
        rec->t_last_alive = t_alive;
        rec->t_detect = t_detect;
    }
    /* The one notice line the user sees; the parts go in the summary. */
    if (rebalance) {
        fprintf(r->log, "hive: rebalancing: %s\n", why);
    } else {
        ring_drop_peer(r, dead_peer, state);
        fprintf(r->log, "hive: node %s %s; re-planning on the %d node%s left and replaying\n", name,
                state == PEER_LEAVING ? "is leaving" : why, ring_n_alive(r), ring_n_alive(r) == 1 ? "" : "s");
    }
    fflush(r->log);
    char err[HIVE_ERR_LEN] = "";
    double plan_ms = 0, deploy_ms = 0;
    for (int attempt = 0;; attempt++) {
        ring_end_session(r);
        s->n_flight = 0;
        pthread_mutex_lock(&s->mu);
        s->n_frees = 0;
        for (struct hive_seq *q = s->running; q; q = q->next) {
            q->in_flight = 0;
            q->n_fed = 0;
            q->sampler_sent = 0;
            q->spec_k = 0;
        }
        reap_locked(s);
        pthread_mutex_unlock(&s->mu);
        double t1 = hive_now_ms();
        int rc = ring_make_plan(r, err);
        plan_ms += hive_now_ms() - t1;
        if (rec) rec->t_planned = hive_now_us();
        if (rc) {
            char msg[HIVE_ERR_LEN + 64];
            snprintf(msg, sizeof msg, "the model no longer fits on the nodes left: %s", err);
            fprintf(r->log, "hive: %s\n", msg);
            pthread_mutex_lock(&s->mu);
            snprintf(s->fatal, sizeof s->fatal, "%s", msg);
            fail_all_locked(s, msg);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        t1 = hive_now_ms();
        r->quiet = 1;
        rc = ring_deploy(r, err);
        r->quiet = 0;
        deploy_ms += hive_now_ms() - t1;
        if (rec) rec->t_deployed = hive_now_us();
        if (!rc) break;
        /* Someone failed during the deploy: drop whoever is not answering. */
        fprintf(r->log, "hive: deploy failed (%s)\n", err);
        int dropped = 0;
        for (int i = 0; i < r->n_peers; i++) {
            struct ring_peer *pe = &r->peers[i];
            if (pe->state != PEER_ALIVE) continue;
            if (!pe->link || hive_link_is_dead(pe->link) ||
                proto_send_u64(pe->link, MSG_PING, hive_now_us(), NULL) != HIVE_OK) {
                ring_drop_peer(r, i, PEER_DEAD);
                dropped = 1;
            }
        }
        if (!dropped || attempt >= 8) {
            char msg[HIVE_ERR_LEN + 64];
            snprintf(msg, sizeof msg, "recovery failed: %s", err);
            pthread_mutex_lock(&s->mu);
            snprintf(s->fatal, sizeof s->fatal, "%s", msg);
            fail_all_locked(s, msg);
            pthread_mutex_unlock(&s->mu);
            return;
        }
    }
    double total = hive_now_ms() - t0, detect_ms = (double)(t_detect - t_alive) / 1000.0;
    hive_log(HIVE_LOG_INFO, "hive: ring ready again after %.0f ms (detection %.0f ms, re-plan %.1f ms, weights + setup "
                            "%.0f ms); %d stage%s now",
             detect_ms + total, detect_ms, plan_ms, deploy_ms, r->plan.n_stages, r->plan.n_stages == 1 ? "" : "s");
    fflush(r->log);
    ring_reset_timing(r);
    s->decode_steps_since_plan = 0;
    if (rebalance) {
        pthread_mutex_lock(&s->mu);
        s->counters.rebalances++;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->counters.recoveries++;
    s->counters.last_detect_ms = detect_ms;
    s->counters.last_plan_ms = plan_ms;
    s->counters.last_deploy_ms = deploy_ms;
    s->counters.last_replay_ms = 0;
    s->counters.last_recovery_ms = detect_ms + total;
    s->replay_since_us = hive_now_us(); /* the replay ends at the next token */
    pthread_mutex_unlock(&s->mu);
}

/* ====================================================================
 * The loop
 * ==================================================================== */

static int stage_of_peer(const struct ring *r, int peer) {
    for (int i = 0; i < r->plan.n_stages; i++)
        if (ring_stage_peer(r, i) == peer) return i;
    return -1;
}

/* Reads one frame from peer i. Returns 0, or 1 when the peer failed (why
 * says how), or 2 when it is leaving. */
static int read_peer(hive_sched *s, int i, char *why, size_t why_cap) {
    struct ring *r = &s->r;
    struct ring_peer *pe = &r->peers[i];
    uint8_t type;
    const uint8_t *p;
    size_t len;
    char err[HIVE_ERR_LEN];
    int rc = hive_link_recv(pe->link, &type, &p, &len, r->o.timeout_ms > 0 ? r->o.timeout_ms : 60000, err);
    if (rc == HIVE_ERR_CLOSED) {
        snprintf(why, why_cap, "closed the connection");
        return 1;
    }
    if (rc) {
        snprintf(why, why_cap, "failed: %s", err);
        return 1;
    }
    pe->last_rx_us = hive_now_us();
    switch (type) {
    case MSG_PONG: return 0;
    case MSG_OK: return 0; /* a late END confirmation */
    case MSG_LEAVING: return 2;
    case MSG_TOKENS:
        if (stage_of_peer(r, i) != r->plan.n_stages - 1) break;
        if (on_tokens(s, p, len, err)) {
            snprintf(why, why_cap, "sent a bad reply: %s", err);
            return 1;
        }
        return 0;
    case MSG_RING_ERROR: {
        struct proto_ring_error re;
        if (proto_ring_error_decode(p, len, &re) != 0) {
            snprintf(why, why_cap, "sent a malformed error");
            return 1;
        }
        if (re.session != r->session) return 0; /* from a session ended by a recovery */
        /* A stage refused a step (out of memory, a bad request): the
         * sequences of that step fail; the ring carries on. */
        hive_log(HIVE_LOG_WARN, "hive: %s", re.msg);
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < s->n_flight; k++) {
            struct step *st = &s->flight[(s->flight_head + k) % MAX_IN_FLIGHT];
            if (st->id != re.step) continue;
            for (int j = 0; j < st->n_seq; j++) {
                struct hive_seq *q = running_find(s, st->seq_ids[j]);
                if (q) seq_finish_locked(s, q, HIVE_FINISH_ERROR, re.msg);
            }
        }
        pthread_mutex_unlock(&s->mu);
        snprintf(why, why_cap, "reported: %s", re.msg);
        return 3;
    }
    default: break;
    }
    snprintf(why, why_cap, "sent an unexpected message %d", type);
    return 1;
}

/* Retries dead peers now and then; when the ring is idle and one is back
 * (or a leaving one is gone and the plan could use the newcomer), the next
 * requests run on a new plan that includes it. */
static void maybe_rejoin(hive_sched *s) {
    struct ring *r = &s->r;
    pthread_mutex_lock(&s->mu);
    int idle = s->n_running == 0 && s->n_queued == 0;
    pthread_mutex_unlock(&s->mu);
    /* Connecting can take a while: only between requests, never while an
     * answer streams (the loop would stall it). */
    if (!idle || s->n_flight) return;
    uint64_t now = hive_now_us();
    if (ring_add_discovered(r) > 0)
        for (int i = 0; i < r->n_peers; i++)
            if (r->peers[i].state == PEER_DEAD && !r->peers[i].link && !r->peers[i].caps.name[0])
                r->peers[i].next_retry_us = 0; /* new: try at once */
    for (int i = 0; i < r->n_peers; i++) {
        struct ring_peer *pe = &r->peers[i];
        if (pe->state == PEER_ALIVE || now < pe->next_retry_us) continue;
        char err[HIVE_ERR_LEN];
        if (ring_connect_peer(r, i, REJOIN_TIMEOUT_MS, err) == HIVE_OK) {
            fprintf(r->log, "hive: node %s is back; it joins the plan\n", ring_peer_name(r, i));
            s->rejoin_pending = 1;
        } else {
            pe->next_retry_us = hive_now_us() + 2000000u;
        }
    }
    if (!s->rejoin_pending) return;
    s->rejoin_pending = 0;
    char err[HIVE_ERR_LEN];
    ring_end_session(r);
    if (ring_make_plan(r, err) || ring_deploy(r, err)) {
        fprintf(r->log, "hive: re-planning with the returned node failed: %s\n", err);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->fatal[0] = '\0';
    pthread_mutex_unlock(&s->mu);
    fprintf(r->log, "hive: new plan with %d stage%s\n", r->plan.n_stages, r->plan.n_stages == 1 ? "" : "s");
}

static void publish_view(hive_sched *s, int force);

static void *sched_main(void *arg) {
    hive_sched *s = arg;
    struct ring *r = &s->r;
    int hb_ms = r->o.heartbeat_ms > 0 ? r->o.heartbeat_ms : 200;
    int dead_ms = r->o.dead_after_ms > 0 ? r->o.dead_after_ms : 1500;
    uint64_t last_turn_us = hive_now_us();
    for (int i = 0; i < r->n_peers; i++) r->peers[i].last_rx_us = last_turn_us; /* opening took a while */
    for (;;) {
        publish_view(s, 0);
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        reap_locked(s);
        if (r->deployed) admit_locked(s);
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        char err[HIVE_ERR_LEN] = "", why[HIVE_ERR_LEN + 32] = "";
        int dead_peer = -1, dead_state = PEER_DEAD;
        if (r->deployed && fill_ring(s, &dead_peer, err)) snprintf(why, sizeof why, "failed: %s", err);

        /* Wait for frames from the nodes of the plan (and the wake pipe). */
        struct hive_pollfd pfd[HIVE_PLAN_MAX_NODES + 1];
        int who[HIVE_PLAN_MAX_NODES + 1], n_pfd = 0;
        pfd[n_pfd].fd = s->wake[0];
        pfd[n_pfd].events = HIVE_POLLIN;
        who[n_pfd++] = -1;
        for (int i = 0; i < r->n_peers && dead_peer < 0; i++) {
            if (r->peers[i].state != PEER_ALIVE || !r->peers[i].link) continue;
            pfd[n_pfd].fd = hive_link_fd(r->peers[i].link);
            pfd[n_pfd].events = HIVE_POLLIN;
            who[n_pfd++] = i;
        }
        int timeout = dead_peer >= 0 ? 0 : (hb_ms < POLL_MAX_MS ? hb_ms : POLL_MAX_MS);
        int gather = r->deployed && dead_peer < 0 ? gather_wait_ms(s) : 0;
        if (gather > 0 && gather < timeout) timeout = gather;
        int pr = hive_sock_poll(pfd, n_pfd, timeout);
        if (pr < 0) hive_log(HIVE_LOG_WARN, "hive: poll: %s", strerror(errno));
        for (int k = 0; pr > 0 && k < n_pfd && dead_peer < 0; k++) {
            if (!pfd[k].revents) continue;
            if (who[k] < 0) {
                hive_wake_drain(s->wake[0]);
                continue;
            }
            int rc = read_peer(s, who[k], why, sizeof why);
            if (rc == 1 || rc == 2) {
                dead_peer = who[k];
                dead_state = rc == 2 ? PEER_LEAVING : PEER_DEAD;
            }
        }
        /* Heartbeats. When this loop itself was held up (a recovery, a
         * deploy, a slow client), silence proves nothing about the nodes. */
        uint64_t now = hive_now_us();
        if (now - last_turn_us > (uint64_t)dead_ms * 500u)
            for (int i = 0; i < r->n_peers; i++) r->peers[i].last_rx_us = now;
        last_turn_us = now;
        for (int i = 0; i < r->n_peers && dead_peer < 0; i++) {
            struct ring_peer *pe = &r->peers[i];
            if (pe->state != PEER_ALIVE || !pe->link) continue;
            if (now - pe->last_rx_us > (uint64_t)dead_ms * 1000u) {
                snprintf(why, sizeof why, "is not answering (no heartbeat for %llu ms)",
                         (unsigned long long)((now - pe->last_rx_us) / 1000u));
                dead_peer = i;
                break;
            }
            if (now - pe->last_ping_us >= (uint64_t)hb_ms * 1000u) {
                pe->last_ping_us = now;
                if (proto_send_u64(pe->link, MSG_PING, now, err)) {
                    snprintf(why, sizeof why, "failed: %s", err);
                    dead_peer = i;
                }
            }
        }
        if (dead_peer >= 0) {
            if (stage_of_peer(r, dead_peer) >= 0 || dead_state == PEER_LEAVING) {
                recover(s, dead_peer, dead_state, why);
            } else {
                fprintf(r->log, "hive: node %s %s (it held no layers)\n", ring_peer_name(r, dead_peer), why);
                ring_drop_peer(r, dead_peer, dead_state);
            }
            publish_view(s, 1);
            continue;
        }
        /* Adaptive balance: now and then, and not right after a new plan. */
        if (r->deployed && s->decode_steps_since_plan >= BALANCE_MIN_STEPS &&
            s->decode_steps_since_plan % BALANCE_EVERY == 0 &&
            hive_now_us() - s->last_rebalance_us > BALANCE_MIN_INTERVAL_MS * 1000u) {
            char reason[HIVE_ERR_LEN * 2];
            s->decode_steps_since_plan++; /* check this count once */
            if (ring_balance_check(r, BALANCE_MIN_GAIN, reason, sizeof reason)) {
                recover(s, -1, PEER_ALIVE, reason);
                s->last_rebalance_us = hive_now_us();
            }
            continue;
        }
        maybe_rejoin(s);
    }
    return NULL;
}

/* ====================================================================
 * Public API
 * ==================================================================== */

int hive_sched_open(hive_sched **out, const struct hive_sched_opts *o, char *err) {
    *out = NULL;
    hive_sched *s = hive_calloc(1, sizeof *s);
    if (!s) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    int rc = ring_open(&s->r, o, err);
    if (rc) goto fail;
    s->counters.n_ctx = s->r.n_ctx;
    s->counters.max_seqs = s->r.max_seqs;
    s->counters.max_queue = o->max_queue > 0 ? o->max_queue : 64;
    if (o->plan_only) {
        *out = s;
        return HIVE_OK;
    }
    s->draft_max = o->draft_max > 0 ? o->draft_max : DRAFT_DEFAULT_MAX;
    if (s->draft_max > PROTO_MAX_DRAFT) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "at most %d draft tokens per pass (asked for %d)", PROTO_MAX_DRAFT,
                       s->draft_max);
        goto fail;
    }
    s->draft_fixed = o->draft_fixed;
    if (o->draft_path && (rc = draft_model_open(&s->draft, o->draft_path, s->r.g, s->r.n_ctx, o->n_threads, err)))
        goto fail;
    s->spec_on = s->draft || o->draft_ngram;
    s->cand = hive_calloc((size_t)s->r.max_seqs, sizeof *s->cand);
    if (!s->cand) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = ring_deploy(&s->r, err);
    if (rc) goto fail;
    s->fwd = hive_calloc(1, sizeof *s->fwd);
    s->tokens = hive_calloc(1, sizeof *s->tokens);
    if (!s->fwd || !s->tokens) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = hive_wake_open(s->wake, err);
    if (rc) goto fail;
    publish_view(s, 1);
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "cannot start the scheduler thread");
        goto fail;
    }
    s->thread_started = 1;
    *out = s;
    return HIVE_OK;
fail:
    hive_sched_close(s);
    return rc;
}

void hive_sched_close(hive_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started) {
        wake_loop(s);
        pthread_join(s->thread, NULL);
    }
    pthread_mutex_lock(&s->mu);
    fail_all_locked(s, "the service is shutting down");
    /* Done sequences the clients still hold stay valid until released;
     * the scheduler's references went with the reaping above. */
    pthread_mutex_unlock(&s->mu);
    ring_close(&s->r);
    hive_wake_close(s->wake);
    free(s->fwd);
    free(s->tokens);
    free(s->toks);
    free(s->last_log);
    free(s->cand);
    draft_model_close(s->draft);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void hive_sched_get_stats(hive_sched *s, struct hive_sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    *st = s->counters;
    st->running = s->n_running;
    st->queued = s->n_queued;
    st->in_flight = s->n_flight;
    st->n_stages = s->view_stages.n_stages;
    memcpy(st->st, s->view_stages.st, sizeof st->st);
    st->hop_out_ms_avg = s->view_stages.hop_out_ms_avg;
    pthread_mutex_unlock(&s->mu);
}

const char *hive_node_state_name(int state) {
    static const char *names[] = {"alive", "suspect", "dead", "leaving", "joining"};
    return state >= 0 && state <= HIVE_NODE_JOINING ? names[state] : "?";
}

/* The loop's own: what the ring looks like now, into the view. */
static int fill_nodes(hive_sched *s, struct hive_sched_node *out, int cap) {
    struct ring *r = &s->r;
    int dead_ms = r->o.dead_after_ms > 0 ? r->o.dead_after_ms : 1500;
    uint64_t now = hive_now_us();
    int n = r->n_peers;
    for (int i = 0; i < n && i < cap; i++) {
        const struct ring_peer *pe = &r->peers[i];
        struct hive_sched_node *x = &out[i];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", pe->caps.name[0] ? pe->caps.name : "?");
        snprintf(x->addr, sizeof x->addr, "%s", pe->addr);
        snprintf(x->os, sizeof x->os, "%s", pe->caps.os);
        snprintf(x->cpu, sizeof x->cpu, "%s", pe->caps.cpu);
        x->is_local = r->local && i == 0;
        x->mem_budget = pe->caps.mem_budget;
        x->speed_bps = pe->measured_bps > 0 ? pe->measured_bps : (double)pe->caps.speed_bps;
        x->rtt_ms = pe->rtt_ms;
        x->silent_ms = pe->last_rx_us && now > pe->last_rx_us ? (double)(now - pe->last_rx_us) / 1000.0 : 0;
        x->tokens = pe->tokens;
        x->layer_passes = pe->layer_passes;
        x->stage = -1;
        for (int k = 0; r->deployed && k < r->plan.n_stages; k++) {
            if (ring_stage_peer(r, k) != i) continue;
            x->stage = k;
            x->first = r->plan.stage[k].first;
            x->last = r->plan.stage[k].last;
            x->mem_used = r->plan.stage[k].mem_bytes;
        }
        if (pe->state == PEER_DEAD) x->state = pe->caps.name[0] ? HIVE_NODE_DEAD : HIVE_NODE_JOINING;
        else if (pe->state == PEER_LEAVING) x->state = HIVE_NODE_LEAVING;
        else if (x->silent_ms > dead_ms / 2.0) x->state = HIVE_NODE_SUSPECT;
        else x->state = HIVE_NODE_ALIVE;
    }
    return n;
}

/* Copies what readers may see (stats, nodes) under s->mu: the loop changes
 * the ring without a lock, readers only ever see this copy. At most every
 * VIEW_EVERY_MS unless forced. */
static void publish_view(hive_sched *s, int force) {
    uint64_t now = hive_now_us();
    if (!force && now - s->view_us < VIEW_EVERY_MS * 1000u) return;
    s->view_us = now;
    struct hive_sched_stats st;
    memset(&st, 0, sizeof st);
    ring_stage_stats(&s->r, &st);
    int n = fill_nodes(s, s->view_nodes_tmp, HIVE_PLAN_MAX_NODES);
    pthread_mutex_lock(&s->mu);
    s->view_stages = st;
    memcpy(s->view_nodes, s->view_nodes_tmp, (size_t)(n < HIVE_PLAN_MAX_NODES ? n : HIVE_PLAN_MAX_NODES) * sizeof *s->view_nodes);
    s->view_n_nodes = n;
    pthread_mutex_unlock(&s->mu);
}

int hive_sched_get_nodes(hive_sched *s, struct hive_sched_node *out, int cap) {
    pthread_mutex_lock(&s->mu);
    int n = s->view_n_nodes;
    memcpy(out, s->view_nodes, (size_t)(n < cap ? n : cap) * sizeof *out);
    pthread_mutex_unlock(&s->mu);
    return n;
}

const struct hive_plan *hive_sched_plan(const hive_sched *s) { return &s->r.plan; }
const struct hive_plan_node *hive_sched_nodes(const hive_sched *s) { return s->r.nodes; }
int hive_sched_n_ctx(const hive_sched *s) { return s->r.n_ctx; }
const char *hive_sched_node_addr(const hive_sched *s, int i) {
    return i >= 0 && i < s->r.n_nodes ? s->r.peers[s->r.node_peer[i]].addr : "";
}
int hive_sched_failed(hive_sched *s) {
    pthread_mutex_lock(&s->mu);
    int failed = s->fatal[0] != '\0';
    pthread_mutex_unlock(&s->mu);
    return failed;
}
int hive_sched_n_vocab(const hive_sched *s) { return s->r.hp.n_vocab; }

void hive_sched_print_summary(hive_sched *s, FILE *f) {
    pthread_mutex_lock(&s->mu);
    int n_prompt = s->last_prompt, n_gen = s->last_gen;
    pthread_mutex_unlock(&s->mu);
    ring_print_summary(&s->r, f, n_prompt, n_gen, s->prefill_ms, s->decode_ms);
    struct hive_sched_stats st;
    hive_sched_get_stats(s, &st);
    if (st.draft_tokens)
        fprintf(f, "speculative decoding: %.0f%% of %llu drafted tokens accepted; %.2f tokens per ring pass\n",
                100.0 * (double)st.draft_accepted / (double)st.draft_tokens, (unsigned long long)st.draft_tokens,
                st.decode_passes ? (double)st.decode_pass_tokens / (double)st.decode_passes : 0.0);
    if (st.recoveries)
        fprintf(f, "recoveries: %d; the last took %.0f ms from the node's last sign of life to the next token "
                   "(detection %.0f, re-plan %.1f, weights + setup %.0f, replay %.0f ms)\n",
                st.recoveries, st.last_recovery_ms, st.last_detect_ms, st.last_plan_ms, st.last_deploy_ms,
                st.last_replay_ms);
}

int hive_sched_write_trace(hive_sched *s, const char *path, char *err) { return ring_write_trace(&s->r, path, err); }

int hive_sched_write_stats_json(hive_sched *s, const char *path, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));
    struct hive_sched_stats st;
    hive_sched_get_stats(s, &st);
    const struct ring *r = &s->r;
    uint64_t sent = 0;
    for (int i = 0; i < st.n_stages; i++) sent += st.st[i].weight_bytes_sent;
    double div = r->n_decode_steps ? (double)r->n_decode_steps * 1000.0 : 1;
    fprintf(f, "{\"n_prompt\":%llu,\"n_gen\":%llu,\"weight_bytes_sent\":%llu,\"steps\":%llu,\"recoveries\":%d,"
               "\"ring_ms\":%.4f,\"hop_out_ms\":%.4f,\"plan_ms\":%.4f,\n\"recovery\":{\"total_ms\":%.3f,"
               "\"detect_ms\":%.3f,\"plan_ms\":%.3f,\"deploy_ms\":%.3f,\"replay_ms\":%.3f},\n",
            (unsigned long long)st.prompt_tokens, (unsigned long long)st.generated_tokens, (unsigned long long)sent,
            (unsigned long long)st.steps, st.recoveries, r->sum_ring_us / div, r->sum_hop_us[st.n_stages] / div,
            hive_plan_expected_ms(&r->prof, &r->plan, r->nodes), st.last_recovery_ms, st.last_detect_ms,
            st.last_plan_ms, st.last_deploy_ms, st.last_replay_ms);
    double tps = s->decode_ms > 0 && s->last_gen > 1 ? (s->last_gen - 1) / (s->decode_ms / 1000.0) : 0;
    fprintf(f, "\"speculative\":{\"draft_tokens\":%llu,\"accepted\":%llu,\"decode_passes\":%llu,\"pass_tokens\":%llu},\n",
            (unsigned long long)st.draft_tokens, (unsigned long long)st.draft_accepted,
            (unsigned long long)st.decode_passes, (unsigned long long)st.decode_pass_tokens);
    fprintf(f, "\"prefill_ms\":%.3f,\"decode_ms\":%.3f,\"tok_per_s\":%.3f,\"tokens\":[", s->prefill_ms,
            s->decode_ms, tps);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_last_log; i++) fprintf(f, "%s%d", i ? "," : "", s->last_log[i]);
    pthread_mutex_unlock(&s->mu);
    fprintf(f, "],\n\"stages\":[");
    static const char *src[] = {"sent", "cache", "model-dir"};
    for (int i = 0; i < st.n_stages; i++) {
        const struct hive_sched_stage_stats *x = &st.st[i];
        fprintf(f, "%s\n {\"node\":%d,\"addr\":\"%s\",\"first\":%d,\"last\":%d,\"weights\":\"%s\",\"weight_bytes_sent\":%llu,"
                   "\"compute_ms\":%.4f,\"hop_in_ms\":%.4f}",
                i ? "," : "", r->plan.stage[i].node, x->addr, x->first, x->last,
                x->from_cache >= 0 && x->from_cache <= 2 ? src[x->from_cache] : "?",
                (unsigned long long)x->weight_bytes_sent, r->sum_compute_us[i] / div, r->sum_hop_us[i] / div);
    }
    fprintf(f, "]}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return hive_errf(err, HIVE_ERR_IO, "write %s failed", path);
    return HIVE_OK;
}
