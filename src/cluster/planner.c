/* planner.c - assigns contiguous layer ranges to nodes.
 *
 * Cost model (per generated token, one sequence in flight):
 *   time = sum over stages of read_bytes(stage) / speed(node)
 *        + sum over hops of (latency(a) + latency(b))      [star LAN model]
 * The ring is head -> s1 -> ... -> sN -> head and every node takes part in
 * exactly two hops, so a node's share of the hop cost is 2 x its latency
 * (plus 2 x hidden_bytes / bandwidth when a bandwidth is known). The head
 * counts as latency 0. With the cost separable per node, the node order
 * does not change the cost and the planner keeps the order it was given.
 *
 * Search: dynamic programming over (nodes considered, layers assigned):
 * f[i][l] = best cost with nodes [0, i) holding layers [0, l). A node is
 * either skipped or given [l, l2). O(n_nodes * n_layer^2). Ties on the total
 * go to the plan whose slowest stage computes fastest (lexicographic order
 * is preserved by extension, so the DP stays exact). The tie-break counts
 * compute only: hop latency does not occupy a stage, and it is measured
 * with noise, which would otherwise move the split from run to run among
 * equally fast plans and defeat the nodes' weight caches.
 *
 * Measured inputs are snapped to a grid before planning (speeds to steps of
 * 2^(1/8), about 9%; latencies up to a multiple of 0.25 ms), because the objective is exact:
 * of two equal nodes measured 3% apart the "faster" would get every layer it
 * can hold, and of equal latencies the lower would win, so noise picked the
 * nodes. On the grid, equal machines are equal, and the DP (deterministic,
 * first-found wins exact ties, node order kept) gives the same plan for
 * the same grid values. Costs in the plan are computed from snapped values. */
#include "hive/cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hive/model.h"

uint64_t hive_plan_stage_mem(const struct hive_model_profile *p, int first, int last) {
    uint64_t m = p->scratch_bytes;
    for (int l = first; l < last; l++) m += p->layer_mem[l] + p->kv_per_layer;
    if (first == 0) m += p->first_mem;
    if (last == p->n_layer) m += p->last_mem;
    return m;
}

static uint64_t stage_weight_bytes(const struct hive_model_profile *p, int first, int last) {
    uint64_t m = 0;
    for (int l = first; l < last; l++) m += p->layer_mem[l];
    if (first == 0) m += p->first_mem;
    if (last == p->n_layer) m += p->last_mem;
    return m;
}

static uint64_t stage_read_bytes(const struct hive_model_profile *p, int first, int last) {
    uint64_t r = 0;
    for (int l = first; l < last; l++) r += p->layer_read[l];
    if (first == 0) r += p->first_read;
    if (last == p->n_layer) r += p->last_read;
    return r;
}

static double hop_share_ms(const struct hive_model_profile *p, const struct hive_plan_node *nd) {
    double ms = 2.0 * (nd->latency_ms > 0 ? nd->latency_ms : 0);
    if (nd->bandwidth_bps > 0) ms += 2.0 * 1000.0 * (double)p->hidden_bytes / nd->bandwidth_bps;
    return ms;
}

static double compute_ms(const struct hive_model_profile *p, const struct hive_plan_node *nd, int first,
                         int last) {
    return 1000.0 * (double)stage_read_bytes(p, first, last) / nd->speed_bps;
}

double hive_plan_stage_cost_ms(const struct hive_model_profile *p, const struct hive_plan_node *nd, int first,
                               int last) {
    return compute_ms(p, nd, first, last) + hop_share_ms(p, nd);
}

double hive_plan_expected_ms(const struct hive_model_profile *p, const struct hive_plan *plan,
                             const struct hive_plan_node *nodes) {
    double ms = 0;
    for (int s = 0; s < plan->n_stages; s++) {
        const struct hive_plan_stage *st = &plan->stage[s];
        ms += hive_plan_stage_cost_ms(p, &nodes[st->node], st->first, st->last);
    }
    return ms;
}

#define SPEED_STEPS_PER_OCTAVE 8
#define LATENCY_GRID_MS 0.25

