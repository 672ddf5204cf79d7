/* cli_run.c - `hive run`: text generation and an interactive --chat loop,
 * on this machine alone or across --peers. One option parser, one help text
 * and one generation path for both: this process is a client of the
 * scheduler (hive/sched.h). It opens a scheduler (no peers: an in-process
 * node holds every layer, with a random in-process key; with --peers: the
 * nodes hold the layers, --head-layers puts an in-process node first),
 * tokenizes, submits a sequence, streams its tokens to stdout as they
 * arrive, and prints a summary on stderr.
 *
 *   hive run [-m MODEL.gguf] -p PROMPT [-n N] [--chat] [--peers A,B,...] ...
 *
 * --chat: each turn submits the whole conversation, rendered through the
 * model's chat template, as a new sequence. Reusing the KV cache of the
 * previous turn is left out: the scheduler frees a sequence's KV when it
 * ends, so every turn prefills the conversation again (fast for the short
 * conversations of a terminal; a prefix cache in the scheduler would bring
 * it back for every client at once). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/os.h"
#include "hive/cluster.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/net.h"
#include "hive/sample.h"
#include "hive/sched.h"
#include "hive/tokenizer.h"

#pragma weak cli_default_model
#pragma weak cli_resolve_model

struct run_opts {
    const char *model, *prompt;
    const char *peers, *key_path, *trace, *stats_json, *cache_dir;
    int n_predict, n_threads, n_ctx, chat, quiet;
    int wire_f16, spread, timeout_ms, head_layers, dead_after_ms;
    int seed_random; /* no --seed: a random one, printed once the model is up */
    struct cli_draft draft;
    char draft_path[4096];
    struct hive_sampler_params sp;
};

static void usage(void) {
    fprintf(stderr,
            "usage: hive run [-m MODEL.gguf] -p PROMPT [options]\n"
            "       hive run [-m MODEL.gguf] --chat [-p SYSTEM] [options]\n"
            "Generates text on this machine, or across hive nodes with --peers. Text streams to\n"
            "stdout; the seed, the plan and a summary go to stderr.\n"
            "  -m, --model NAME       GGUF path, hive/Ollama/LM Studio model name (default: stories260K)\n"
            "  -p, --prompt TEXT      prompt text (with --chat: the system message)\n"
            "  -n, --n-predict N      tokens to generate (default 128, at most 16777216)\n"
            "  --chat                 interactive chat on stdin (the model's chat template)\n"
            "  -t, --threads N        threads per stage (default: all cores of each node)\n"
            "  --ctx N                context per sequence (default: min(training context, 2048))\n"
            "sampling:\n"
            "  --temp T               temperature (default 0 = greedy)\n"
            "  --top-k K --top-p P --min-p M --repeat-penalty R --repeat-last-n N\n"
            "  --presence-penalty P --frequency-penalty F   (each in [-2, 2])\n"
            "  --seed S               sampling seed (default: random, printed as 'seed: N')\n"
            CLI_DRAFT_HELP
            "cluster (see hive node, hive keygen):\n"
            "  --peers HOST:PORT,...  run across these nodes, in ring order; \"auto\": the nodes found on the LAN\n"
            "  --key FILE             cluster key (default: $HIVE_KEY_FILE or ~/.config/hive/cluster.key;\n"
            "                         not needed without --peers)\n"
            "  --head-layers          with --peers: this machine holds layers too (first in the ring)\n"
            "  --spread               give every node layers even when fewer would be faster\n"
            "  --wire-f16             hidden states travel as f16 (half the bytes; output may differ)\n"
            "  --timeout MS           a step with no answer for this long fails (default 60000)\n"
            "  --dead-after MS        a node silent this long is dead and its layers move (default 1500)\n"
            "  --cache-dir DIR        hash cache of the head (and of the in-process node)\n"
            "output:\n"
            "  --trace FILE           Chrome/Perfetto trace of every step (open in ui.perfetto.dev)\n"
            "  --stats-json FILE      machine-readable summary (tokens, bytes sent, plan, timings)\n"
            "  --quiet                no seed, plan or summary on stderr\n"
            "  --no-mmap-copy         accepted for old scripts; the node decides how it holds weights\n");
}

