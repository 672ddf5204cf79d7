/* test_planner.c - the planner on synthetic nodes and models: memory caps,
 * leaving out a slow node, refusal, use_all, and optimality against a brute
 * force search that computes costs independently from the documented model
 * (stage time = read bytes / speed, each node adds 2 x its latency, speeds
 * snapped to steps of 2^(1/8) and latencies up to 0.25 ms steps first); determinism:
 * equal inputs, and inputs a few % apart, give the same plan byte for byte. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hive/cluster.h"

#define MB (1024.0 * 1024.0)

/* ---- independent cost model ---- */

static uint64_t ref_mem(const struct hive_model_profile *p, int a, int b) {
    uint64_t m = p->scratch_bytes;
    for (int l = a; l < b; l++) m += p->layer_mem[l] + p->kv_per_layer;
    if (a == 0) m += p->first_mem;
    if (b == p->n_layer) m += p->last_mem;
    return m;
}

static double ref_cost(const struct hive_model_profile *p, const struct hive_plan_node *nd, int a, int b) {
    double r = 0;
    for (int l = a; l < b; l++) r += (double)p->layer_read[l];
    if (a == 0) r += (double)p->first_read;
    if (b == p->n_layer) r += (double)p->last_read;
    /* The documented snapping, computed here without the planner's helpers. */
    double speed = pow(2.0, floor(log2(nd->speed_bps) * 8.0 + 0.5) / 8.0);
    double lat = nd->latency_ms > 0 ? ceil(nd->latency_ms * 4.0 - 1e-9) / 4.0 : 0;
    return 1000.0 * r / speed + 2.0 * lat;
}

/* Best total over all subsets/splits in node order; INFINITY if none fits. */
static double brute(const struct hive_model_profile *p, const struct hive_plan_node *nodes, int n, int i, int l,
                    int use_all) {
    if (l == p->n_layer) {
        if (use_all && i < n) return INFINITY;
        return 0;
    }
    if (i == n) return INFINITY;
    double best = use_all ? INFINITY : brute(p, nodes, n, i + 1, l, use_all);
    for (int b = l + 1; b <= p->n_layer; b++) {
        if (ref_mem(p, l, b) > nodes[i].mem_budget) continue;
        double c = ref_cost(p, &nodes[i], l, b) + brute(p, nodes, n, i + 1, b, use_all);
        if (c < best) best = c;
    }
    return best;
}

/* Structural checks every plan must pass; returns its independently computed cost. */
static double check_plan(const struct hive_plan *plan, const struct hive_model_profile *p,
                         const struct hive_plan_node *nodes, int n) {
    CHECK(plan->n_stages >= 1);
    int expect_first = 0, prev_node = -1;
    double total = 0;
    for (int s = 0; s < plan->n_stages; s++) {
        const struct hive_plan_stage *st = &plan->stage[s];
        CHECKF(st->first == expect_first, "stage %d starts at %d, expected %d", s, st->first, expect_first);
        CHECK(st->last > st->first);
        CHECK(st->node > prev_node && st->node < n); /* node order kept, no node twice */
        CHECK(plan->stage_of[st->node] == s);
        CHECKF(ref_mem(p, st->first, st->last) <= nodes[st->node].mem_budget, "stage %d over budget", s);
        CHECK(st->mem_bytes == ref_mem(p, st->first, st->last));
        total += ref_cost(p, &nodes[st->node], st->first, st->last);
        expect_first = st->last;
        prev_node = st->node;
    }
    CHECK(expect_first == p->n_layer);
    CHECKF(fabs(total - plan->total_ms) <= 1e-9 * (1 + total), "plan says %.6f ms, recomputed %.6f", plan->total_ms,
           total);
    for (int i = 0; i < n; i++)
        if (plan->stage_of[i] < 0) CHECKF(plan->why[i][0] != '\0', "node %d left out without a reason", i);
    return total;
}

/* 8 layers of 100 MB, embedding 50 MB (reads 1 MB), head 60 MB, 1 MB KV per layer, 5 MB scratch. */
static uint64_t g_mem[64], g_read[64];
static struct hive_model_profile make_profile(int n_layer) {
    struct hive_model_profile p = {0};
    p.n_layer = n_layer;
    for (int l = 0; l < n_layer; l++) g_mem[l] = g_read[l] = (uint64_t)(100 * MB);
    p.layer_mem = g_mem;
    p.layer_read = g_read;
    p.first_mem = (uint64_t)(50 * MB);
    p.first_read = (uint64_t)(1 * MB);
    p.last_mem = p.last_read = (uint64_t)(60 * MB);
    p.kv_per_layer = (uint64_t)(1 * MB);
    p.scratch_bytes = (uint64_t)(5 * MB);
    p.hidden_bytes = 4096;
    return p;
}