double hive_plan_round_speed(double bps) {
    if (!(bps > 0) || !isfinite(bps)) return bps > 0 ? bps : 0;
    return exp2(round(log2(bps) * SPEED_STEPS_PER_OCTAVE) / SPEED_STEPS_PER_OCTAVE);
}

double hive_plan_round_latency(double ms) {
    if (!(ms > 0)) return 0;
    /* Up, never to 0: a zero hop cost would make splitting free and spread
     * loopback nodes (0.02-0.09 ms) over every stage. */
    return ceil(ms / LATENCY_GRID_MS - 1e-9) * LATENCY_GRID_MS;
}

static struct hive_plan_node snapped(const struct hive_plan_node *nd) {
    struct hive_plan_node q = *nd;
    q.speed_bps = hive_plan_round_speed(nd->speed_bps);
    q.latency_ms = hive_plan_round_latency(nd->latency_ms);
    q.bandwidth_bps = hive_plan_round_speed(nd->bandwidth_bps);
    return q;
}

/* ---- prefix sums: a stage's bytes in O(1) (the replica search plans
 * thousands of node groups). Integer sums, so the costs are the same, bit
 * for bit, as the loops above give. ---- */

struct sums {
    const struct hive_model_profile *p;
    uint64_t *mem, *read; /* [l] = sum over layers [0, l); n_layer + 1 entries */
};

static int sums_init(struct sums *s, const struct hive_model_profile *p) {
    s->p = p;
    s->mem = hive_malloc_array((size_t)p->n_layer + 1, sizeof *s->mem);
    s->read = hive_malloc_array((size_t)p->n_layer + 1, sizeof *s->read);
    if (!s->mem || !s->read) {
        free(s->mem);
        free(s->read);
        return HIVE_ERR_NOMEM;
    }
    s->mem[0] = s->read[0] = 0;
    for (int l = 0; l < p->n_layer; l++) {
        s->mem[l + 1] = s->mem[l] + p->layer_mem[l] + p->kv_per_layer;
        s->read[l + 1] = s->read[l] + p->layer_read[l];
    }
    return HIVE_OK;
}

static void sums_free(struct sums *s) {
    free(s->mem);
    free(s->read);
}

static uint64_t fast_mem(const struct sums *s, int first, int last) {
    const struct hive_model_profile *p = s->p;
    return p->scratch_bytes + (s->mem[last] - s->mem[first]) + (first == 0 ? p->first_mem : 0) +
           (last == p->n_layer ? p->last_mem : 0);
}

static double fast_compute_ms(const struct sums *s, const struct hive_plan_node *nd, int first, int last) {
    const struct hive_model_profile *p = s->p;
    uint64_t r = (s->read[last] - s->read[first]) + (first == 0 ? p->first_read : 0) +
                 (last == p->n_layer ? p->last_read : 0);
    return 1000.0 * (double)r / nd->speed_bps;
}

/* ---- dynamic programme ---- */

struct cell {
    double sum, max; /* total cost so far, slowest stage's compute so far */
    int valid;
    int prev_l;      /* layers assigned before node i-1 */
    int used;        /* node i-1 took [prev_l, l) */
};

static int better(double sum_a, double max_a, const struct cell *b) {
    if (!b->valid) return 1;
    double eps = 1e-9 * (1.0 + fabs(b->sum));
    if (sum_a < b->sum - eps) return 1;
    if (sum_a > b->sum + eps) return 0;
    return max_a < b->max - 1e-9 * (1.0 + fabs(b->max));
}

/* force: node that must hold layers (-1: none). Fills plan stages on success.
 * Returns 1 if a feasible plan exists. */