static int parse_args(int argc, char **argv, struct run_opts *o) {
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
        int took = 0, dr = cli_draft_option("run", a, v, &o->draft, &took);
        if (dr < 0) return 1;
        if (dr == 0) {
            i += took;
            continue;
        }
        /* flags */
        if (!strcmp(a, "--chat")) o->chat = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--wire-f16")) o->wire_f16 = 1;
        else if (!strcmp(a, "--spread")) o->spread = 1;
        else if (!strcmp(a, "--head-layers")) o->head_layers = 1;
        else if (!strcmp(a, "--no-mmap-copy")) {
        } else if (!v) {
            fprintf(stderr, "hive run: %s needs a value (or is unknown; try --help)\n", a);
            return 1;
        } else {
            /* options with a value */
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
            else if (!strcmp(a, "--dead-after")) bad = cli_int_option("run", a, v, 50, 600000, &o->dead_after_ms);
            else if ((bad = cli_sampler_option("run", a, v, &o->sp, &seed_set)) == 1) {
                fprintf(stderr, "hive run: unknown option %s (try --help)\n", a);
                return 1;
            }
            if (bad) return 1;
            i++;
        }
    }
    if (o->peers && !o->peers[0]) {
        fprintf(stderr, "hive run: --peers needs a list of host:port (e.g. --peers 10.0.0.2:7070,10.0.0.3:7070)\n");
        return 1;
    }
    if (o->head_layers && !o->peers) {
        fprintf(stderr, "hive run: --head-layers only means something with --peers (alone, this machine holds every layer)\n");
        return 1;
    }
    if (!seed_set) o->sp.seed = cli_random_seed(), o->seed_random = 1;
    return 0;
}

/* Splits "a,b,c" into up to cap entries of a strdup'd copy (*buf, to free). */
/* ---- streaming text: hold back an incomplete UTF-8 sequence ---- */

struct utf8_out {
    char pending[8];
    int n_pending;
};

/* Length a UTF-8 sequence starting with byte b announces (1 for invalid). */
static int utf8_seq_len(unsigned char b) {
    if (b < 0x80) return 1;
    if ((b & 0xe0) == 0xc0) return 2;
    if ((b & 0xf0) == 0xe0) return 3;
    if ((b & 0xf8) == 0xf0) return 4;
    return 1;
}

/* Writes bytes to stdout, except a trailing incomplete sequence, which is
 * kept for the next call. */
static void utf8_write(struct utf8_out *u, const char *s, int n, FILE *f) {
    char buf[512 + 8];
    int len = 0;
    memcpy(buf, u->pending, (size_t)u->n_pending);
    len = u->n_pending;
    u->n_pending = 0;
    while (n > 0) {
        int chunk = n > 512 ? 512 : n;
        memcpy(buf + len, s, (size_t)chunk);
        len += chunk;
        s += chunk;
        n -= chunk;
        if (n > 0) { /* flush all but a possible incomplete tail later */
            fwrite(buf, 1, (size_t)len, f);
            len = 0;
        }
    }
    /* Find the start of the last sequence; keep it if incomplete. */
    int start = len;
    for (int back = 1; back <= 3 && len - back >= 0; back++) {
        unsigned char b = (unsigned char)buf[len - back];
        if ((b & 0xc0) != 0x80) {
            start = len - back;
            break;
        }
    }
    if (start < len && utf8_seq_len((unsigned char)buf[start]) > len - start) {
        u->n_pending = len - start;
        memcpy(u->pending, buf + start, (size_t)u->n_pending);
        len = start;
    }
    fwrite(buf, 1, (size_t)len, f);
    fflush(f);
}

static void utf8_flush(struct utf8_out *u, FILE *f) {
    fwrite(u->pending, 1, (size_t)u->n_pending, f);
    u->n_pending = 0;
    fflush(f);
}

