/* obs.c - what `hive serve` observes, for the dashboard and /metrics:
 *   - the requests being answered (id, kind, prompt tokens, tokens so far,
 *     max_tokens, when it started), listed from srv_gen_track until the
 *     generation releases its sequence;
 *   - counters (requests by outcome, error answers by status, prompt and
 *     completion tokens as the clients got them) and latency histograms
 *     (time to first token, time per output token, request duration),
 *     recorded where a request ends;
 *   - a sampler thread that reads the scheduler's counters once a second:
 *     tokens/s over the last SRV_HISTORY seconds (a fresh page shows the
 *     history), and every node's tokens and layer-passes over the last
 *     minute (the contribution ledger's per-minute figures).
 * The times come from the scheduler (hive_seq_ttft_ms) and the clock at the
 * request's end; nothing here times the ring itself. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs_internal.h"

static const double ttft_le[SRV_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                 1,     2.5,  5,     10,   25,  60,   120};
static const double tpot_le[SRV_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1,
                                                 0.2,   0.5,    1,     2,    5,    10,   30};
static const double e2e_le[SRV_HIST_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                5,    10,   30,  60,   120, 300, 600};

double srv_obs_now_ms(void) { return hive_now_ms(); }

static void hist_observe(struct srv_hist *h, double v) {
    int i = 0;
    while (i < SRV_HIST_BUCKETS && v > h->le[i]) i++;
    h->count[i]++;
    h->n++;
    h->sum += v;
}

/* Appends one per-node sample to the ledger (caller holds mu). */
static void ledger_add(struct srv_obs *o, const struct hive_sched_node *nd, double t) {
    struct srv_ledger_node *l = NULL;
    for (int i = 0; i < o->n_led; i++)
        if (!strcmp(o->led[i].addr, nd->addr)) l = &o->led[i];
    if (!l) {
        if (o->n_led < SRV_LEDGER_NODES) {
            l = &o->led[o->n_led++];
        } else { /* full: reuse the one seen longest ago */
            l = &o->led[0];
            for (int i = 1; i < o->n_led; i++)
                if (o->led[i].last_seen_ms < l->last_seen_ms) l = &o->led[i];
        }
        memset(l, 0, sizeof *l);
        snprintf(l->addr, sizeof l->addr, "%s", nd->addr);
    }
    l->tokens[l->head] = nd->tokens;
    l->passes[l->head] = nd->layer_passes;
    l->t_ms[l->head] = t;
    l->head = (l->head + 1) % SRV_LEDGER_WINDOW;
    if (l->n < SRV_LEDGER_WINDOW) l->n++;
    l->last_seen_ms = t;
}

int srv_obs_ledger_rate(struct srv_obs *o, const char *addr, double *tokens_per_min, double *passes_per_min) {
    *tokens_per_min = *passes_per_min = 0;
    for (int i = 0; i < o->n_led; i++) {
        const struct srv_ledger_node *l = &o->led[i];
        if (strcmp(l->addr, addr)) continue;
        if (l->n < 2) return 0;
        int newest = (l->head + SRV_LEDGER_WINDOW - 1) % SRV_LEDGER_WINDOW;
        int oldest = (l->head + SRV_LEDGER_WINDOW - l->n) % SRV_LEDGER_WINDOW;
        double dt = l->t_ms[newest] - l->t_ms[oldest];
        if (dt <= 0) return 0;
        /* counters restart when a node is replaced: never a negative rate */
        double dtok = l->tokens[newest] >= l->tokens[oldest] ? (double)(l->tokens[newest] - l->tokens[oldest]) : 0;
        double dpas = l->passes[newest] >= l->passes[oldest] ? (double)(l->passes[newest] - l->passes[oldest]) : 0;
        *tokens_per_min = dtok * 60000.0 / dt;
        *passes_per_min = dpas * 60000.0 / dt;
        return 1;
    }
    return 0;
}

int srv_obs_tps(struct srv_obs *o, double *out, int cap, double *now_tps) {
    /* out[k] = tokens/s in the second that ended with sample k+1 (oldest first) */
    int n = 0;
    *now_tps = 0;
    for (int k = 1; k < o->n_hist && n < cap; k++) {
        const struct srv_sample *a = &o->hist[(o->head_hist + SRV_HISTORY - o->n_hist + k - 1) % SRV_HISTORY];
        const struct srv_sample *b = &o->hist[(o->head_hist + SRV_HISTORY - o->n_hist + k) % SRV_HISTORY];
        double dt = (b->t_ms - a->t_ms) / 1000.0;
        out[n++] = dt > 0 && b->generated >= a->generated ? (double)(b->generated - a->generated) / dt : 0;
    }
    /* "now": the last 3 seconds, so one quiet tick does not read as idle */
    if (o->n_hist >= 2) {
        int back = o->n_hist > 3 ? 3 : o->n_hist - 1;
        const struct srv_sample *a = &o->hist[(o->head_hist + SRV_HISTORY - 1 - back) % SRV_HISTORY];
        const struct srv_sample *b = &o->hist[(o->head_hist + SRV_HISTORY - 1) % SRV_HISTORY];
        double dt = (b->t_ms - a->t_ms) / 1000.0;
        if (dt > 0 && b->generated >= a->generated) *now_tps = (double)(b->generated - a->generated) / dt;
    }
    return n;
}