static struct hive_plan_node node(const char *name, double mem_mb, double speed_gbs, double lat_ms) {
    struct hive_plan_node nd = {0};
    snprintf(nd.name, sizeof nd.name, "%s", name);
    nd.mem_budget = (uint64_t)(mem_mb * MB);
    nd.speed_bps = speed_gbs * 1e9;
    nd.latency_ms = lat_ms;
    return nd;
}

static void test_single_big_node(void) {
    struct hive_model_profile p = make_profile(8);
    struct hive_plan_node nodes[3] = {node("a", 4096, 10, 0.2), node("b", 4096, 10, 0.2), node("c", 4096, 10, 0.2)};
    struct hive_plan plan;
    char err[HIVE_ERR_LEN];
    CHECK(hive_plan_make(&p, nodes, 3, NULL, &plan, err) == HIVE_OK);
    /* Equal nodes, each able to hold everything: extra hops only cost. */
    CHECK(plan.n_stages == 1);
    check_plan(&plan, &p, nodes, 3);
    int left = 0;
    for (int i = 0; i < 3; i++) left += plan.stage_of[i] < 0;
    CHECK(left == 2);
}

static void test_memory_caps(void) {
    struct hive_model_profile p = make_profile(8);
    /* The whole model needs ~930 MB; 350 MB holds 3 middle layers, but only 2
     * with the embedding or the output head: 2 + 3 + 2 < 8, so all four. */
    struct hive_plan_node nodes[4] = {node("a", 350, 10, 0.2), node("b", 350, 10, 0.2), node("c", 350, 10, 0.2),
                                      node("d", 350, 10, 0.2)};
    struct hive_plan plan;
    char err[HIVE_ERR_LEN];
    CHECK(hive_plan_make(&p, nodes, 4, NULL, &plan, err) == HIVE_OK);
    CHECK(plan.n_stages == 4);
    check_plan(&plan, &p, nodes, 4);
    /* Ties on total go to the most even split: no stage above 3 layers, and the
     * slowest stage as small as the budgets allow. */
    for (int s = 0; s < plan.n_stages; s++) CHECK(plan.stage[s].last - plan.stage[s].first <= 3);
}

static void test_slow_node_left_out(void) {
    struct hive_model_profile p = make_profile(8);
    struct hive_plan_node nodes[2] = {node("fast", 4096, 20, 0.1), node("slow", 4096, 1, 0.1)};
    struct hive_plan plan;
    char err[HIVE_ERR_LEN];
    CHECK(hive_plan_make(&p, nodes, 2, NULL, &plan, err) == HIVE_OK);
    CHECK(plan.n_stages == 1 && plan.stage[0].node == 0);
    CHECK(plan.stage_of[1] == -1);
    CHECKF(strstr(plan.why[1], "faster without") != NULL, "why: %s", plan.why[1]);
    check_plan(&plan, &p, nodes, 2);

    /* Same slow node, but the fast one cannot hold it all: slow must help. */
    nodes[0].mem_budget = (uint64_t)(500 * MB);
    CHECK(hive_plan_make(&p, nodes, 2, NULL, &plan, err) == HIVE_OK);
    CHECK(plan.n_stages == 2);
    double total = check_plan(&plan, &p, nodes, 2);
    /* The fast node takes as much as fits. */
    CHECK(plan.stage[0].node == 0 && ref_mem(&p, 0, plan.stage[0].last + 1) > nodes[0].mem_budget);
    CHECK(fabs(total - brute(&p, nodes, 2, 0, 0, 0)) < 1e-9 * (1 + total));

    /* A node too small for any layer gets that reason. */
    struct hive_plan_node three[3] = {node("a", 4096, 10, 0.1), node("tiny", 20, 50, 0.1), node("b", 4096, 10, 0.1)};
    CHECK(hive_plan_make(&p, three, 3, NULL, &plan, err) == HIVE_OK);
    CHECK(plan.stage_of[1] == -1);
    CHECKF(strstr(plan.why[1], "memory") != NULL, "why: %s", plan.why[1]);
}

