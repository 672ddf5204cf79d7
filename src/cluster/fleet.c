/* fleet.c - replicas: one scheduler per pipeline, requests to the least
 * loaded (see hive/fleet.h). */
#include "hive/fleet.h"

#include <stdlib.h>
#include <string.h>

#include "hive/gguf.h"

struct hive_fleet {
    int n;
    hive_sched *sched[HIVE_PLAN_MAX_NODES];
    char *addrs[HIVE_PLAN_MAX_NODES][HIVE_PLAN_MAX_NODES]; /* each replica's nodes, in ring order */
    int n_addrs[HIVE_PLAN_MAX_NODES];
    struct hive_replica_plan *plan;
};

/* Measures the nodes (a plan-only scheduler over all of them) and asks the
 * planner for replicas. */
static int plan_replicas(hive_fleet *f, const struct hive_fleet_opts *o, char *err) {
    struct hive_sched_opts po = o->sched;
    po.plan_only = 1;
    hive_sched *probe = NULL;
    int rc = hive_sched_open(&probe, &po, err);
    if (rc) return rc;
    const struct hive_plan *single = hive_sched_plan(probe);
    const struct hive_plan_node *nodes = hive_sched_nodes(probe);
    hive_gguf *g = NULL;
    struct hive_model_profile prof;
    memset(&prof, 0, sizeof prof);
    int max_seqs = o->sched.max_seqs > 0 ? o->sched.max_seqs : 8;
    rc = hive_gguf_open(&g, o->sched.model_path, err);
    if (!rc) rc = hive_model_profile_from_gguf(&prof, g, hive_sched_n_ctx(probe) * max_seqs, err);
    if (!rc) rc = hive_plan_replicas(&prof, nodes, single->n_nodes, f->plan, err);
    int n = rc ? 0 : f->plan->n_replicas;
    if (o->max_replicas > 0 && n > o->max_replicas) n = o->max_replicas;
    for (int r = 0; r < n && !rc; r++) {
        const struct hive_replica *rep = &f->plan->replica[r];
        for (int k = 0; k < rep->n_stages && !rc; k++) {
            const char *addr = hive_sched_node_addr(probe, rep->stage[k].node);
            f->addrs[r][k] = strdup(addr);
            if (!f->addrs[r][k]) rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
            f->n_addrs[r]++;
        }
    }
    f->n = rc ? 0 : n;
    hive_model_profile_free(&prof);
    hive_gguf_close(g);
    hive_sched_close(probe);
    return rc;
}

