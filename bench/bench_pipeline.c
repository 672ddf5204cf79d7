/* bench_pipeline.c - decode speed of a 2-stage pipeline vs a single node, on
 * loopback and through the LAN emulator.
 *
 * Model: TinyLlama-1.1B-shaped Q4_0 from `hive mkmodel` (random weights).
 * Setups (1 thread per node, like two single-core machines):
 *   single   - in-process decode with the model API, no network at all;
 *   loopback - head + node A on "machine 1", node B on "machine 2", all
 *              127.0.0.1 without delay;
 *   lan-1ms  - the A<->B and B->head links through hive's LAN emulator
 *              at 1 ms each way + 1 Gbit/s (a 2 ms round trip);
 *   lan-5ms  - 5 ms each way + 100 Mbit/s (10 ms round trip), f32 and f16 wire.
 * The head runs beside node A, so only the two hops that leave machine 1
 * (A -> B and B -> head) cross the emulated link, as on a real LAN.
 * Runs of all setups are interleaved, single node included.
 * Reports decode tok/s (median of N runs of 64 tokens) and ms per token split
 * into compute (sum of the stages' own timings) and network (ring round trip
 * minus compute). Prints a table and one JSON object last.
 *
 * usage: bench_pipeline [--quick] [--reps N] [--dir DIR] [-n TOKENS] */
#include "bench_common.h"
#include "hive/lanproxy.h"
#include "hive/model.h"
#include "test_cluster_util.h"

struct setup {
    const char *name;
    double delay_ms, rate_mbit;
    int wire_f16;
    int proxied;
};

struct measure {
    double tps, ms_per_tok, compute_ms, network_ms;
};

/* Decode speed and the compute/network split from --stats-json. */
static int read_timing(const char *path, struct measure *m) {
    static struct tc_stats st; /* large: keep it off the stack */
    if (tc_read_stats(path, &st) != 0 || !(st.tok_per_s > 0)) return -1;
    m->tps = st.tok_per_s;
    m->ms_per_tok = 1000.0 / st.tok_per_s;
    m->compute_ms = st.compute_ms;
    m->network_ms = st.ring_ms - st.compute_ms;
    return 0;
}

