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