static void test_refusal(void) {
    struct hive_model_profile p = make_profile(8);
    struct hive_plan_node nodes[2] = {node("a", 300, 10, 0.1), node("b", 300, 10, 0.1)};
    struct hive_plan plan;
    char err[HIVE_ERR_LEN] = "";
    CHECK(hive_plan_make(&p, nodes, 2, NULL, &plan, err) == HIVE_ERR_INVAL);
    CHECKF(strstr(err, "does not fit") != NULL, "err: %s", err);
    /* A layer bigger than every node. */
    g_mem[3] = (uint64_t)(10000 * MB);
    struct hive_plan_node big[2] = {node("a", 8000, 10, 0.1), node("b", 8000, 10, 0.1)};
    CHECK(hive_plan_make(&p, big, 2, NULL, &plan, err) == HIVE_ERR_INVAL);
    g_mem[3] = (uint64_t)(100 * MB);
    CHECK(hive_plan_make(&p, big, 0, NULL, &plan, err) == HIVE_ERR_INVAL);
}

static void test_use_all(void) {
    struct hive_model_profile p = make_profile(5);
    struct hive_plan_node nodes[3] = {node("a", 4096, 10, 0.1), node("b", 4096, 10, 0.1), node("c", 4096, 10, 0.1)};
    struct hive_plan_opts o = {.use_all = 1};
    struct hive_plan plan;
    char err[HIVE_ERR_LEN];
    CHECK(hive_plan_make(&p, nodes, 3, &o, &plan, err) == HIVE_OK);
    CHECK(plan.n_stages == 3);
    double total = check_plan(&plan, &p, nodes, 3);
    CHECK(fabs(total - brute(&p, nodes, 3, 0, 0, 1)) < 1e-9 * (1 + total));
    /* More nodes than layers cannot all be used. */
    struct hive_model_profile p2 = make_profile(2);
    CHECK(hive_plan_make(&p2, nodes, 3, &o, &plan, err) == HIVE_ERR_INVAL);
}

static uint32_t rng_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* A random small case from seed s: 1..6 layers, 1..max_n nodes (mem of
 * 50..950 MB: some hold the whole model, some a few layers). */
static int random_case(uint32_t *s, struct hive_model_profile *p, uint64_t *mem, uint64_t *rd,
                       struct hive_plan_node *nodes, int max_n) {
    memset(p, 0, sizeof *p);
    p->n_layer = 1 + (int)(rng_next(s) % 6);
    for (int l = 0; l < p->n_layer; l++) {
        mem[l] = (uint64_t)(10 + rng_next(s) % 200) * 1000000u;
        rd[l] = mem[l] - (uint64_t)(rng_next(s) % 5) * 1000000u;
    }
    p->layer_mem = mem;
    p->layer_read = rd;
    p->first_mem = (uint64_t)(rng_next(s) % 100) * 1000000u;
    p->first_read = (uint64_t)(rng_next(s) % 3) * 1000000u;
    p->last_mem = p->last_read = (uint64_t)(rng_next(s) % 100) * 1000000u;
    p->kv_per_layer = (uint64_t)(rng_next(s) % 10) * 1000000u;
    p->scratch_bytes = (uint64_t)(rng_next(s) % 10) * 1000000u;
    int n = 1 + (int)(rng_next(s) % (uint32_t)max_n);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        nodes[i] = node(name, (double)(50 + rng_next(s) % 900) * 1e6 / MB, 0.5 + (rng_next(s) % 200) / 10.0,
                        (rng_next(s) % 50) / 10.0);
    }
    return n;
}

