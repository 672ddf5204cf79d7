/* cli_plan.c - `hive plan -m MODEL --peers A,B,...`: asks every peer for its
 * capabilities, prints them and the plan with its reasons (layers, bytes and
 * expected ms per node, nodes left out and why), and sends nothing else: a
 * scheduler opened with plan_only, exactly as `hive run --peers` would plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/net.h"
#include "hive/sched.h"

#pragma weak cli_default_model

static void usage(void) {
    fprintf(stderr,
            "usage: hive plan [-m MODEL.gguf] --peers HOST:PORT,... [--key FILE] [--ctx N] [--spread]\n"
            "  Prints the plan a `hive run --peers` would use, with its reasons.\n");
}

int cli_plan(int argc, char **argv) {
    const char *model = NULL, *peers = NULL, *key_path = NULL;
    int n_ctx = 0, spread = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--spread")) {
            spread = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hive plan: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--peers")) peers = v;
        else if (!strcmp(a, "--key")) key_path = v;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (cli_int_option("plan", a, v, 1, 1 << 24, &n_ctx)) return 1;
        }
        else {
            fprintf(stderr, "hive plan: unknown option %s (try --help)\n", a);
            return 1;
        }
        i++;
    }
    if (!peers || !peers[0]) {
        fprintf(stderr,
                "hive plan: --peers is missing: a plan splits the model over nodes, so name them,\n"
                "  e.g. --peers 192.168.1.10:7070,192.168.1.11:7070 (each running `hive node`).\n"
                "  On this machine alone no plan is needed: `hive run` uses all its layers.\n");
        usage();
        return 1;
    }
    char default_path[4096];
    if (!model) {
        if (!cli_default_model || cli_default_model(default_path, sizeof default_path)) {
            fprintf(stderr, "hive plan: pass -m MODEL.gguf\n");
            return 1;
        }
        model = default_path;
    }
    char err[HIVE_ERR_LEN];
    struct hive_sched_opts o;
    memset(&o, 0, sizeof o);
    if (key_path ? hive_key_load(key_path, o.key, err) : hive_key_load_default(o.key, err)) {
        fprintf(stderr, "hive plan: %s\n", err);
        return 1;
    }
    /* Split the list on a copy. */
    char *list = strdup(peers);
    const char *addrs[HIVE_PLAN_MAX_NODES];
    int n = 0;
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (n == HIVE_PLAN_MAX_NODES) {
            fprintf(stderr, "hive plan: more than %d peers\n", HIVE_PLAN_MAX_NODES);
            free(list);
            return 1;
        }
        addrs[n++] = t;
    }
    if (!n) {
        fprintf(stderr, "hive plan: bad --peers list '%s' (host:port,host:port,...)\n", peers);
        free(list);
        return 1;
    }
    o.model_path = model;
    o.peers = addrs;
    o.n_peers = n;
    o.n_ctx = n_ctx;
    o.use_all = spread;
    o.max_seqs = 1;
    o.plan_only = 1;
    FILE *devnull = fopen("/dev/null", "w"); /* the plan is printed below, on stdout */
    o.log = devnull ? devnull : stderr;
    hive_sched *s = NULL;
    if (hive_sched_open(&s, &o, err)) {
        fprintf(stderr, "hive plan: %s\n", err);
        if (devnull) fclose(devnull);
        free(list);
        return 1;
    }
    const struct hive_plan *plan = hive_sched_plan(s);
    const struct hive_plan_node *nodes = hive_sched_nodes(s);
    printf("model: %s\n", model);
    printf("nodes:\n");
    for (int i = 0; i < plan->n_nodes; i++) {
        char mem[32];
        printf("  %-32s budget %-10s speed %6.0f MB/s  latency %.3f ms\n", nodes[i].name,
               hive_format_size(nodes[i].mem_budget, mem, sizeof mem), nodes[i].speed_bps / 1e6,
               nodes[i].latency_ms);
    }
    hive_plan_print(stdout, plan, nodes);
    hive_sched_close(s);
    if (devnull) fclose(devnull);
    free(list);
    return 0;
}