static int solve(const struct sums *sm, const struct hive_plan_node *nodes, int n, int use_all, int force,
                 struct hive_plan *plan, struct cell *f) {
    const struct hive_model_profile *p = sm->p;
    int L = p->n_layer;
    for (int i = 0; i <= n; i++)
        for (int l = 0; l <= L; l++) f[(size_t)i * (L + 1) + l].valid = 0;
    f[0].valid = 1;
    f[0].sum = f[0].max = 0;
    for (int i = 0; i < n; i++) {
        const struct hive_plan_node *nd = &nodes[i];
        int must = use_all || i == force;
        for (int l = 0; l <= L; l++) {
            const struct cell *c = &f[(size_t)i * (L + 1) + l];
            if (!c->valid) continue;
            if (!must) {
                struct cell *d = &f[(size_t)(i + 1) * (L + 1) + l];
                if (better(c->sum, c->max, d)) *d = (struct cell){c->sum, c->max, 1, l, 0};
            }
            if (nd->speed_bps <= 0) continue;
            double hop = hop_share_ms(p, nd);
            for (int l2 = l + 1; l2 <= L; l2++) {
                if (fast_mem(sm, l, l2) > nd->mem_budget) break; /* grows with l2 */
                double busy = fast_compute_ms(sm, nd, l, l2), cost = busy + hop;
                double sum = c->sum + cost, mx = c->max > busy ? c->max : busy;
                struct cell *d = &f[(size_t)(i + 1) * (L + 1) + l2];
                if (better(sum, mx, d)) *d = (struct cell){sum, mx, 1, l, 1};
            }
        }
    }
    const struct cell *end = &f[(size_t)n * (L + 1) + L];
    if (!end->valid) return 0;
    if (!plan) return 1;
    /* Walk back. */
    int idx[HIVE_PLAN_MAX_NODES], firsts[HIVE_PLAN_MAX_NODES], lasts[HIVE_PLAN_MAX_NODES], k = 0;
    int l = L;
    for (int i = n; i > 0; i--) {
        const struct cell *c = &f[(size_t)i * (L + 1) + l];
        if (c->used) {
            idx[k] = i - 1;
            firsts[k] = c->prev_l;
            lasts[k] = l;
            k++;
        }
        l = c->prev_l;
    }
    plan->n_stages = k;
    plan->compute_ms = plan->hop_ms = 0;
    for (int i = 0; i < n; i++) plan->stage_of[i] = -1;
    for (int s = 0; s < k; s++) {
        int j = k - 1 - s;
        struct hive_plan_stage *st = &plan->stage[s];
        const struct hive_plan_node *nd = &nodes[idx[j]];
        st->node = idx[j];
        st->first = firsts[j];
        st->last = lasts[j];
        st->mem_bytes = hive_plan_stage_mem(p, st->first, st->last);
        st->weight_bytes = stage_weight_bytes(p, st->first, st->last);
        st->read_bytes = stage_read_bytes(p, st->first, st->last);
        st->compute_ms = compute_ms(p, nd, st->first, st->last);
        st->hop_ms = hop_share_ms(p, nd);
        plan->compute_ms += st->compute_ms;
        plan->hop_ms += st->hop_ms;
        plan->stage_of[idx[j]] = s;
    }
    plan->total_ms = plan->compute_ms + plan->hop_ms;
    return 1;
}

static uint64_t smallest_stage_mem(const struct hive_model_profile *p) {
    uint64_t best = UINT64_MAX;
    for (int l = 0; l < p->n_layer; l++) {
        uint64_t m = hive_plan_stage_mem(p, l, l + 1);
        if (m < best) best = m;
    }
    return best;
}

/* Writes why nd can hold no stage at all, and returns 1; 0 when it could. */
static int unusable_why(const struct hive_plan_node *nd, uint64_t smallest, char *why, size_t cap) {
    char a[32], b[32];
    if (nd->speed_bps <= 0) snprintf(why, cap, "no measured speed");
    else if (nd->mem_budget < smallest)
        snprintf(why, cap, "memory budget %s is below the smallest stage (%s)",
                 hive_format_size(nd->mem_budget, a, sizeof a), hive_format_size(smallest, b, sizeof b));
    else return 0;
    return 1;
}