static void test_brute_force(void) {
    int n_cases = getenv("HIVE_TEST_SCALE") && !strcmp(getenv("HIVE_TEST_SCALE"), "small") ? 100 : 400;
    uint64_t mem[8], rd[8];
    int agree = 0, both_fail = 0;
    for (int c = 0; c < n_cases; c++) {
        uint32_t s = 0x9e3779b9u ^ (uint32_t)c * 2654435761u; /* seed per case, printed on failure */
        struct hive_model_profile p;
        struct hive_plan_node nodes[4];
        int n = random_case(&s, &p, mem, rd, nodes, 4);
        struct hive_plan_opts o = {.use_all = (int)(rng_next(&s) % 4 == 0)};
        struct hive_plan plan;
        char err[HIVE_ERR_LEN];
        double best = brute(&p, nodes, n, 0, 0, o.use_all);
        int rc = hive_plan_make(&p, nodes, n, &o, &plan, err);
        if (isinf(best)) {
            CHECKF(rc != HIVE_OK, "case %d: planner found a plan where brute force found none", c);
            both_fail += rc != HIVE_OK;
            continue;
        }
        CHECKF(rc == HIVE_OK, "case %d: planner failed (%s) but brute force found %.4f ms", c, err, best);
        if (rc) continue;
        double total = check_plan(&plan, &p, nodes, n);
        CHECKF(fabs(total - best) <= 1e-9 * (1 + best), "case %d: plan %.6f ms, brute force %.6f ms", c, total,
               best);
        if (o.use_all) CHECK(plan.n_stages == n);
        agree++;
    }
    printf("brute force: %d plans optimal, %d refused by both\n", agree, both_fail);
    CHECK(agree > n_cases / 4 && both_fail > 0); /* the generator covers both outcomes */
}

static void test_sizes(void) {
    uint64_t v;
    CHECK(hive_parse_size("512M", &v) == HIVE_OK && v == 512ull << 20);
    CHECK(hive_parse_size("2G", &v) == HIVE_OK && v == 2ull << 30);
    CHECK(hive_parse_size("1.5g", &v) == HIVE_OK && v == 3ull << 29);
    CHECK(hive_parse_size("800KiB", &v) == HIVE_OK && v == 800ull << 10);
    CHECK(hive_parse_size("12345", &v) == HIVE_OK && v == 12345);
    CHECK(hive_parse_size("", &v) != HIVE_OK);
    CHECK(hive_parse_size("12X", &v) != HIVE_OK);
    CHECK(hive_parse_size("-1G", &v) != HIVE_OK);
    CHECK(hive_parse_size("G", &v) != HIVE_OK);
    char buf[32];
    CHECK(!strcmp(hive_format_size(3ull << 29, buf, sizeof buf), "1.50 GiB"));
    CHECK(!strcmp(hive_format_size(100, buf, sizeof buf), "100 B"));
}

static void test_rounding(void) {
    CHECK(hive_plan_round_speed(0) == 0 && hive_plan_round_speed(-5) == 0);
    CHECK(hive_plan_round_latency(-1) == 0 && hive_plan_round_latency(0) == 0);
    CHECK(hive_plan_round_latency(0.02) == 0.25 && hive_plan_round_latency(0.25) == 0.25);
    CHECK(hive_plan_round_latency(0.26) == 0.5 && hive_plan_round_latency(1.9) == 2.0);
    double prev = 0;
    for (double v = 1e8; v < 1e11; v *= 1.013) {
        double r = hive_plan_round_speed(v);
        CHECKF(fabs(r / v - 1) <= 0.0443, "%.0f -> %.0f", v, r);
        CHECK(hive_plan_round_speed(r) == r); /* idempotent */
        CHECK(r >= prev);                     /* monotonic */
        prev = r;
    }
}

/* Layer ranges and node choice of a plan, for comparing plans made from
 * different measurements (whose costs differ in the last digits). */
static int same_split(const struct hive_plan *a, const struct hive_plan *b) {
    if (a->n_stages != b->n_stages) return 0;
    for (int s = 0; s < a->n_stages; s++)
        if (a->stage[s].node != b->stage[s].node || a->stage[s].first != b->stage[s].first ||
            a->stage[s].last != b->stage[s].last)
            return 0;
    return 1;
}

