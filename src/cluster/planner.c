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
static int solve(const struct hive_model_profile *p, const struct hive_plan_node *nodes, int n, int use_all,
                 int force, struct hive_plan *plan, struct cell *f) {
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
            for (int l2 = l + 1; l2 <= L; l2++) {
                if (hive_plan_stage_mem(p, l, l2) > nd->mem_budget) break; /* grows with l2 */
                double cost = hive_plan_stage_cost_ms(p, nd, l, l2), busy = compute_ms(p, nd, l, l2);
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
    if (!f) return hive_errf(err, HIVE_ERR_NOMEM, "plan: out of memory");
    if (!solve(p, nodes, n_nodes, use_all, -1, out, f)) {
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
        char a[32], b[32];
        if (nodes[i].speed_bps <= 0) {
            snprintf(out->why[i], sizeof out->why[i], "no measured speed");
        } else if (nodes[i].mem_budget < smallest) {
            snprintf(out->why[i], sizeof out->why[i], "memory budget %s is below the smallest stage (%s)",
                     hive_format_size(nodes[i].mem_budget, a, sizeof a), hive_format_size(smallest, b, sizeof b));
        } else {
            struct hive_plan with;
            if (!solve(p, nodes, n_nodes, 0, i, &with, f))
                snprintf(out->why[i], sizeof out->why[i], "no plan that includes it fits the memory budgets");
            else
                snprintf(out->why[i], sizeof out->why[i],
                         "not needed: the ring is faster without it (%.3f vs %.3f ms/token)", out->total_ms,
                         with.total_ms);
        }
    }
    free(f);
    return HIVE_OK;
}

void hive_plan_print(FILE *f, const struct hive_plan *plan, const struct hive_plan_node *nodes) {
    fprintf(f, "plan: %d stage%s, expected %.3f ms/token (compute %.3f + hops %.3f)\n", plan->n_stages,
            plan->n_stages == 1 ? "" : "s", plan->total_ms, plan->compute_ms, plan->hop_ms);
    for (int s = 0; s < plan->n_stages; s++) {
        const struct hive_plan_stage *st = &plan->stage[s];
        const struct hive_plan_node *nd = &nodes[st->node];
        char w[32], m[32], b[32];
        fprintf(f, "  stage %d  %-24s layers [%d, %d)  weights %s  memory %s of %s  %.3f ms/token (%.0f MB/s)\n",
                s, nd->name, st->first, st->last, hive_format_size(st->weight_bytes, w, sizeof w),
                hive_format_size(st->mem_bytes, m, sizeof m), hive_format_size(nd->mem_budget, b, sizeof b),
                st->compute_ms + st->hop_ms, hive_plan_round_speed(nd->speed_bps) / 1e6);
    }
    for (int i = 0; i < plan->n_nodes; i++)
        if (plan->stage_of[i] < 0) fprintf(f, "  left out %-24s %s\n", nodes[i].name, plan->why[i]);
}
