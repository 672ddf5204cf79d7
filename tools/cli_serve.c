/* cli_serve.c - `hive serve`: the long-lived head with an OpenAI-compatible
 * HTTP API (see include/hive/server.h).
 *
 *   hive serve [-m MODEL.gguf] [--peers HOST:PORT,...] [--key FILE]
 *              [--ctx N] [--slots N] [--queue N] [-t N]
 *              [--host ADDR] [--port N] [--api-key KEY] [--max-body BYTES]
 *
 * Without --peers it serves alone on an in-process node (with a random
 * cluster key made for the occasion: no key file needed). Prints
 * "listening on http://HOST:PORT" and "model: ID" on stdout, then serves
 * until SIGINT/SIGTERM, after which it stops cleanly and exits 0. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/fleet.h"
#include "hive/gguf.h"
#include "hive/job.h"
#include "hive/ledger.h"
#include "hive/net.h"
#include "hive/sched.h"
#include "hive/server.h"
#include "hive/tokenizer.h"

#pragma weak cli_default_model
#pragma weak cli_resolve_model

struct serve_opts {
    const char *model, *peers, *key_path, *host, *api_key, *cache_dir;
    int n_ctx, slots, queue, n_threads, port, timeout_ms, max_tokens, dead_after_ms;
    int spread, head_layers, wire_f16, replicas, no_ledger;
    const char *ledger;
    size_t max_body;
    struct cli_draft draft;
    char draft_path[4096];
};

static void usage(void) {
    fprintf(stderr,
            "usage: hive serve [-m MODEL.gguf] [options]\n"
            "  -m, --model NAME    GGUF path, hive/Ollama/LM Studio model name (default: stories260K)\n"
            "  --peers LIST        host:port,... nodes that hold the layers, or \"auto\": the nodes found on\n"
            "                      the LAN (mDNS) with this machine (default: serve alone)\n"
            "  --key FILE          cluster key for --peers (default: $HIVE_KEY_FILE or ~/.config/hive/cluster.key)\n"
            "  --ctx N             positions per sequence (default: min(training context, 2048))\n"
            "  --slots N           sequences decoding at once (default 8)\n"
            "  --queue N           requests waiting for a slot before 429 (default 64)\n"
            "  -t, --threads N     threads per stage\n"
            "  --host ADDR         listen address (default 127.0.0.1)\n"
            "  --port N            listen port (default 8080; 0 = any free port)\n"
            "  --api-key KEY       require Authorization: Bearer KEY (default: $HIVE_API_KEY, else none)\n"
            "  --max-body BYTES    request body limit (default 1 MiB)\n"
            "  --max-tokens N      tokens per answer when a request names none (default 512)\n"
            "  --cache-dir DIR     head cache (model hashes, the in-process node's stage)\n"
            "  --ledger FILE       contribution ledger, SQLite (default: $HIVE_LEDGER or\n"
            "                      ~/.local/share/hive/ledger.db; `hive ledger` prints it)\n"
            "  --no-ledger         keep no ledger\n"
            "  --timeout MS        a ring step with no answer for this long fails (default 60000)\n"
            "  --dead-after MS     a node silent this long is dead and its layers move (default 1500)\n"
            "  --replicas N        at most N pipelines (replicas) over the peers, each request to the least\n"
            "                      loaded (default 0: as many as the planner finds best; 1: one pipeline)\n"
            "  --spread            one pipeline in which every node holds layers\n"
            "  --head-layers       with --peers: this machine holds layers too\n"
            "  --wire-f16          hidden states travel as f16 (half the bytes; output may differ)\n"
            CLI_DRAFT_HELP);
}

static int parse_num(const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) return 1;
    *out = n;
    return 0;
}

static int parse_args(int argc, char **argv, struct serve_opts *o) {
    memset(o, 0, sizeof *o);
    o->port = HIVE_SERVER_DEFAULT_PORT;
    o->api_key = getenv("HIVE_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 2;
        }
        int took = 0, dr = cli_draft_option("serve", a, v, &o->draft, &took);
        if (dr < 0) return 1;
        if (dr == 0) {
            i += took;
            continue;
        }
        if (!strcmp(a, "--spread")) { o->spread = 1; continue; }
        if (!strcmp(a, "--no-ledger")) { o->no_ledger = 1; continue; }
        if (!strcmp(a, "--head-layers")) { o->head_layers = 1; continue; }
        if (!strcmp(a, "--wire-f16")) { o->wire_f16 = 1; continue; }
        if (!v) {
            fprintf(stderr, "hive serve: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--peers")) o->peers = v;
        else if (!strcmp(a, "--key")) o->key_path = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--api-key")) o->api_key = v;
        else if (!strcmp(a, "--cache-dir")) o->cache_dir = v;
        else if (!strcmp(a, "--ledger")) o->ledger = v;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) bad = parse_num(v, 1, 1 << 24, &n), o->n_ctx = (int)n;
        else if (!strcmp(a, "--slots")) bad = parse_num(v, 1, 4096, &n), o->slots = (int)n;
        else if (!strcmp(a, "--queue")) bad = parse_num(v, 1, 1 << 20, &n), o->queue = (int)n;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = parse_num(v, 1, 1024, &n), o->n_threads = (int)n;
        else if (!strcmp(a, "--port")) bad = parse_num(v, 0, 65535, &n), o->port = (int)n;
        else if (!strcmp(a, "--max-body")) bad = parse_num(v, 64, 1LL << 32, &n), o->max_body = (size_t)n;
        else if (!strcmp(a, "--max-tokens")) bad = parse_num(v, 1, 1 << 24, &n), o->max_tokens = (int)n;
        else if (!strcmp(a, "--timeout")) bad = parse_num(v, 1, 1000000000, &n), o->timeout_ms = (int)n;
        else if (!strcmp(a, "--dead-after")) bad = parse_num(v, 50, 600000, &n), o->dead_after_ms = (int)n;
        else if (!strcmp(a, "--replicas")) bad = parse_num(v, 0, HIVE_PLAN_MAX_NODES, &n), o->replicas = (int)n;
        else {
            fprintf(stderr, "hive serve: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "hive serve: bad value '%s' for %s\n", v, a);
            return 1;
        }
        i++;
    }
    return 0;
}

/* Splits "a,b,c" in place into up to cap pointers; returns the count. */
int cli_serve(int argc, char **argv) {
    struct serve_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 2 ? 0 : 1;
    char default_path[4096], err[HIVE_ERR_LEN];
    const char *path = o.model;
    if (!path) {
        if (!cli_default_model || cli_default_model(default_path, sizeof default_path)) {
            if (!cli_default_model) fprintf(stderr, "hive serve: pass -m MODEL.gguf\n");
            return 1;
        }
        path = default_path;
    } else if (cli_resolve_model) { /* a path, or a name: hive's store, Ollama, LM Studio */
        if (cli_resolve_model(path, default_path, sizeof default_path)) return 1;
        path = default_path;
    }
    /* Signals go to sigwait below, not to whichever thread is running. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    hive_fleet *fleet = NULL;
    hive_ledger *ledger = NULL;
    hive_server *srv = NULL;
    char *peer_list = NULL;
    const char *peers[HIVE_SCHED_MAX_STAGES];
    rc = 1;
    if (hive_gguf_open(&g, path, err) || hive_tokenizer_load(&tok, g, err)) {
        fprintf(stderr, "hive serve: %s\n", err);
        goto out;
    }
    int tmpl = hive_chat_template_detect(g);
    struct hive_sched_opts so = {0};
    so.model_path = path;
    so.n_ctx = o.n_ctx;
    so.max_seqs = o.slots;
    so.max_queue = o.queue;
    so.n_threads = o.n_threads;
    so.cache_dir = o.cache_dir;
    so.timeout_ms = o.timeout_ms;
    so.dead_after_ms = o.dead_after_ms;
    so.use_all = o.spread;
    so.wire_f16 = o.wire_f16;
    if (cli_draft_apply("serve", &o.draft, &so, o.draft_path, sizeof o.draft_path)) goto out;
    so.log = stderr;
    so.progress = 1; /* bars only on a terminal */
    if (cli_cluster_opts("serve", o.peers && *o.peers ? o.peers : NULL, o.key_path, o.head_layers, &so, peers,
                         HIVE_SCHED_MAX_STAGES, &peer_list))
        goto out;
    struct hive_fleet_opts fo = {.sched = so, .max_replicas = o.spread ? 1 : o.replicas};
    if (hive_fleet_open(&fleet, &fo, err)) {
        fprintf(stderr, "hive serve: %s\n", err);
        goto out;
    }
    if (!o.no_ledger && hive_ledger_open(&ledger, o.ledger, err))
        fprintf(stderr, "hive serve: no contribution ledger (%s); serving without\n", err);
    char model_id[256];
    hive_server_model_id(path, model_id, sizeof model_id);
    struct hive_server_opts ho = {
        .host = o.host,
        .port = o.port,
        .api_key = o.api_key,
        .max_body = o.max_body,
        .model_id = model_id,
        .default_max_tokens = o.max_tokens,
        .log = getenv("HIVE_SERVE_LOG") ? stderr : NULL,
        .ledger = ledger,
    };
    /* POST /v1/hive/jobs: a job's subtasks run on the same replicas. */
    struct hive_job_opts jo = {.fleet = fleet, .tok = tok, .chat_template = tmpl, .ledger = ledger,
                               .max_tokens = o.max_tokens, .sampling = hive_sampler_default_params(),
                               .per_replica = o.slots < HIVE_JOB_PER_REPLICA ? o.slots : HIVE_JOB_PER_REPLICA,
                               .log = stderr};
    ho.jobs = &jo;
    if (hive_server_start_fleet(&srv, fleet, tok, tmpl, &ho, err)) {
        fprintf(stderr, "hive serve: %s\n", err);
        goto out;
    }
    const char *host = o.host && *o.host ? o.host : "127.0.0.1";
    int v6 = strchr(host, ':') != NULL;
    printf("listening on http://%s%s%s:%d\nmodel: %s (chat template: %s, context %d)\n", v6 ? "[" : "", host,
           v6 ? "]" : "", hive_server_port(srv), model_id, hive_chat_template_name(tmpl),
           hive_sched_n_ctx(hive_fleet_replica(fleet, 0)));
    fflush(stdout);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "hive serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    hive_server_stop(srv);
    hive_fleet_close(fleet);
    hive_ledger_close(ledger);
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    free(peer_list);
    return rc;
}