int hive_plan_make(const struct hive_model_profile *p, const struct hive_plan_node *given, int n_nodes,
                   const struct hive_plan_opts *o, struct hive_plan *out, char *err) {
    memset(out, 0, sizeof *out);
    if (n_nodes <= 0 || n_nodes > HIVE_PLAN_MAX_NODES)
        return hive_errf(err, HIVE_ERR_INVAL, "plan: need 1..%d nodes, got %d", HIVE_PLAN_MAX_NODES, n_nodes);
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    for (int i = 0; i < n_nodes; i++) nodes[i] = snapped(&given[i]);
    if (p->n_layer <= 0) return hive_errf(err, HIVE_ERR_INVAL, "plan: model has no layers");
    int use_all = o && o->use_all;
    if (use_all && n_nodes > p->n_layer)
        return hive_errf(err, HIVE_ERR_INVAL, "plan: %d nodes but the model has only %d layers", n_nodes,
                         p->n_layer);
    out->n_nodes = n_nodes;
    struct cell *f = hive_malloc_array((size_t)(n_nodes + 1) * (size_t)(p->n_layer + 1), sizeof *f);
    struct sums sm;
    if (!f || sums_init(&sm, p)) {
        free(f);
        return hive_errf(err, HIVE_ERR_NOMEM, "plan: out of memory");
    }
    if (!solve(&sm, nodes, n_nodes, use_all, -1, out, f)) {
        uint64_t total = hive_plan_stage_mem(p, 0, p->n_layer), offered = 0, largest = 0;
        for (int i = 0; i < n_nodes; i++) {
            offered += nodes[i].mem_budget;
            if (nodes[i].mem_budget > largest) largest = nodes[i].mem_budget;
        }
        char a[32], b[32], c[32], d[32];
        hive_format_size(stage_weight_bytes(p, 0, p->n_layer), a, sizeof a);
        hive_format_size(total, b, sizeof b);
        hive_format_size(offered, c, sizeof c);
        hive_format_size(largest, d, sizeof d);
        free(f);
        sums_free(&sm);
        return hive_errf(err, HIVE_ERR_INVAL,
                         "the model does not fit: it needs %s of weights (%s with KV cache and scratch "
                         "in one piece); the %d node%s offer%s %s in total, the largest %s%s",
                         a, b, n_nodes, n_nodes == 1 ? "" : "s", n_nodes == 1 ? "s" : "", c, d,
                         use_all ? " (every node must hold a layer)" : "");
    }
    /* Reasons for the nodes left out. */
    uint64_t smallest = smallest_stage_mem(p);
    for (int i = 0; i < n_nodes; i++) {
        if (out->stage_of[i] >= 0) continue;
        if (unusable_why(&nodes[i], smallest, out->why[i], sizeof out->why[i])) {
        } else {
            struct hive_plan with;
            if (!solve(&sm, nodes, n_nodes, 0, i, &with, f))
                snprintf(out->why[i], sizeof out->why[i], "no plan that includes it fits the memory budgets");
            else
                snprintf(out->why[i], sizeof out->why[i],
                         "not needed: the ring is faster without it (%.3f vs %.3f ms/token)", out->total_ms,
                         with.total_ms);
        }
    }
    free(f);
    sums_free(&sm);
    return HIVE_OK;
}

/* One line per stage, after head. */
static void print_stage(FILE *f, const char *head, const struct hive_plan_stage *st, const struct hive_plan_node *nd) {
    char w[32], m[32], b[32];
    fprintf(f, "%s%-24s layers [%d, %d)  weights %s  memory %s of %s  %.3f ms/token (%.0f MB/s)\n", head, nd->name,
            st->first, st->last, hive_format_size(st->weight_bytes, w, sizeof w),
            hive_format_size(st->mem_bytes, m, sizeof m), hive_format_size(nd->mem_budget, b, sizeof b),
            st->compute_ms + st->hop_ms, hive_plan_round_speed(nd->speed_bps) / 1e6);
}

void hive_plan_print(FILE *f, const struct hive_plan *plan, const struct hive_plan_node *nodes) {
    fprintf(f, "plan: %d stage%s, expected %.3f ms/token (compute %.3f + hops %.3f)\n", plan->n_stages,
            plan->n_stages == 1 ? "" : "s", plan->total_ms, plan->compute_ms, plan->hop_ms);
    for (int s = 0; s < plan->n_stages; s++) {
        char head[32];
        snprintf(head, sizeof head, "  stage %d  ", s);
        print_stage(f, head, &plan->stage[s], &nodes[plan->stage[s].node]);
    }
    for (int i = 0; i < plan->n_nodes; i++)
        if (plan->stage_of[i] < 0) fprintf(f, "  left out %-24s %s\n", nodes[i].name, plan->why[i]);
}

