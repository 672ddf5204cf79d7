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
#include "hive/sched.h"
#include "hive/tokenizer.h"

#pragma weak cli_default_model

struct peers_opts {
    const char *model, *prompt, *peers, *key_path, *trace, *stats_json, *cache_dir;
    int n_predict, n_threads, n_ctx, wire_f16, spread, timeout_ms, quiet, head_layers;
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

static int parse_num(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi)) return 1;
    *out = d;
    return 0;
}

static int parse_args(int argc, char **argv, struct peers_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->sp = hive_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d = 0;
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
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) bad = parse_num(v, 0, 1 << 24, &d), o->n_predict = (int)d;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = parse_num(v, 1, 1024, &d), o->n_threads = (int)d;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) bad = parse_num(v, 1, 1 << 24, &d), o->n_ctx = (int)d;
        else if (!strcmp(a, "--timeout")) bad = parse_num(v, 1, 1e9, &d), o->timeout_ms = (int)d;
        else if ((bad = cli_sampler_option(a, v, &o->sp)) == 1) {
            fprintf(stderr, "hive run: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (bad) {
            fprintf(stderr, "hive run: bad value '%s' for %s\n", v, a);
            return 1;
        }
        i++;
    }
    if (!o->peers || !o->peers[0]) {
        fprintf(stderr, "hive run: --peers needs a list of host:port\n");
        return 1;
    }
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

struct stream {
    const hive_tokenizer *tok;
};

static int on_token(void *arg, int32_t id) {
    struct stream *st = arg;
    if (hive_tokenizer_is_eog(st->tok, id)) return 1;
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
    char err[HIVE_ERR_LEN];
    struct hive_sched_opts so = {0};
    rc = o.key_path ? hive_key_load(o.key_path, so.key, err) : hive_key_load_default(so.key, err);
    if (rc) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    char **peers = NULL;
    int n_peers = split_peers(o.peers, &peers);
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    hive_sched *h = NULL;
    hive_seq *seq = NULL;
    int32_t *ids = NULL;
    FILE *devnull = NULL;
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
    so.model_path = o.model;
    so.peers = (const char *const *)peers;
    so.n_peers = n_peers;
    so.local_layers = o.head_layers;
    so.n_ctx = o.n_ctx;
    so.max_seqs = 1;
    so.n_threads = o.n_threads;
    so.wire_f16 = o.wire_f16;
    so.use_all = o.spread;
    so.cache_dir = o.cache_dir;
    so.timeout_ms = o.timeout_ms;
    so.progress = !o.quiet;
    so.trace = o.trace != NULL;
    devnull = o.quiet ? fopen("/dev/null", "w") : NULL;
    so.log = devnull ? devnull : stderr;
    if (hive_sched_open(&h, &so, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        goto out;
    }
    if (!o.quiet) hive_plan_print(stderr, hive_sched_plan(h), hive_sched_nodes(h));
    struct hive_seq_params sp = {.prompt = ids, .n_prompt = n_ids, .max_tokens = o.n_predict, .sampling = o.sp,
                                 .penalize_prompt = 1};
    struct stream st = {tok};
    fputs(prompt, stdout); /* like single-node `hive run`: the story starts with its prompt */
    fflush(stdout);
    int grc = o.n_predict > 0 ? hive_sched_submit(h, &sp, &seq, err) : 0;
    int32_t id;
    while (!grc && seq && hive_seq_next(seq, &id, -1) == 1)
        if (on_token(&st, id)) break;
    if (!grc && seq && hive_seq_finish(seq) == HIVE_FINISH_ERROR) {
        snprintf(err, sizeof err, "%s", hive_seq_error(seq));
        grc = 1;
    }
    hive_seq_release(seq);
    seq = NULL;
    fputc('\n', stdout);
    fflush(stdout);
    if (grc) fprintf(stderr, "hive run: %s\n", err);
    if (!o.quiet) hive_sched_print_summary(h, stderr);
    if (o.trace && hive_sched_write_trace(h, o.trace, err)) fprintf(stderr, "hive run: %s\n", err);
    else if (o.trace && !o.quiet) fprintf(stderr, "trace written to %s (open in ui.perfetto.dev)\n", o.trace);
    if (o.stats_json && hive_sched_write_stats_json(h, o.stats_json, err)) fprintf(stderr, "hive run: %s\n", err);
    rc = grc ? 1 : 0;
out:
    hive_seq_release(seq);
    hive_sched_close(h);
    if (devnull) fclose(devnull);
    free(ids);
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    for (int i = 0; peers && i < n_peers; i++) free(peers[i]);
    free(peers);
    return rc;
}