static void test_determinism(void) {
    struct hive_model_profile p = make_profile(8);
    char err[HIVE_ERR_LEN];
    /* Same inputs: the same plan, byte for byte, every time. */
    struct hive_plan_node nodes[4] = {node("a", 350, 10, 0.2), node("b", 500, 7, 0.4), node("c", 350, 12, 0.1),
                                      node("d", 900, 3, 0.3)};
    struct hive_plan first, again;
    CHECK(hive_plan_make(&p, nodes, 4, NULL, &first, err) == HIVE_OK);
    for (int i = 0; i < 20; i++) {
        CHECK(hive_plan_make(&p, nodes, 4, NULL, &again, err) == HIVE_OK);
        CHECK(memcmp(&first, &again, sizeof first) == 0);
    }

    /* Identical machines measured with noise: speeds within +-3% of a grid
     * point, loopback latencies 0.02..0.09 ms. Without snapping the
     * "fastest" would take every layer it can hold and the lowest latency
     * would pick the single node; with it, every draw plans alike. */
    double center = pow(2.0, 266.0 / 8.0) / 1e9; /* ~10 GB/s, a grid point */
    struct hive_plan_node ref[3] = {node("a", 500, center, 0.05), node("b", 500, center, 0.05),
                                    node("c", 500, center, 0.05)};
    struct hive_plan want;
    CHECK(hive_plan_make(&p, ref, 3, NULL, &want, err) == HIVE_OK);
    CHECK(want.n_stages == 2); /* two 500 MB nodes hold the 8 layers; the third is not needed */
    uint32_t s = 7;
    int same = 0, draws = 200;
    for (int d = 0; d < draws; d++) {
        struct hive_plan_node noisy[3];
        for (int i = 0; i < 3; i++) {
            noisy[i] = ref[i];
            noisy[i].speed_bps *= 0.97 + 0.06 * (double)rng_next(&s) / (double)(1u << 24);
            noisy[i].latency_ms = 0.02 + 0.07 * (double)rng_next(&s) / (double)(1u << 24);
        }
        struct hive_plan got;
        if (hive_plan_make(&p, noisy, 3, NULL, &got, err) != HIVE_OK) break;
        same += same_split(&got, &want) && fabs(got.total_ms - want.total_ms) < 1e-9;
        /* The estimate, though, is each draw's own: measured speeds and latencies, not the grid's. */
        double raw = 0;
        for (int st = 0; st < got.n_stages; st++) {
            const struct hive_plan_stage *g = &got.stage[st];
            const struct hive_plan_node *nd = &noisy[g->node];
            double bytes = 0;
            for (int l = g->first; l < g->last; l++) bytes += (double)p.layer_read[l];
            if (g->first == 0) bytes += (double)p.first_read;
            if (g->last == p.n_layer) bytes += (double)p.last_read;
            raw += 1000.0 * bytes / nd->speed_bps + 2.0 * nd->latency_ms;
        }
        double est = hive_plan_expected_ms(&p, &got, noisy);
        CHECKF(fabs(est - raw) <= 1e-9 * raw, "expected %.6f ms, from the measured values %.6f", est, raw);
    }
    CHECKF(same == draws, "%d of %d noisy measurements gave the reference plan", same, draws);

    /* The same with big nodes: one node suffices; always the same one. */
    for (int i = 0; i < 3; i++) ref[i].mem_budget = (uint64_t)(4096 * MB);
    CHECK(hive_plan_make(&p, ref, 3, NULL, &want, err) == HIVE_OK);
    CHECKF(want.n_stages == 1, "%d stages", want.n_stages);
    for (int d = 0; d < draws; d++) {
        struct hive_plan_node noisy[3];
        for (int i = 0; i < 3; i++) {
            noisy[i] = ref[i];
            noisy[i].speed_bps *= 0.97 + 0.06 * (double)rng_next(&s) / (double)(1u << 24);
            noisy[i].latency_ms = 0.02 + 0.07 * (double)rng_next(&s) / (double)(1u << 24);
        }
        struct hive_plan got;
        CHECK(hive_plan_make(&p, noisy, 3, NULL, &got, err) == HIVE_OK);
        if (!same_split(&got, &want)) {
            CHECKF(0, "draw %d picked node %d", d, got.stage[0].node);
            break;
        }
    }
}

/* ---- replicas ---- */

/* Brute force over every assignment of nodes to groups (canonical labels:
 * a node joins a group already opened, opens the next, or stays out); each
 * group's pipeline is the brute-force best with every member holding a
 * layer. Returns the best aggregate tok/s (0 when nothing fits). */
static double brute_replicas(const struct hive_model_profile *p, const struct hive_plan_node *nodes, int n, int i,
                             int *label, int n_groups) {
    if (i == n) {
        double agg = 0;
        for (int g = 0; g < n_groups; g++) {
            struct hive_plan_node sub[8];
            int k = 0;
            for (int j = 0; j < n; j++)
                if (label[j] == g) sub[k++] = nodes[j];
            double ms = brute(p, sub, k, 0, 0, 1);
            if (isinf(ms)) return 0; /* this assignment has a group that cannot form a ring */
            agg += 1000.0 / ms;
        }
        return agg;
    }
    double best = 0;
    for (int g = -1; g <= n_groups; g++) {
        label[i] = g;
        double v = brute_replicas(p, nodes, n, i + 1, label, g == n_groups ? n_groups + 1 : n_groups);
        if (v > best) best = v;
    }
    return best;
}