static void sample(struct srv_obs *o) {
    struct hive_sched_stats *st = &o->scratch_stats;
    memset(st, 0, sizeof *st);
    o->be->stats(o->be->ctx, st);
    int n = 0;
    if (o->more.nodes) {
        n = o->more.nodes(o->be->ctx, o->scratch_nodes, SRV_LEDGER_NODES);
        if (n > SRV_LEDGER_NODES) n = SRV_LEDGER_NODES;
        if (n < 0) n = 0;
    }
    double t = srv_obs_now_ms();
    pthread_mutex_lock(&o->mu);
    o->hist[o->head_hist] = (struct srv_sample){t, st->generated_tokens, st->prompt_tokens};
    o->head_hist = (o->head_hist + 1) % SRV_HISTORY;
    if (o->n_hist < SRV_HISTORY) o->n_hist++;
    for (int i = 0; i < n; i++) ledger_add(o, &o->scratch_nodes[i], t);
    pthread_mutex_unlock(&o->mu);
}

static void *sampler(void *arg) {
    struct srv_obs *o = arg;
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        pthread_mutex_unlock(&o->mu);
        sample(o);
        pthread_mutex_lock(&o->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (!o->stop) {
            if (pthread_cond_timedwait(&o->cv, &o->mu, &ts) != 0) break; /* timed out: next sample */
        }
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

struct srv_obs *srv_obs_start(const struct srv_backend *be, const struct srv_backend_more *more) {
    struct srv_obs *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->be = be;
    if (more) o->more = *more;
    o->ttft.le = ttft_le;
    o->tpot.le = tpot_le;
    o->e2e.le = e2e_le;
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    o->scratch_nodes = calloc(SRV_LEDGER_NODES, sizeof *o->scratch_nodes);
    if (!o->scratch_nodes || pthread_create(&o->thr, NULL, sampler, o)) {
        free(o->scratch_nodes);
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return NULL;
    }
    return o;
}

void srv_obs_stop(struct srv_obs *o) {
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thr, NULL);
    while (o->active) { /* none left after MHD_stop_daemon; be safe anyway */
        struct srv_active *a = o->active;
        o->active = a->next;
        free(a);
    }
    free(o->scratch_nodes);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

void srv_obs_error(struct srv_obs *o, int status) {
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    int i = 0;
    while (i < o->n_status && o->status[i] != status) i++;
    if (i == o->n_status && o->n_status < SRV_MAX_STATUS) o->status[o->n_status++] = status;
    if (i < o->n_status) o->status_count[i]++;
    pthread_mutex_unlock(&o->mu);
}

void srv_gen_track(struct srv_gen *g, struct srv_obs *o, const char *id, int kind, int max_tokens, int stream) {
    if (!o || !g->seq) return;
    struct srv_active *a = calloc(1, sizeof *a);
    if (!a) return; /* not listed, still answered */
    snprintf(a->id, sizeof a->id, "%s", id);
    a->kind = kind;
    a->n_prompt = g->n_prompt;
    a->max_tokens = max_tokens;
    a->stream = stream;
    a->started_ms = srv_obs_now_ms();
    a->started_unix = (long long)time(NULL);
    a->seq = g->seq;
    pthread_mutex_lock(&o->mu);
    a->next = o->active;
    o->active = a;
    o->n_active++;
    o->prompt_tokens += (uint64_t)g->n_prompt;
    pthread_mutex_unlock(&o->mu);
    g->obs = o;
    g->active = a;
}

void srv_obs_token(struct srv_obs *o, struct srv_active *a) {
    pthread_mutex_lock(&o->mu);
    a->n_gen++;
    o->completion_tokens++;
    pthread_mutex_unlock(&o->mu);
}

void srv_obs_finish(struct srv_obs *o, struct srv_gen *g) {
    struct srv_active *a = g->active;
    if (!o || !a) return;
    int out = g->finish == SRV_FINISH_STOP     ? SRV_OUT_STOP
              : g->finish == SRV_FINISH_LENGTH ? SRV_OUT_LENGTH
              : g->finish == SRV_FINISH_ERROR  ? SRV_OUT_ERROR
                                               : SRV_OUT_CANCELLED;
    double ttft = g->seq && o->more.ttft_ms ? o->more.ttft_ms(g->seq) : 0;
    double e2e = srv_obs_now_ms() - a->started_ms;
    pthread_mutex_lock(&o->mu);
    for (struct srv_active **p = &o->active; *p; p = &(*p)->next) {
        if (*p != a) continue;
        *p = a->next;
        o->n_active--;
        break;
    }
    o->requests[a->kind == SRV_CHAT ? 0 : 1][out]++;
    if (out != SRV_OUT_ERROR) {
        hist_observe(&o->e2e, e2e / 1000.0);
        if (a->n_gen > 0 && ttft > 0) {
            hist_observe(&o->ttft, ttft / 1000.0);
            if (a->n_gen > 1 && e2e > ttft) hist_observe(&o->tpot, (e2e - ttft) / 1000.0 / (a->n_gen - 1));
        }
    }
    pthread_mutex_unlock(&o->mu);
    free(a);
    g->active = NULL;
}
