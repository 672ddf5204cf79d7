/* cli_peers.c - `hive run --peers A,B,...`: the distributed run. This
 * process is the head: it tokenizes, plans, sends each stage its weights,
 * links the ring and streams the answer; the peers (`hive node`) hold the
 * layers. Options match single-node `hive run`, plus:
 *   --peers LIST       host:port,host:port,... in ring order
 *   --key FILE         cluster key (default: $HIVE_KEY_FILE or ~/.config/hive/cluster.key)
 *   --wire-f16         hidden states travel as f16 (half the bytes; output may differ)
 *   --spread           give every peer layers even when fewer would be faster
 *   --trace FILE       Chrome trace JSON of every step (open in ui.perfetto.dev)
 *   --stats-json FILE  machine-readable summary (tokens, weight bytes sent, timings)
 *   --timeout MS       per-token deadline (default 60000)
 *   --cache-dir DIR    where the head remembers model hashes (and, with
 *                      --head-layers, caches its own stage)
 *   --head-layers      this process also holds layers: it serves a node
 *                      in-process and puts it first in the ring */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/gguf.h"
#include "hive/net.h"
#include "hive/sample.h"
#include "hive/tokenizer.h"

#pragma weak cli_default_model

struct peers_opts {
    const char *model, *prompt, *peers, *key_path, *trace, *stats_json, *cache_dir;
    int n_predict, n_threads, n_ctx, wire_f16, spread, timeout_ms, quiet, head_layers, seed_random;
    struct hive_sampler_params sp;
};

static void usage(void) {
    fprintf(stderr,
            "usage: hive run -m MODEL.gguf --peers HOST:PORT,... -p PROMPT [options]\n"
            "  -n N, -t N, --ctx N, --temp T, --top-k K, --top-p P, --min-p M, --repeat-penalty R,\n"
            "  --repeat-last-n N, --seed S      as for a single-node run\n"
            "  --peers LIST       nodes in ring order\n"
            "  --key FILE         cluster key\n"
            "  --wire-f16         send hidden states as f16\n"
            "  --spread           give every peer layers\n"
            "  --trace FILE       write a Chrome/Perfetto trace\n"
            "  --stats-json FILE  write a machine-readable summary\n"
            "  --timeout MS       per-token deadline (default 60000)\n"
            "  --cache-dir DIR    head cache (model hashes)\n"
            "  --quiet            no plan or summary on stderr\n"
            "  --head-layers      this process holds layers too (first in the ring)\n");
}

static int parse_args(int argc, char **argv, struct peers_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->sp = hive_sampler_default_params();
    int seed_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--wire-f16")) { o->wire_f16 = 1; continue; }
        if (!strcmp(a, "--spread")) { o->spread = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--head-layers")) { o->head_layers = 1; continue; }
        if (!v) {
            fprintf(stderr, "hive run: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--peers")) o->peers = v;
        else if (!strcmp(a, "--key")) o->key_path = v;
        else if (!strcmp(a, "--trace")) o->trace = v;
        else if (!strcmp(a, "--stats-json")) o->stats_json = v;
        else if (!strcmp(a, "--cache-dir")) o->cache_dir = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) bad = cli_int_option("run", a, v, 0, 1 << 24, &o->n_predict);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = cli_int_option("run", a, v, 1, 1024, &o->n_threads);
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) bad = cli_int_option("run", a, v, 1, 1 << 24, &o->n_ctx);
        else if (!strcmp(a, "--timeout")) bad = cli_int_option("run", a, v, 1, 1000000000, &o->timeout_ms);
        else if ((bad = cli_sampler_option("run", a, v, &o->sp, &seed_set)) == 1) {
            fprintf(stderr, "hive run: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (bad) return 1;
        i++;
    }
    if (!o->peers || !o->peers[0]) {
        fprintf(stderr, "hive run: --peers needs a list of host:port\n");
        return 1;
    }
    if (!seed_set) o->sp.seed = cli_random_seed(), o->seed_random = 1;
    return 0;
}

/* Splits "a,b,c" into a malloc'd array of malloc'd strings. */
static int split_peers(const char *list, char ***out) {
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    char **v = calloc((size_t)n, sizeof *v);
    if (!v) return -1;
    int k = 0;
    const char *s = list;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len) {
            v[k] = strndup(s, len);
            if (!v[k]) break;
            k++;
        }
        if (!e) break;
        s = e + 1;
    }
    *out = v;
    return k;
}

/* --head-layers: serves a node inside this process on a loopback port and
 * puts it first in the ring, so the head holds layers like any peer (the
 * planner sizes its share like the others'). */