/* Structure of a replica plan; returns the aggregate recomputed independently. */
static double check_replicas(const struct hive_replica_plan *rp, const struct hive_model_profile *p,
                             const struct hive_plan_node *nodes, int n) {
    int seen[HIVE_PLAN_MAX_NODES] = {0};
    double agg = 0;
    for (int k = 0; k < rp->n_replicas; k++) {
        const struct hive_replica *r = &rp->replica[k];
        int expect_first = 0;
        double total = 0;
        struct hive_plan_node sub[HIVE_PLAN_MAX_NODES];
        for (int j = 0; j < r->n_stages; j++) {
            const struct hive_plan_stage *st = &r->stage[j];
            CHECK(st->node >= 0 && st->node < n && !seen[st->node]);
            if (st->node < 0 || st->node >= n) return -1;
            seen[st->node] = 1;
            sub[j] = nodes[st->node];
            CHECK(rp->replica_of[st->node] == k);
            CHECK(st->first == expect_first && st->last > st->first);
            CHECK(ref_mem(p, st->first, st->last) <= nodes[st->node].mem_budget);
            total += ref_cost(p, &nodes[st->node], st->first, st->last);
            expect_first = st->last;
        }
        CHECK(expect_first == p->n_layer);
        CHECKF(fabs(total - r->total_ms) <= 1e-9 * (1 + total), "replica %d: %.6f ms, recomputed %.6f", k,
               r->total_ms, total);
        CHECK(fabs(r->tok_s - 1000.0 / total) <= 1e-9 * r->tok_s);
        /* The pipeline choice: no split of the same nodes is faster (small cases only). */
        if (r->n_stages <= 5 && p->n_layer <= 8) {
            double best = brute(p, sub, r->n_stages, 0, 0, 1);
            CHECKF(fabs(best - total) <= 1e-9 * (1 + best), "replica %d: %.6f ms, its nodes can do %.6f", k, total,
                   best);
        }
        agg += 1000.0 / total;
    }
    for (int i = 0; i < n; i++)
        if (!seen[i]) CHECKF(rp->replica_of[i] == -1 && rp->why[i][0], "node %d left out without a reason", i);
    CHECKF(fabs(agg - rp->agg_tok_s) <= 1e-9 * (1 + agg), "aggregate %.6f, recomputed %.6f", rp->agg_tok_s, agg);
    return agg;
}

static void test_replicas_brute_force(void) {
    int n_cases = getenv("HIVE_TEST_SCALE") && !strcmp(getenv("HIVE_TEST_SCALE"), "small") ? 100 : 300;
    uint64_t mem[8], rd[8];
    int agree = 0, multi = 0, pipelined = 0, none = 0;
    struct hive_replica_plan *rp = malloc(sizeof *rp);
    if (!rp) return;
    for (int c = 0; c < n_cases; c++) {
        uint32_t s = 0x51ed270bu ^ (uint32_t)c * 2654435761u;
        struct hive_model_profile p;
        struct hive_plan_node nodes[5];
        int n = random_case(&s, &p, mem, rd, nodes, 5);
        int label[5];
        double best = brute_replicas(&p, nodes, n, 0, label, 0);
        char err[HIVE_ERR_LEN];
        int rc = hive_plan_replicas(&p, nodes, n, rp, err);
        if (best == 0) {
            CHECKF(rc == HIVE_ERR_INVAL, "case %d: replicas where brute force found none", c);
            none++;
            continue;
        }
        CHECKF(rc == HIVE_OK, "case %d: %s (brute force %.4f tok/s)", c, err, best);
        if (rc) continue;
        CHECK(rp->exact);
        double agg = check_replicas(rp, &p, nodes, n);
        CHECKF(fabs(agg - best) <= 1e-9 * (1 + best), "case %d: %.6f tok/s, brute force %.6f", c, agg, best);
        agree += fabs(agg - best) <= 1e-9 * (1 + best);
        multi += rp->n_replicas > 1;
        for (int k = 0; k < rp->n_replicas; k++) pipelined += rp->replica[k].n_stages > 1;
    }
    free(rp);
    printf("replicas: %d optimal (%d with several replicas, %d multi-stage replicas), %d refused by both\n", agree,
           multi, pipelined, none);
    CHECK(multi > 0 && pipelined > 0 && none > 0); /* the generator covers every outcome */
}

