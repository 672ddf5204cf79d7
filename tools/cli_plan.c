/* cli_plan.c - `hive plan -m MODEL --peers A,B,...`: asks every peer for its
 * capabilities, prints them and the plan with its reasons (layers, bytes and
 * expected ms per node, nodes left out and why), and sends nothing else: a
 * scheduler opened with plan_only, exactly as `hive run --peers` would plan.
 * `hive plan --nodes FILE.json [-m MODEL.gguf | --shape NAME --type QUANT]`
 * plans on paper: machines described in a file, no node running; it prints
 * the single pipeline and the replicas, with expected tokens/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/mkmodel.h"
#include "hive/net.h"
#include "hive/sched.h"

#pragma weak cli_default_model
#pragma weak cli_resolve_model

static void usage(void) {
    fprintf(stderr,
            "usage: hive plan [-m MODEL.gguf] --peers HOST:PORT,... [--key FILE] [--ctx N] [--spread]\n"
            "  Prints the plan a `hive run --peers` would use, with its reasons.\n"
            "usage: hive plan --nodes FILE.json (-m MODEL.gguf | --shape NAME --type QUANT) [--ctx N]\n"
            "  Plans on paper for machines described in FILE.json (no node running):\n"
            "    [{\"name\": \"pc\", \"memory\": \"22G\", \"speed_gbs\": 40, \"latency_ms\": 0.3,\n"
            "      \"bandwidth_mbps\": 1000}, ...]\n"
            "  and prints the single pipeline and the replicas with expected tokens/s.\n"
            "  Shapes: %s; types: q4_0 q4_k_m q8_0 f16 ...\n",
            hive_mkmodel_preset_names());
}

/* The replicas these measured nodes could form (the scheduler runs one
 * pipeline today; jobs will use the replicas). */
static void print_replicas(const char *model, int n_ctx, const struct hive_plan_node *nodes, int n) {
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    struct hive_model_profile prof;
    struct hive_replica_plan *rp = malloc(sizeof *rp);
    int rc = rp ? hive_gguf_open(&g, model, err) : HIVE_ERR_NOMEM;
    if (!rc) rc = hive_model_profile_from_gguf(&prof, g, n_ctx, err);
    if (!rc) {
        rc = hive_plan_replicas(&prof, nodes, n, rp, err);
        hive_model_profile_free(&prof);
    }
    if (!rc) hive_replica_plan_print(stdout, rp, nodes);
    else fprintf(stderr, "hive plan: replicas: %s\n", rc == HIVE_ERR_NOMEM ? "out of memory" : err);
    hive_gguf_close(g);
    free(rp);
}

/* The plan on paper: nodes from a file, the model from a GGUF or a shape. */
static int plan_on_paper(const char *nodes_path, const char *model, const char *shape, const char *type, int n_ctx) {
    char err[HIVE_ERR_LEN];
    FILE *f = fopen(nodes_path, "rb");
    if (!f) {
        perror(nodes_path);
        return 1;
    }
    char *text = malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) return 1;
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    int n = 0;
    int rc = hive_plan_nodes_parse(text, len, nodes, HIVE_PLAN_MAX_NODES, &n, err);
    free(text);
    if (rc) {
        fprintf(stderr, "hive plan: %s: %s\n", nodes_path, err);
        return 1;
    }
    struct hive_model_profile prof;
    if (model) {
        hive_gguf *g = NULL;
        rc = hive_gguf_open(&g, model, err);
        if (!rc) rc = hive_model_profile_from_gguf(&prof, g, n_ctx, err);
        hive_gguf_close(g);
    } else {
        rc = hive_model_profile_from_shape(&prof, shape, type, n_ctx, err);
    }
    if (rc) {
        fprintf(stderr, "hive plan: %s\n", err);
        return 1;
    }
    uint64_t weights = prof.first_mem + prof.last_mem;
    for (int l = 0; l < prof.n_layer; l++) weights += prof.layer_mem[l];
    char w[32], kv[32];
    if (model) printf("model: %s\n", model);
    else printf("model: %s at %s (shape on paper)\n", shape, type);
    printf("  %d layers, weights %s, KV cache %s per layer at %d positions\n", prof.n_layer,
           hive_format_size(weights, w, sizeof w), hive_format_size(prof.kv_per_layer, kv, sizeof kv),
           n_ctx > 0 ? n_ctx : 2048);
    printf("nodes (%s):\n", nodes_path);
    for (int i = 0; i < n; i++) {
        char mem[32];
        printf("  %-24s memory %-10s speed %6.1f GB/s  latency %.2f ms  link %.0f Mbit/s\n", nodes[i].name,
               hive_format_size(nodes[i].mem_budget, mem, sizeof mem), nodes[i].speed_bps / 1e9, nodes[i].latency_ms,
               nodes[i].bandwidth_bps * 8 / 1e6);
    }
    struct hive_plan *plan = malloc(sizeof *plan);
    struct hive_replica_plan *rp = malloc(sizeof *rp);
    rc = plan && rp ? hive_plan_make(&prof, nodes, n, NULL, plan, err) : HIVE_ERR_NOMEM;
    if (!rc) {
        printf("single pipeline:\n");
        hive_plan_print(stdout, plan, nodes);
        printf("  expected %.2f tok/s single-stream\n", 1000.0 / plan->total_ms);
        rc = hive_plan_replicas(&prof, nodes, n, rp, err);
    }
    if (!rc) hive_replica_plan_print(stdout, rp, nodes);
    else fprintf(stderr, "hive plan: %s\n", rc == HIVE_ERR_NOMEM ? "out of memory" : err);
    free(plan);
    free(rp);
    hive_model_profile_free(&prof);
    return rc ? 1 : 0;
}

int cli_plan(int argc, char **argv) {
    const char *model = NULL, *peers = NULL, *key_path = NULL, *nodes_path = NULL, *shape = NULL, *type = NULL;
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
        else if (!strcmp(a, "--nodes")) nodes_path = v;
        else if (!strcmp(a, "--shape")) shape = v;
        else if (!strcmp(a, "--type")) type = v;
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
    if (nodes_path) {
        if (peers || (!model && !shape) || (model && shape) || (shape && !type)) {
            fprintf(stderr, "hive plan: --nodes takes either -m MODEL.gguf or --shape NAME --type QUANT (and no --peers)\n");
            return 1;
        }
        char path[4096];
        if (model && cli_resolve_model) {
            if (cli_resolve_model(model, path, sizeof path)) return 1;
            model = path;
        }
        return plan_on_paper(nodes_path, model, shape, type, n_ctx);
    }
    if (shape || type) {
        fprintf(stderr, "hive plan: --shape and --type plan on paper: add --nodes FILE.json\n");
        return 1;
    }
    if (!peers || !peers[0]) {
        fprintf(stderr,
                "hive plan: --peers is missing: a plan splits the model over nodes, so name them,\n"
                "  e.g. --peers 192.168.1.10:7070,192.168.1.11:7070 (each running `hive node`).\n"
                "  On this machine alone no plan is needed: `hive run` uses all its layers.\n"
                "  To plan on paper for machines you describe: --nodes FILE.json (see --help).\n");
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
    } else if (cli_resolve_model) { /* a path, or a name: hive's store, Ollama, LM Studio */
        if (cli_resolve_model(model, default_path, sizeof default_path)) return 1;
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
    print_replicas(model, hive_sched_n_ctx(s), nodes, plan->n_nodes);
    hive_sched_close(s);
    if (devnull) fclose(devnull);
    free(list);
    return 0;
}