static int start_local_node(const struct peers_opts *o, const uint8_t key[HIVE_KEY_BYTES], hive_node **out,
                            char ***peers, int *n_peers, char *err) {
    struct hive_node_opts no = hive_node_default_opts();
    no.listen = "127.0.0.1:0";
    memcpy(no.key, key, HIVE_KEY_BYTES);
    no.n_threads = o->n_threads;
    no.cache_dir = o->cache_dir;
    no.name = "head";
    char **v = realloc(*peers, (size_t)(*n_peers + 1) * sizeof *v);
    if (!v) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    *peers = v;
    int rc = hive_node_start(out, &no, err);
    if (rc) return rc;
    char *addr = strdup(hive_node_address(*out));
    if (!addr) {
        hive_node_stop(*out);
        *out = NULL;
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    memmove(v + 1, v, (size_t)*n_peers * sizeof *v);
    v[0] = addr;
    (*n_peers)++;
    return HIVE_OK;
}

struct stream {
    const hive_tokenizer *tok;
};

static int on_token(void *arg, int32_t id) {
    struct stream *st = arg;
    if (cli_interrupted || hive_tokenizer_is_eog(st->tok, id)) return 1;
    char piece[256];
    int len = hive_token_to_piece(st->tok, id, 0, piece, sizeof piece);
    if (len > (int)sizeof piece) len = (int)sizeof piece;
    if (len > 0) fwrite(piece, 1, (size_t)len, stdout);
    fflush(stdout);
    return 0;
}

int cli_run_peers(int argc, char **argv) {
    struct peers_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 2 ? 0 : 1;
    char default_path[4096];
    if (!o.model) {
        if (!cli_default_model || cli_default_model(default_path, sizeof default_path)) {
            fprintf(stderr, "hive run: pass -m MODEL.gguf\n");
            return 1;
        }
        o.model = default_path;
    }
    cli_catch_interrupt();
    char err[HIVE_ERR_LEN];
    struct hive_head_opts ho = {0};
    rc = o.key_path ? hive_key_load(o.key_path, ho.key, err) : hive_key_load_default(ho.key, err);
    if (rc) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    char **peers = NULL;
    int n_peers = split_peers(o.peers, &peers);
    hive_node *local = NULL;
    if (n_peers > 0 && o.head_layers && start_local_node(&o, ho.key, &local, &peers, &n_peers, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        for (int i = 0; i < n_peers; i++) free(peers[i]);
        free(peers);
        return 1;
    }
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    hive_head *h = NULL;
    int32_t *ids = NULL;
    rc = 1;
    if (n_peers <= 0) {
        fprintf(stderr, "hive run: bad --peers list\n");
        goto out;
    }
    if (hive_gguf_open(&g, o.model, err) || hive_tokenizer_load(&tok, g, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        goto out;
    }
    const char *prompt = o.prompt ? o.prompt : "";
    size_t plen = strlen(prompt);
    int cap = (int)(plen < (1u << 24) ? plen : (1u << 24)) + 8;
    ids = malloc((size_t)cap * sizeof *ids);
    int n_ids = ids ? hive_tokenize(tok, prompt, plen, 1, 0, ids, cap) : -1;
    if (n_ids < 1 || n_ids > cap) {
        fprintf(stderr, "hive run: cannot tokenize the prompt\n");
        goto out;
    }
    ho.model_path = o.model;
    ho.peers = (const char *const *)peers;
    ho.n_peers = n_peers;
    ho.n_ctx = o.n_ctx;
    ho.n_threads = o.n_threads;
    ho.wire_f16 = o.wire_f16;
    ho.use_all = o.spread;
    ho.cache_dir = o.cache_dir;
    ho.timeout_ms = o.timeout_ms;
    ho.progress = !o.quiet;
    ho.trace = o.trace != NULL;
    FILE *devnull = o.quiet ? fopen("/dev/null", "w") : NULL;
    ho.log = devnull ? devnull : stderr;
    if (hive_head_open(&h, &ho, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        if (devnull) fclose(devnull);
        goto out;
    }
    if (!o.quiet) hive_plan_print(stderr, hive_head_plan(h), hive_head_nodes(h));
    if (hive_head_deploy(h, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        if (devnull) fclose(devnull);
        goto out;
    }
    if (o.seed_random && !o.quiet) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);
    struct hive_sampler sampler;
    hive_sampler_init(&sampler, &o.sp);
    for (int i = 0; i < n_ids; i++) hive_sampler_accept(&sampler, ids[i]);
    struct stream st = {tok};
    fputs(prompt, stdout); /* like single-node `hive run`: the story starts with its prompt */
    fflush(stdout);
    int grc = hive_head_generate(h, ids, n_ids, o.n_predict, &sampler, on_token, &st, err);
    fputc('\n', stdout);
    fflush(stdout);
    if (grc) fprintf(stderr, "hive run: %s\n", err);
    if (!o.quiet) hive_head_print_summary(h, stderr);
    if (o.trace && hive_head_write_trace(h, o.trace, err)) fprintf(stderr, "hive run: %s\n", err);
    else if (o.trace && !o.quiet) fprintf(stderr, "trace written to %s (open in ui.perfetto.dev)\n", o.trace);
    if (o.stats_json && hive_head_write_stats_json(h, o.stats_json, err)) fprintf(stderr, "hive run: %s\n", err);
    if (devnull) fclose(devnull);
    rc = grc ? 1 : 0;
    if (cli_interrupted) {
        fprintf(stderr, "hive run: interrupted\n");
        rc = 130;
    }
out:
    hive_head_close(h);
    hive_node_stop(local);
    free(ids);
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    for (int i = 0; peers && i < n_peers; i++) free(peers[i]);
    free(peers);
    return rc;
}