/* Tokenizes text into a malloc'd array; returns the count or -1. */
static int tokenize_alloc(const hive_tokenizer *t, const char *text, int add_special, int parse_special,
                          int32_t **out) {
    size_t len = strlen(text);
    int cap = (int)(len < (1u << 28) ? len : (1u << 28)) + 8;
    int32_t *ids = hive_malloc_array((size_t)cap, sizeof *ids);
    if (!ids) return -1;
    int n = hive_tokenize(t, text, len, add_special, parse_special, ids, cap);
    if (n > cap) {
        free(ids);
        cap = n;
        ids = hive_malloc_array((size_t)cap, sizeof *ids);
        if (!ids) return -1;
        n = hive_tokenize(t, text, len, add_special, parse_special, ids, cap);
    }
    if (n < 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

static long rss_kib(void) {
    uint64_t b = hive_rss_bytes();
    return b ? (long)(b / 1024) : -1;
}

/* ---- the client: one scheduler, sequences through it ---- */

struct client {
    hive_sched *sched;
    hive_gguf *gguf;      /* the model's metadata: tokenizer, chat template */
    hive_tokenizer *tok;
    const struct run_opts *o;
    double open_ms;       /* connect + plan + deploy (or load, alone) */
    double ttft_ms;       /* of the last sequence */
    char *text;           /* text of the current answer (chat history) */
    size_t text_len, text_cap;
};

static void append_text(struct client *c, const char *piece, int n) {
    if (c->text_len + (size_t)n + 1 > c->text_cap) {
        size_t cap = (c->text_cap ? c->text_cap * 2 : 256) + (size_t)n;
        char *p = realloc(c->text, cap);
        if (!p) return;
        c->text = p;
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, piece, (size_t)n);
    c->text_len += (size_t)n;
    c->text[c->text_len] = 0;
}

/* Submits ids as one sequence and streams its tokens to stdout, stopping
 * at an end-of-generation token. echo (the prompt) is printed once the
 * sequence produced its first result, as a single-node run always did.
 * Returns 0, 1 after printing an error, or 130 when interrupted. */
static int generate(struct client *c, const int32_t *ids, int n, const char *echo) {
    char err[HIVE_ERR_LEN];
    int n_ctx = hive_sched_n_ctx(c->sched);
    if (n <= 0) {
        fprintf(stderr, "hive run: the prompt is empty\n");
        return 1;
    }
    if (n > n_ctx) {
        fprintf(stderr, "hive run: prompt is %d tokens but the context holds %d (use --ctx)\n", n, n_ctx);
        return 1;
    }
    c->text_len = 0;
    if (c->text) c->text[0] = 0;
    if (c->o->n_predict == 0) { /* nothing to generate: the prompt is the whole answer */
        if (echo) fputs(echo, stdout);
        return 0;
    }
    struct hive_seq_params sp = {.prompt = ids, .n_prompt = n, .max_tokens = c->o->n_predict,
                                 .sampling = c->o->sp, .penalize_prompt = 1};
    hive_seq *q = NULL;
    if (hive_sched_submit(c->sched, &sp, &q, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    struct utf8_out u = {{0}, 0};
    int rc = 0;
    for (;;) {
        int32_t id;
        int r = hive_seq_next(q, &id, 100);
        if (r == -HIVE_ERR_TIMEOUT) {
            if (cli_interrupted) break;
            continue;
        }
        if (echo && (r == 1 || hive_seq_finish(q) != HIVE_FINISH_ERROR)) {
            fputs(echo, stdout);
            fflush(stdout);
            echo = NULL;
        }
        if (r != 1) break; /* finished: hive_seq_finish says why */
        if (hive_tokenizer_is_eog(c->tok, id)) break; /* release cancels the rest */
        char piece[256];
        int len = hive_token_to_piece(c->tok, id, 0, piece, sizeof piece);
        if (len > (int)sizeof piece) len = (int)sizeof piece;
        if (len > 0) {
            utf8_write(&u, piece, len, stdout);
            append_text(c, piece, len);
        }
        if (cli_interrupted) break;
    }
    utf8_flush(&u, stdout);
    switch (hive_seq_finish(q)) {
    case HIVE_FINISH_CONTEXT:
        fprintf(stderr, "\nhive run: context full at %d tokens; generation stopped (use --ctx)\n", n_ctx);
        break;
    case HIVE_FINISH_ERROR:
        fprintf(stderr, "\nhive run: %s\n", hive_seq_error(q));
        rc = 1;
        break;
    default: /* still running (stopped by us), length, cancelled */
        break;
    }
    c->ttft_ms = hive_seq_ttft_ms(q);
    hive_seq_release(q);
    return cli_interrupted ? 130 : rc;
}

/* What the scheduler's summary does not say: load time, time to the first
 * token, and this process's memory (alone, that is the whole model's). */
static void print_client_line(const struct client *c) {
    long kib = rss_kib();
    fprintf(stderr, "load: %.0f ms | first token: %.1f ms | memory: %.0f MiB\n", c->open_ms, c->ttft_ms,
            kib > 0 ? kib / 1024.0 : 0.0);
}

/* ---- chat ---- */

struct chat_history {
    struct hive_chat_msg *msgs;
    char **owned; /* content copies */
    int n, cap;
};

static int history_add(struct chat_history *h, const char *role, const char *content) {
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 8;
        struct hive_chat_msg *m = realloc(h->msgs, (size_t)cap * sizeof *m);
        if (!m) return -1;
        h->msgs = m;
        char **o = realloc(h->owned, (size_t)cap * sizeof *o);
        if (!o) return -1;
        h->owned = o;
        h->cap = cap;
    }
    char *copy = strdup(content);
    if (!copy) return -1;
    h->owned[h->n] = copy;
    h->msgs[h->n] = (struct hive_chat_msg){role, copy};
    h->n++;
    return 0;
}

static void history_free(struct chat_history *h) {
    for (int i = 0; i < h->n; i++) free(h->owned[i]);
    free(h->owned);
    free(h->msgs);
}

/* Renders the whole conversation (template, or plain concatenation). */
static char *render(int tmpl, const struct chat_history *h) {
    if (tmpl == HIVE_CHAT_NONE) {
        size_t len = 1;
        for (int i = 0; i < h->n; i++) len += strlen(h->msgs[i].content) + 1;
        char *buf = malloc(len);
        if (!buf) return NULL;
        buf[0] = 0;
        for (int i = 0; i < h->n; i++) {
            strcat(buf, h->msgs[i].content);
            if (!strcmp(h->msgs[i].role, "user")) strcat(buf, "\n");
        }
        return buf;
    }
    int n = hive_chat_format(tmpl, h->msgs, h->n, 1, NULL, 0);
    if (n < 0) return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return NULL;
    hive_chat_format(tmpl, h->msgs, h->n, 1, buf, (size_t)n + 1);
    return buf;
}

static int chat_loop(struct client *c) {
    int tmpl = hive_chat_template_detect(c->gguf);
    struct chat_history h = {0};
    int rc = 0;
    if (c->o->prompt && history_add(&h, "system", c->o->prompt)) rc = 1;
    fprintf(stderr, "hive chat (%s template): type a message, Ctrl-D to quit\n",
            tmpl == HIVE_CHAT_NONE ? "no" : "detected");
    char line[8192];
    while (!rc) {
        fprintf(stderr, "> ");
        fflush(stderr);
        if (cli_interrupted || !fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) continue;
        if (history_add(&h, "user", line)) {
            rc = 1;
            break;
        }
        /* The whole conversation, as a new sequence (no KV reuse across turns: see the top). */
        char *text = render(tmpl, &h);
        int32_t *ids = NULL;
        int n = text ? tokenize_alloc(c->tok, text, 1, tmpl != HIVE_CHAT_NONE, &ids) : -1;
        free(text);
        if (n < 0) {
            fprintf(stderr, "hive run: cannot tokenize the conversation\n");
            rc = 1;
            break;
        }
        rc = generate(c, ids, n, NULL);
        free(ids);
        fputc('\n', stdout);
        if (!rc && history_add(&h, "assistant", c->text ? c->text : "")) rc = 1;
    }
    history_free(&h);
    return rc;
}

int cli_run(int argc, char **argv) {
    struct run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 2 ? 0 : 1;
    char default_path[4096];
    if (!o.model) {
        if (!cli_default_model) {
            fprintf(stderr, "hive run: no default model in this binary; pass -m MODEL.gguf\n");
            return 1;
        }
        if (cli_default_model(default_path, sizeof default_path)) return 1;
        o.model = default_path;
    } else if (cli_resolve_model) { /* a path, or a name: hive's store, Ollama, LM Studio */
        if (cli_resolve_model(o.model, default_path, sizeof default_path)) return 1;
        o.model = default_path;
    }
    char err[HIVE_ERR_LEN];
    struct client c;
    memset(&c, 0, sizeof c);
    c.o = &o;
    if (hive_gguf_open(&c.gguf, o.model, err) || hive_tokenizer_load(&c.tok, c.gguf, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        hive_gguf_close(c.gguf);
        return 1;
    }

    struct hive_sched_opts so;
    memset(&so, 0, sizeof so);
    const char *addrs[HIVE_PLAN_MAX_NODES];
    char *peer_buf = NULL;
    FILE *devnull = NULL;
    rc = 1;
    if (cli_cluster_opts("run", o.peers, o.key_path, o.head_layers, &so, addrs, HIVE_PLAN_MAX_NODES, &peer_buf))
        goto out;
    so.model_path = o.model;
    so.n_ctx = o.n_ctx;
    so.max_seqs = 1; /* one sequence at a time: KV for one on every stage */
    so.n_threads = o.n_threads;
    so.wire_f16 = o.wire_f16;
    so.use_all = o.spread;
    so.cache_dir = o.cache_dir;
    so.timeout_ms = o.timeout_ms;
    so.dead_after_ms = o.dead_after_ms;
    if (cli_draft_apply("run", &o.draft, &so, o.draft_path, sizeof o.draft_path)) goto out;
    so.progress = !o.quiet; /* weights travelling, and a big model loading */
    so.trace = o.trace != NULL;
    if (o.quiet) devnull = fopen("/dev/null", "w");
    so.log = devnull ? devnull : stderr;

    cli_catch_interrupt();
    double t0 = hive_now_ms();
    if (hive_sched_open(&c.sched, &so, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        goto out;
    }
    c.open_ms = hive_now_ms() - t0;
    /* The plan and its reasons (alone there is nothing to explain: one stage holds every layer). */
    if (o.peers && !o.quiet) hive_plan_print(stderr, hive_sched_plan(c.sched), hive_sched_nodes(c.sched));
    if (o.seed_random && o.sp.temperature > 0 && !o.quiet) /* greedy needs no seed */
        fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);

    if (cli_interrupted) {
        rc = 130;
    } else if (o.chat) {
        rc = chat_loop(&c);
    } else {
        int32_t *ids = NULL;
        int n = tokenize_alloc(c.tok, o.prompt ? o.prompt : "", 1, 0, &ids);
        if (n < 0) {
            fprintf(stderr, "hive run: cannot tokenize the prompt\n");
            rc = 1;
        } else {
            rc = generate(&c, ids, n, o.prompt ? o.prompt : "");
            if (rc != 1) fputc('\n', stdout);
        }
        free(ids);
    }
    fflush(stdout);
    if (rc != 1 && !o.quiet) {
        fputc('\n', stderr);
        hive_sched_print_summary(c.sched, stderr);
        print_client_line(&c);
    }
    if (o.trace) {
        if (hive_sched_write_trace(c.sched, o.trace, err)) {
            fprintf(stderr, "hive run: %s\n", err);
            if (!rc) rc = 1;
        } else if (!o.quiet) {
            fprintf(stderr, "trace written to %s (open in ui.perfetto.dev)\n", o.trace);
        }
    }
    if (o.stats_json && hive_sched_write_stats_json(c.sched, o.stats_json, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        if (!rc) rc = 1;
    }
    if (rc == 130) fprintf(stderr, "hive run: interrupted\n");
out:
    hive_sched_close(c.sched);
    if (devnull) fclose(devnull);
    free(peer_buf);
    free(c.text);
    hive_tokenizer_free(c.tok);
    hive_gguf_close(c.gguf);
    return rc;
}