/* ======================================================================
 * Replicas (see hive/cluster.h): which groups of nodes form pipelines.
 * ====================================================================== */

/* Scratch shared by the group plans of one search. */
struct search {
    const struct sums *sm;
    const struct hive_plan_node *nodes; /* snapped */
    struct cell *f;                     /* (HIVE_PLAN_MAX_NODES + 1) x (n_layer + 1) */
    struct hive_plan *tmp;
};

/* The fastest pipeline over the nodes idx[0, k) (use_all: each holds a
 * layer; else some may be left out). Returns its ms per token, or -1 when
 * none fits. Fills r when not NULL (stage nodes are indices into the full
 * list). */
static double group_pipeline(struct search *s, const int *idx, int k, int use_all, struct hive_replica *r) {
    int L = s->sm->p->n_layer;
    if (k <= 0 || (use_all && k > L)) return -1;
    struct hive_plan_node sub[HIVE_PLAN_MAX_NODES];
    for (int i = 0; i < k; i++) sub[i] = s->nodes[idx[i]];
    if (!solve(s->sm, sub, k, use_all, -1, r ? s->tmp : NULL, s->f)) return -1;
    double ms = s->f[(size_t)k * (L + 1) + L].sum;
    if (r) {
        const struct hive_plan *pl = s->tmp;
        memset(r, 0, sizeof *r);
        r->n_stages = pl->n_stages;
        for (int j = 0; j < pl->n_stages; j++) {
            r->stage[j] = pl->stage[j];
            r->stage[j].node = idx[pl->stage[j].node];
        }
        r->compute_ms = pl->compute_ms;
        r->hop_ms = pl->hop_ms;
        r->total_ms = pl->total_ms;
        r->tok_s = 1000.0 / (r->total_ms > 1e-12 ? r->total_ms : 1e-12);
    }
    return ms;
}

static double tok_s_of(double ms) { return 1000.0 / (ms > 1e-12 ? ms : 1e-12); }

/* Exhaustive: tok[g] for every group g (a bit mask of nodes), then
 * best[m] = the best aggregate over the nodes of m, where m's lowest node is
 * either left out or in a group g of m: tok[g] + best[m \ g]. 2^n group
 * plans and 3^n steps; n <= HIVE_REPLICA_EXACT_MAX. Writes the chosen groups
 * (masks, lowest node ascending) into groups. */
static int search_exact(struct search *s, int n, unsigned *groups, int *n_groups) {
    unsigned full = (1u << n) - 1;
    double *tok = hive_malloc_array((size_t)full + 1, sizeof *tok);
    double *best = hive_malloc_array((size_t)full + 1, sizeof *best);
    unsigned *choice = hive_malloc_array((size_t)full + 1, sizeof *choice);
    if (!tok || !best || !choice) {
        free(tok), free(best), free(choice);
        return HIVE_ERR_NOMEM;
    }
    tok[0] = 0;
    for (unsigned g = 1; g <= full; g++) {
        int idx[HIVE_PLAN_MAX_NODES], k = 0;
        for (int i = 0; i < n; i++)
            if (g >> i & 1) idx[k++] = i;
        double ms = group_pipeline(s, idx, k, 1, NULL);
        tok[g] = ms < 0 ? 0 : tok_s_of(ms);
    }
    best[0] = 0;
    for (unsigned m = 1; m <= full; m++) {
        unsigned low = m & -m, rest = m ^ low;
        double b = best[rest]; /* the lowest node left out */
        unsigned ch = 0;
        for (unsigned sub = rest;; sub = (sub - 1) & rest) {
            unsigned g = sub | low;
            if (tok[g] > 0) {
                double v = tok[g] + best[m ^ g];
                if (v > b + 1e-9 * (1.0 + b)) b = v, ch = g;
            }
            if (!sub) break;
        }
        best[m] = b;
        choice[m] = ch;
    }
    *n_groups = 0;
    for (unsigned m = full; m;) {
        unsigned ch = choice[m];
        if (ch) groups[(*n_groups)++] = ch;
        m ^= ch ? ch : (m & -m);
    }
    free(tok), free(best), free(choice);
    return HIVE_OK;
}