/* Single node, in-process: decode tok/s after a short prompt, like the head's runs. */
static double single_node_tps(const char *path, int n_gen) {
    struct hive_speed_opts o = {.n_threads = 1, .n_prompt = 5, .n_decode = n_gen, .reps = 1, .copy_weights = 1};
    struct hive_speed sp;
    char err[HIVE_ERR_LEN];
    if (hive_model_measure_speed(path, &o, &sp, err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 0;
    }
    return sp.decode_tps;
}

int main(int argc, char **argv) {
    const char *dir = "/tmp/hive-bench-models";
    int quick = 0, reps = 5, n_gen = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--reps N] [--dir DIR] [-n TOKENS]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1 || reps > 16) reps = 5;
    if (n_gen < 8 || n_gen > 1000) n_gen = 64;
    (void)check_failures, (void)check_count; /* test harness counters, unused here */

    char model[1024];
    const char *name = quick ? "tinyllama-quick-q4_0.gguf" : "tinyllama-q4_0.gguf";
    const char *args = quick ? "--preset tinyllama-1.1b --type q4_0 --seed 1 --layers 4"
                             : "--preset tinyllama-1.1b --type q4_0 --seed 1";
    if (bench_synth_model(dir, name, args, model, sizeof model)) return 1;

    struct tc_env env;
    tc_setup(&env);
    struct tc_node nodes[2];
    if (tc_node_start(&env, &nodes[0], "A", NULL, NULL) || tc_node_start(&env, &nodes[1], "B", NULL, NULL)) {
        tc_cleanup(&env);
        return 1;
    }

    const struct setup setups[] = {
        {"loopback", 0, 0, 0, 0},
        {"lan-1ms-1gbit", 1, 1000, 0, 1},
        {"lan-5ms-100mbit", 5, 100, 0, 1},
        {"lan-5ms-100mbit-f16", 5, 100, 1, 1},
    };
    const int n_setups = (int)(sizeof setups / sizeof setups[0]);
    struct measure res[8];
    char stats[300], n_str[16];
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    snprintf(n_str, sizeof n_str, "%d", n_gen);
    int failed = 0;

    /* Warm-up over loopback: the stages fetch and cache their weights once. */
    char peers[256];
    tc_peers(nodes, 2, peers, sizeof peers);
    fprintf(stderr, "bench: deploying weights to the stages\n");
    const char *spread[] = {"--spread", NULL};
    if (tc_head_run(&env, model, peers, "Once upon a time", 8, stats, spread)) {
        tc_head_log_print(&env);
        failed = 1;
    }

    /* One emulated link per proxied setup, started up front, so that the
     * runs below can interleave: the machine's memory bandwidth drifts over
     * minutes, and interleaving keeps that drift out of the ratios. */
    hive_lanproxy *px[8] = {0};
    char setup_peers[8][256];
    for (int s = 0; s < n_setups && !failed; s++) {
        const struct setup *su = &setups[s];
        if (!su->proxied) {
            tc_peers(nodes, 2, setup_peers[s], sizeof setup_peers[s]);
            continue;
        }
        char host[64], err[HIVE_ERR_LEN];
        int port = 0;
        struct hive_lanproxy_opts po = {.to_host = host, .delay_ms = su->delay_ms, .rate_mbit = su->rate_mbit};
        if (hive_net_parse_hostport(nodes[1].addr, host, sizeof host, &port, err) ||
            (po.to_port = port, hive_lanproxy_start(&px[s], &po, err))) {
            fprintf(stderr, "bench: %s\n", err);
            failed = 1;
            break;
        }
        snprintf(setup_peers[s], sizeof setup_peers[s], "%s,127.0.0.1:%d", nodes[0].addr, hive_lanproxy_port(px[s]));
    }

    double single[16], tps[8][16], ms[8][16], comp[8][16], net[8][16];
    for (int r = 0; r < reps && !failed; r++) {
        single[r] = single_node_tps(model, n_gen);
        for (int s = 0; s < n_setups && !failed; s++) {
            /* --spread: both nodes get layers even where the planner would
             * keep the whole (fitting) model on node A to avoid the slow link */
            const char *extra[] = {"--spread", setups[s].wire_f16 ? "--wire-f16" : NULL, NULL};
            struct measure m;
            if (tc_head_run(&env, model, setup_peers[s], "Once upon a time", n_gen, stats, extra) ||
                read_timing(stats, &m)) {
                tc_head_log_print(&env);
                failed = 1;
                break;
            }
            tps[s][r] = m.tps, ms[s][r] = m.ms_per_tok, comp[s][r] = m.compute_ms, net[s][r] = m.network_ms;
        }
    }
    for (int s = 0; s < n_setups; s++) {
        if (px[s]) hive_lanproxy_stop(px[s]);
        if (failed) continue;
        res[s].tps = hive_median(tps[s], reps);
        res[s].ms_per_tok = hive_median(ms[s], reps);
        res[s].compute_ms = hive_median(comp[s], reps);
        res[s].network_ms = hive_median(net[s], reps);
    }
    tc_node_stop(&nodes[0]);
    tc_node_stop(&nodes[1]);
    tc_cleanup(&env);
    if (failed) {
        fprintf(stderr, "bench: a pipeline run failed\n");
        return 1;
    }

    double single_tps = hive_median(single, reps);

    printf("model: %s, 1 thread per node, %d decode tokens, median of %d\n", name, n_gen, reps);
    printf("%-22s %9s %9s %12s %12s %9s\n", "setup", "tok/s", "ms/tok", "compute ms", "network ms", "vs single");
    printf("%-22s %9.1f %9.2f %12s %12s %9s\n", "single", single_tps, 1000.0 / single_tps, "-", "-", "1.00x");
    for (int s = 0; s < n_setups; s++)
        printf("%-22s %9.1f %9.2f %12.2f %12.2f %8.2fx\n", setups[s].name, res[s].tps, res[s].ms_per_tok,
               res[s].compute_ms, res[s].network_ms, res[s].tps / single_tps);
    printf("{\"bench\":\"pipeline\",\"model\":\"%s\",\"threads_per_node\":1,\"n_decode\":%d,\"reps\":%d,"
           "\"single_tps\":%.2f,\"setups\":[",
           name, n_gen, reps, single_tps);
    for (int s = 0; s < n_setups; s++)
        printf("%s{\"name\":\"%s\",\"delay_ms\":%.1f,\"rate_mbit\":%.0f,\"wire\":\"%s\",\"tps\":%.2f,"
               "\"ms_per_tok\":%.3f,\"compute_ms\":%.3f,\"network_ms\":%.3f,\"ratio_vs_single\":%.3f}",
               s ? "," : "", setups[s].name, setups[s].delay_ms, setups[s].rate_mbit,
               setups[s].wire_f16 ? "f16" : "f32", res[s].tps, res[s].ms_per_tok, res[s].compute_ms,
               res[s].network_ms, res[s].tps / single_tps);
    printf("]}\n");
    return 0;
}