static void test_replicas_shapes(void) {
    struct hive_model_profile p = make_profile(8); /* ~0.9 GiB in all */
    struct hive_replica_plan *rp = malloc(sizeof *rp), *again = malloc(sizeof *again);
    if (!rp || !again) {
        free(rp), free(again);
        return;
    }
    char err[HIVE_ERR_LEN];
    /* The model fits on each: one replica per node. */
    struct hive_plan_node four[4] = {node("a", 2048, 10, 0.2), node("b", 2048, 10, 0.2), node("c", 2048, 10, 0.2),
                                     node("d", 2048, 10, 0.2)};
    CHECK(hive_plan_replicas(&p, four, 4, rp, err) == 0);
    CHECK(rp->n_replicas == 4 && rp->replica[0].n_stages == 1 && rp->replica[3].stage[0].node == 3);
    CHECK(fabs(rp->agg_tok_s - 4 * rp->replica[0].tok_s) < 1e-9 * rp->agg_tok_s);
    CHECK(rp->agg_tok_s > 3.9 * rp->single_tok_s);
    check_replicas(rp, &p, four, 4);
    /* Half the model each: two replicas of two. */
    for (int i = 0; i < 4; i++) four[i].mem_budget = (uint64_t)(600 * MB);
    CHECK(hive_plan_replicas(&p, four, 4, rp, err) == 0);
    CHECK(rp->n_replicas == 2 && rp->replica[0].n_stages == 2 && rp->replica[1].n_stages == 2);
    check_replicas(rp, &p, four, 4);
    /* Too small together: refused with the planner's message. */
    for (int i = 0; i < 4; i++) four[i].mem_budget = (uint64_t)(200 * MB);
    CHECK(hive_plan_replicas(&p, four, 4, rp, err) == HIVE_ERR_INVAL && strstr(err, "does not fit"));
    /* 64 nodes of 400 MB (greedy): rings of three (3 + 3 + 2 layers), one node left over. */
    struct hive_plan_node many[64];
    for (int i = 0; i < 64; i++) {
        char name[16];
        snprintf(name, sizeof name, "desk%02d", i);
        many[i] = node(name, 400, 5, 0.3);
    }
    CHECK(hive_plan_replicas(&p, many, 64, rp, err) == 0 && !rp->exact);
    CHECKF(rp->n_replicas == 21, "%d replicas", rp->n_replicas);
    check_replicas(rp, &p, many, 64);
    int out = -1, n_out = 0;
    for (int i = 0; i < 64; i++)
        if (rp->replica_of[i] < 0) out = i, n_out++;
    CHECKF(n_out == 1 && strstr(rp->why[out], "left over"), "%d left out, %s", n_out, out >= 0 ? rp->why[out] : "");
    /* Deterministic, byte for byte. */
    CHECK(hive_plan_replicas(&p, many, 64, again, err) == 0 && !memcmp(rp, again, sizeof *rp));
    free(rp);
    free(again);
}

/* A shape on paper: the tensors hive mkmodel would write. */
static void test_profile_from_shape(void) {
    struct hive_model_profile p;
    char err[HIVE_ERR_LEN];
    CHECKF(hive_model_profile_from_shape(&p, "tinyllama-1.1b", "q4_0", 2048, err) == 0, "%s", err);
    /* One layer in q4_0 (18 bytes per 32 weights): q, o 2048x2048; k, v 2048x256; gate, up, down 2048x5632;
     * two f32 norms of 2048. */
    uint64_t row = 2048 / 32 * 18, layer = 2 * 2048 * row + 2 * 256 * row + 3 * 5632 * row + 2 * 2048 * 4;
    CHECK(p.n_layer == 22 && p.layer_mem[0] == layer && p.layer_mem[21] == layer && p.layer_read[5] == layer);
    CHECK(p.first_mem == 32000 * row && p.first_read == 0);
    CHECK(p.last_mem == 32000 * row + 2048 * 4 && p.last_read == p.last_mem);
    CHECK(p.kv_per_layer == 2048ull * 2 * 4 * 64 * 4 && p.hidden_bytes == 2048 * 4);
    hive_model_profile_free(&p);
    /* Llama 3 70B at Q4_K_M: the published GGUF is 42.5 GB. */
    CHECKF(hive_model_profile_from_shape(&p, "llama-70b", "q4_k_m", 2048, err) == 0, "%s", err);
    uint64_t total = p.first_mem + p.last_mem;
    for (int l = 0; l < p.n_layer; l++) total += p.layer_mem[l];
    CHECKF(p.n_layer == 80 && fabs((double)total / 42.5e9 - 1) < 0.03, "llama-70b q4_k_m: %.2f GB", total / 1e9);
    hive_model_profile_free(&p);
    CHECK(hive_model_profile_from_shape(&p, "gpt-5", "q4_0", 0, err) == HIVE_ERR_INVAL);
    CHECK(hive_model_profile_from_shape(&p, "llama-8b", "q9_z", 0, err) == HIVE_ERR_INVAL);
}

