/* cli_plan.c - `hive plan -m MODEL --peers A,B,...`: asks every peer for its
 * capabilities, prints them and the plan with its reasons (layers, bytes and
 * expected ms per node, nodes left out and why), and sends nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/sched.h"
#include "hive/net.h"

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
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) n_ctx = atoi(v);
        else {
            fprintf(stderr, "hive plan: unknown option %s (try --help)\n", a);
            return 1;
        }
        i++;
    }
    if (!peers) {
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
    struct hive_sched_opts o = {0};
    if (key_path ? hive_key_load(key_path, o.key, err) : hive_key_load_default(o.key, err)) {
        fprintf(stderr, "hive plan: %s\n", err);
        return 1;
    }
    /* Split the list in place on a copy. */
    char *list = strdup(peers);
    const char *addrs[HIVE_PLAN_MAX_NODES];
    int n = 0;
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t && n < HIVE_PLAN_MAX_NODES;
         t = strtok_r(NULL, ",", &save))
        addrs[n++] = t;
    o.model_path = model;
    o.peers = addrs;
    o.n_peers = n;
    o.n_ctx = n_ctx;
    o.use_all = spread;
    o.max_seqs = 1;
    o.plan_only = 1;
    hive_sched *h = NULL;
    int rc = hive_sched_open(&h, &o, err);
    if (rc) {
        fprintf(stderr, "hive plan: %s\n", err);
        free(list);
        return 1;
    }
    const struct hive_plan_node *nodes = hive_sched_nodes(h);
    printf("model: %s\n", model);
    printf("nodes:\n");
    for (int i = 0; i < n; i++) {
        char mem[32];
        printf("  %-32s budget %-10s speed %6.0f MB/s  latency %.3f ms\n", nodes[i].name,
               hive_format_size(nodes[i].mem_budget, mem, sizeof mem), nodes[i].speed_bps / 1e6,
               nodes[i].latency_ms);
    }
    hive_plan_print(stdout, hive_sched_plan(h), nodes);
    hive_sched_close(h);
    free(list);
    return 0;
}