static int first_node(const struct hive_replica *r) {
    int m = HIVE_PLAN_MAX_NODES;
    for (int j = 0; j < r->n_stages; j++)
        if (r->stage[j].node < m) m = r->stage[j].node;
    return m;
}

int hive_plan_replicas(const struct hive_model_profile *p, const struct hive_plan_node *given, int n_nodes,
                       struct hive_replica_plan *out, char *err) {
    memset(out, 0, sizeof *out);
    if (n_nodes <= 0 || n_nodes > HIVE_PLAN_MAX_NODES)
        return hive_errf(err, HIVE_ERR_INVAL, "plan: need 1..%d nodes, got %d", HIVE_PLAN_MAX_NODES, n_nodes);
    if (p->n_layer <= 0) return hive_errf(err, HIVE_ERR_INVAL, "plan: model has no layers");
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    for (int i = 0; i < n_nodes; i++) nodes[i] = snapped(&given[i]);
    struct sums sm;
    struct search s = {&sm, nodes, NULL, NULL};
    s.f = hive_malloc_array((size_t)(HIVE_PLAN_MAX_NODES + 1) * (size_t)(p->n_layer + 1), sizeof *s.f);
    s.tmp = malloc(sizeof *s.tmp);
    if (!s.f || !s.tmp || sums_init(&sm, p)) {
        free(s.f), free(s.tmp);
        return hive_errf(err, HIVE_ERR_NOMEM, "plan: out of memory");
    }
    int rc = HIVE_OK, all[HIVE_PLAN_MAX_NODES];
    for (int i = 0; i < n_nodes; i++) all[i] = i;
    out->n_nodes = n_nodes;
    double single_ms = group_pipeline(&s, all, n_nodes, 0, NULL);
    out->single_tok_s = single_ms < 0 ? 0 : tok_s_of(single_ms);
    if (single_ms < 0) { /* nothing fits: hive_plan_make says why */
        rc = hive_plan_make(p, given, n_nodes, NULL, s.tmp, err);
        if (!rc) rc = hive_errf(err, HIVE_ERR_INVAL, "plan: no replica fits");
        goto done;
    }
    out->exact = n_nodes <= HIVE_REPLICA_EXACT_MAX;
    if (out->exact) {
        unsigned groups[HIVE_PLAN_MAX_NODES];
        int ng = 0;
        rc = search_exact(&s, n_nodes, groups, &ng);
        if (rc) {
            rc = hive_errf(err, rc, "plan: out of memory");
            goto done;
        }
        for (int gi = 0; gi < ng; gi++) {
            int idx[HIVE_PLAN_MAX_NODES], k = 0;
            for (int i = 0; i < n_nodes; i++)
                if (groups[gi] >> i & 1) idx[k++] = i;
            group_pipeline(&s, idx, k, 1, &out->replica[out->n_replicas++]);
        }
    } else {
        /* Greedy: the fastest pipeline the nodes left can form, while one fits. */
        int left[HIVE_PLAN_MAX_NODES], nl = n_nodes;
        memcpy(left, all, sizeof left);
        while (nl > 0) {
            struct hive_replica *r = &out->replica[out->n_replicas];
            if (group_pipeline(&s, left, nl, 0, r) < 0) break;
            out->n_replicas++;
            int k = 0;
            for (int i = 0; i < nl; i++) {
                int used = 0;
                for (int j = 0; j < r->n_stages; j++) used |= r->stage[j].node == left[i];
                if (!used) left[k++] = left[i];
            }
            nl = k;
        }
    }
    /* Replicas by their first node (insertion sort: few, and stable). */
    for (int a = 1; a < out->n_replicas; a++) {
        struct hive_replica *r = &out->replica[a];
        int b = a;
        while (b > 0 && first_node(&out->replica[b - 1]) > first_node(r)) b--;
        if (b == a) continue;
        struct hive_replica t = *r;
        memmove(&out->replica[b + 1], &out->replica[b], (size_t)(a - b) * sizeof t);
        out->replica[b] = t;
    }
    for (int i = 0; i < n_nodes; i++) out->replica_of[i] = -1;
    for (int k = 0; k < out->n_replicas; k++) {
        out->agg_tok_s += out->replica[k].tok_s;
        for (int j = 0; j < out->replica[k].n_stages; j++) out->replica_of[out->replica[k].stage[j].node] = k;
    }
    /* Reasons for the nodes left out. */
    uint64_t smallest = smallest_stage_mem(p), left_mem = 0;
    int n_left = 0;
    for (int i = 0; i < n_nodes; i++)
        if (out->replica_of[i] < 0) left_mem += nodes[i].mem_budget, n_left++;
    uint64_t whole = hive_plan_stage_mem(p, 0, p->n_layer);
    for (int i = 0; i < n_nodes; i++) {
        if (out->replica_of[i] >= 0 || unusable_why(&nodes[i], smallest, out->why[i], sizeof out->why[i])) continue;
        char a[32], b[32], join[80] = "";
        /* The replica it would slow down least, if it can join one. */
        int best_k = -1;
        double best_ms = 0;
        for (int k = 0; k < out->n_replicas; k++) {
            const struct hive_replica *r = &out->replica[k];
            int idx[HIVE_PLAN_MAX_NODES + 1], m = 0;
            for (int j = 0; j < r->n_stages; j++) idx[m++] = r->stage[j].node;
            idx[m++] = i;
            double ms = group_pipeline(&s, idx, m, 1, NULL);
            if (ms >= 0 && (best_k < 0 || ms - out->replica[k].total_ms < best_ms - out->replica[best_k].total_ms))
                best_k = k, best_ms = ms;
        }
        if (best_k >= 0)
            snprintf(join, sizeof join, "replica %d is faster without it (%.1f vs %.1f ms/token); ", best_k,
                     out->replica[best_k].total_ms, best_ms);
        if (left_mem < whole)
            snprintf(out->why[i], sizeof out->why[i], "%sthe %d node%s left over offer%s %s, another replica needs %s",
                     join, n_left, n_left == 1 ? "" : "s", n_left == 1 ? "s" : "",
                     hive_format_size(left_mem, a, sizeof a), hive_format_size(whole, b, sizeof b));
        else
            snprintf(out->why[i], sizeof out->why[i], "%sthe aggregate is higher without it", join);
    }
done:
    sums_free(&sm);
    free(s.f);
    free(s.tmp);
    return rc;
}