/* Machines on paper: the node file and `hive plan --nodes`. */
static void test_nodes_file(void) {
    struct hive_plan_node nd[4];
    int n = -1;
    char err[HIVE_ERR_LEN];
    const char *ok = "{\"nodes\": [{\"name\": \"pc\", \"memory\": \"22G\", \"speed_gbs\": 54.5, \"latency_ms\": 0.25,"
                     " \"bandwidth_mbps\": 1000}, {\"memory\": 1048576, \"speed_gbs\": 1}]}";
    CHECKF(hive_plan_nodes_parse(ok, strlen(ok), nd, 4, &n, err) == 0, "%s", err);
    CHECK(n == 2 && !strcmp(nd[0].name, "pc") && nd[0].mem_budget == 22ull << 30 && nd[0].speed_bps == 54.5e9);
    CHECK(nd[0].latency_ms == 0.25 && nd[0].bandwidth_bps == 125e6);
    CHECK(!strcmp(nd[1].name, "node1") && nd[1].mem_budget == 1048576 && nd[1].latency_ms == 0 &&
          nd[1].bandwidth_bps == 0);
    const char *bad[] = {"", "[", "{}", "[]", "[{\"memory\": \"1G\"}]", "[{\"speed_gbs\": 1}]",
                         "[{\"memory\": \"1Q\", \"speed_gbs\": 1}]", "[{\"memory\": -5, \"speed_gbs\": 1}]",
                         "[{\"memory\": \"1G\", \"speed_gbs\": 1, \"latency_ms\": -1}]", "[1]",
                         "[{\"memory\": \"1G\", \"speed_gbs\": \"fast\"}]",
                         "[{\"memory\":1,\"speed_gbs\":1},{\"memory\":1,\"speed_gbs\":1},{\"memory\":1,\"speed_gbs\":1},"
                         "{\"memory\":1,\"speed_gbs\":1},{\"memory\":1,\"speed_gbs\":1}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECKF(hive_plan_nodes_parse(bad[i], strlen(bad[i]), nd, 4, &n, err) != 0 && err[0], "accepted <%s>", bad[i]);
    }
    /* The CLI on the example files. */
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd,
             "%s/hive plan --nodes %s/examples/plans/home-4.json --shape llama-70b --type q4_k_m 2>&1",
             HIVE_BIN_DIR, HIVE_SOURCE_DIR);
    FILE *f = popen(cmd, "r");
    size_t len = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[len] = '\0';
    CHECK(f && pclose(f) == 0);
    CHECKF(strstr(out, "replicas: 1,") && strstr(out, "left out raspberry-pi-5") && strstr(out, "tok/s single-stream"),
           "%s", out);
    snprintf(cmd, sizeof cmd,
             "%s/hive plan --nodes %s/examples/plans/office-64.json --shape llama-8b --type q4_k_m"
             " | grep '^replicas:'",
             HIVE_BIN_DIR, HIVE_SOURCE_DIR);
    f = popen(cmd, "r");
    len = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[len] = '\0';
    CHECK(f && pclose(f) == 0);
    CHECKF(strstr(out, "replicas: 64,"), "%.2000s", out);
}

int main(void) {
    test_sizes();
    test_rounding();
    test_single_big_node();
    test_memory_caps();
    test_slow_node_left_out();
    test_refusal();
    test_use_all();
    test_brute_force();
    test_determinism();
    test_replicas_brute_force();
    test_replicas_shapes();
    test_profile_from_shape();
    test_nodes_file();
    return check_result("test_planner");
}