int hive_fleet_open(hive_fleet **out, const struct hive_fleet_opts *o, char *err) {
    *out = NULL;
    hive_fleet *f = hive_calloc(1, sizeof *f);
    if (f) f->plan = hive_calloc(1, sizeof *f->plan);
    if (!f || !f->plan) {
        free(f);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    int rc = HIVE_OK;
    /* One pipeline: alone, with this machine holding layers (its in-process
     * node cannot be in two replicas), or when asked. */
    if (o->sched.n_peers == 0 || o->sched.local_layers || o->max_replicas == 1) {
        rc = hive_sched_open(&f->sched[0], &o->sched, err);
        if (rc) goto fail;
        f->n = 1;
        f->plan->n_replicas = 1;
        *out = f;
        return HIVE_OK;
    }
    if ((rc = plan_replicas(f, o, err))) goto fail;
    FILE *log = o->sched.log ? o->sched.log : stderr;
    if (f->n > 1) {
        fprintf(log, "hive: %d replicas (%.1f tok/s in aggregate expected, one pipeline over every node %.1f):\n",
                f->n, f->plan->agg_tok_s, f->plan->single_tok_s);
        for (int r = 0; r < f->n; r++) {
            fprintf(log, "  replica %d:", r);
            for (int k = 0; k < f->n_addrs[r]; k++) fprintf(log, " %s", f->addrs[r][k]);
            fprintf(log, " (%.1f tok/s expected)\n", f->plan->replica[r].tok_s);
        }
    }
    for (int r = 0; r < f->n; r++) {
        struct hive_sched_opts so = o->sched;
        so.peers = (const char *const *)f->addrs[r];
        so.n_peers = f->n_addrs[r];
        so.discover_ms = 0; /* the membership was fixed by the plan */
        if ((rc = hive_sched_open(&f->sched[r], &so, err))) goto fail;
    }
    *out = f;
    return HIVE_OK;
fail:
    hive_fleet_close(f);
    return rc;
}

void hive_fleet_close(hive_fleet *f) {
    if (!f) return;
    for (int r = 0; r < HIVE_PLAN_MAX_NODES; r++) {
        hive_sched_close(f->sched[r]);
        for (int k = 0; k < f->n_addrs[r]; k++) free(f->addrs[r][k]);
    }
    free(f->plan);
    free(f);
}

int hive_fleet_n_replicas(const hive_fleet *f) { return f->n; }
hive_sched *hive_fleet_replica(const hive_fleet *f, int i) { return i >= 0 && i < f->n ? f->sched[i] : NULL; }
int hive_fleet_replica_ok(hive_fleet *f, int i) { return i >= 0 && i < f->n && !hive_sched_failed(f->sched[i]); }
const struct hive_replica_plan *hive_fleet_plan(const hive_fleet *f) { return f->plan; }

int hive_fleet_replica_nodes(const hive_fleet *f, int i, const char **addrs, int cap) {
    if (i < 0 || i >= f->n) return 0;
    int n = f->n_addrs[i] < cap ? f->n_addrs[i] : cap;
    for (int k = 0; k < n; k++) addrs[k] = f->addrs[i][k];
    return f->n_addrs[i];
}

int hive_fleet_submit(hive_fleet *f, const struct hive_seq_params *p, int avoid, hive_seq **out, int *replica,
                      char *err) {
    *out = NULL;
    int best = -1;
    double best_load = 0;
    for (int pass = 0; pass < 2 && best < 0; pass++) { /* pass 1 takes `avoid` too, when it is all there is */
        for (int r = 0; r < f->n; r++) {
            if (!hive_fleet_replica_ok(f, r) || (pass == 0 && r == avoid)) continue;
            struct hive_sched_stats st;
            hive_sched_get_stats(f->sched[r], &st);
            double load = (double)(st.running + st.queued) / (st.max_seqs > 0 ? st.max_seqs : 1);
            if (best < 0 || load < best_load) best = r, best_load = load;
        }
    }
    if (best < 0)
        return hive_errf(err, HIVE_ERR_IO, "no replica is in service (%d planned, every one failed)", f->n);
    if (replica) *replica = best;
    return hive_sched_submit(f->sched[best], p, out, err);
}

void hive_fleet_get_stats(hive_fleet *f, struct hive_sched_stats *st) {
    memset(st, 0, sizeof *st);
    struct hive_sched_stats r;
    for (int i = 0; i < f->n; i++) {
        hive_sched_get_stats(f->sched[i], &r);
        if (i == 0) *st = r, st->n_stages = 0;
        else {
            st->max_seqs += r.max_seqs, st->max_queue += r.max_queue;
            st->running += r.running, st->queued += r.queued, st->in_flight += r.in_flight;
            st->submitted += r.submitted, st->rejected += r.rejected, st->finished += r.finished;
            st->cancelled += r.cancelled, st->failed += r.failed;
            st->prompt_tokens += r.prompt_tokens, st->generated_tokens += r.generated_tokens, st->steps += r.steps;
            st->decode_passes += r.decode_passes, st->decode_pass_tokens += r.decode_pass_tokens;
            st->draft_tokens += r.draft_tokens, st->draft_accepted += r.draft_accepted;
            st->recoveries += r.recoveries, st->rebalances += r.rebalances;
            if (r.recoveries && r.last_recovery_ms > 0) {
                st->last_recovery_ms = r.last_recovery_ms, st->last_detect_ms = r.last_detect_ms;
                st->last_plan_ms = r.last_plan_ms, st->last_deploy_ms = r.last_deploy_ms;
                st->last_replay_ms = r.last_replay_ms;
            }
        }
        for (int k = 0; k < r.n_stages && st->n_stages < HIVE_SCHED_MAX_STAGES; k++) st->st[st->n_stages++] = r.st[k];
        st->hop_out_ms_avg = r.hop_out_ms_avg;
    }
}

int hive_fleet_get_nodes(hive_fleet *f, struct hive_sched_node *out, int cap) {
    int n = 0;
    for (int i = 0; i < f->n; i++) {
        int got = hive_sched_get_nodes(f->sched[i], n < cap ? out + n : out, n < cap ? cap - n : 0);
        n += got;
    }
    return n;
}

/* ---- sequences that outlive their replica ---- */

#define FLEET_MAX_MOVES 8 /* a sequence that keeps losing its replica gives up */

struct hive_fleet_seq {
    hive_fleet *f;
    hive_seq *q;       /* on its current replica */
    int replica;
    int n_prompt;      /* the client's prompt */
    int max_tokens;    /* the client's */
    int n_before;      /* tokens generated on earlier replicas */
    int moves;
    double ttft_ms;    /* of the first replica */
    struct hive_sched_node credit[HIVE_PLAN_MAX_NODES]; /* what earlier replicas' nodes computed */
    int n_credit;
    struct hive_seq_params params; /* the client's (prompt not kept) */
};

int hive_fleet_seq_submit(hive_fleet *f, const struct hive_seq_params *p, hive_fleet_seq **out, char *err) {
    *out = NULL;
    hive_fleet_seq *x = hive_calloc(1, sizeof *x);
    if (!x) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    x->f = f;
    x->n_prompt = p->n_prompt;
    x->max_tokens = p->max_tokens;
    x->params = *p;
    x->params.prompt = NULL;
    int rc = hive_fleet_submit(f, p, -1, &x->q, &x->replica, err);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    return HIVE_OK;
}

/* Adds what q's nodes computed into list[0..n) (merged by node name). */
static int fleet_seq_credit_add(struct hive_sched_node *list, int n, int cap, const hive_seq *q) {
    struct hive_sched_node c[HIVE_PLAN_MAX_NODES];
    int k = hive_seq_credit(q, c, HIVE_PLAN_MAX_NODES);
    for (int i = 0; i < k; i++) {
        int j = 0;
        while (j < n && strcmp(list[j].name, c[i].name)) j++;
        if (j == n) {
            if (n == cap) continue;
            list[n++] = c[i];
            continue;
        }
        list[j].tokens += c[i].tokens;
        list[j].layer_passes += c[i].layer_passes;
    }
    return n;
}

int hive_fleet_seq_credit(const hive_fleet_seq *x, struct hive_sched_node *out, int cap) {
    int n = x->n_credit < cap ? x->n_credit : cap;
    memcpy(out, x->credit, (size_t)n * sizeof *out);
    return fleet_seq_credit_add(out, n, cap, x->q);
}

/* The replica failed under the sequence: go on on another one from its
 * log and sampler. Returns 0, or -1 (the old sequence stays, with its error). */
static int fleet_seq_move(hive_fleet_seq *x) {
    if (x->moves >= FLEET_MAX_MOVES) return -1;
    int32_t *log = NULL;
    int n_log = 0;
    struct hive_sampler sampler;
    if (hive_seq_state(x->q, &log, &n_log, &sampler)) return -1;
    int done = n_log - x->n_prompt; /* generated, on every replica so far */
    struct hive_seq_params p = x->params;
    p.prompt = log;
    p.n_prompt = n_log;
    p.resume = &sampler;
    p.max_tokens = x->max_tokens > 0 ? x->max_tokens - done : 0;
    hive_seq *q = NULL;
    int replica = -1;
    char err[HIVE_ERR_LEN];
    int rc = p.max_tokens < 0 ? HIVE_ERR_INVAL : hive_fleet_submit(x->f, &p, x->replica, &q, &replica, err);
    free(log);
    if (rc || replica == x->replica) {
        if (q) hive_seq_release(q);
        return -1;
    }
    if (x->moves == 0) x->ttft_ms = hive_seq_ttft_ms(x->q);
    x->n_credit = fleet_seq_credit_add(x->credit, x->n_credit, HIVE_PLAN_MAX_NODES, x->q);
    hive_seq_release(x->q);
    x->q = q;
    x->replica = replica;
    x->n_before = done;
    x->moves++;
    return 0;
}

int hive_fleet_seq_next(hive_fleet_seq *x, int32_t *token, int timeout_ms) {
    for (;;) {
        int rc = hive_seq_next(x->q, token, timeout_ms);
        if (rc != 0) return rc;
        if (hive_seq_finish(x->q) != HIVE_FINISH_ERROR || hive_fleet_replica_ok(x->f, x->replica)) return 0;
        if (fleet_seq_move(x)) return 0;
    }
}

enum hive_finish hive_fleet_seq_finish(const hive_fleet_seq *x) { return hive_seq_finish(x->q); }
const char *hive_fleet_seq_error(const hive_fleet_seq *x) { return hive_seq_error(x->q); }
int hive_fleet_seq_moves(const hive_fleet_seq *x) { return x->moves; }

void hive_fleet_seq_usage(const hive_fleet_seq *x, int *n_prompt, int *n_generated) {
    int np, ng;
    hive_seq_usage(x->q, &np, &ng);
    *n_prompt = x->n_prompt;
    *n_generated = x->n_before + ng;
}

double hive_fleet_seq_ttft_ms(const hive_fleet_seq *x) { return x->moves ? x->ttft_ms : hive_seq_ttft_ms(x->q); }

void hive_fleet_seq_release(hive_fleet_seq *x) {
    if (!x) return;
    hive_seq_release(x->q);
    free(x);
}