void hive_replica_plan_print(FILE *f, const struct hive_replica_plan *rp, const struct hive_plan_node *nodes) {
    fprintf(f, "replicas: %d, aggregate %.2f tok/s (one stream per replica; %s search)\n", rp->n_replicas,
            rp->agg_tok_s, rp->exact ? "exhaustive" : "greedy");
    for (int k = 0; k < rp->n_replicas; k++) {
        const struct hive_replica *r = &rp->replica[k];
        fprintf(f, "  replica %d: %d stage%s, %.2f tok/s single-stream (%.3f ms/token: compute %.3f + hops %.3f)\n",
                k, r->n_stages, r->n_stages == 1 ? "" : "s", r->tok_s, r->total_ms, r->compute_ms, r->hop_ms);
        for (int j = 0; j < r->n_stages; j++) print_stage(f, "    ", &r->stage[j], &nodes[r->stage[j].node]);
    }
    for (int i = 0; i < rp->n_nodes; i++)
        if (rp->replica_of[i] < 0) fprintf(f, "  left out %-24s %s\n", nodes[i].name, rp->why[i]);
    if (rp->single_tok_s > 0)
        fprintf(f, "why: one pipeline over these nodes would give %.2f tok/s; %d replica%s give%s %.2f tok/s in "
                   "aggregate (%.2fx)\n",
                rp->single_tok_s, rp->n_replicas, rp->n_replicas == 1 ? "" : "s", rp->n_replicas == 1 ? "s" : "",
                rp->agg_tok_s,
                rp->agg_tok_s / rp->single_tok_s);
}
