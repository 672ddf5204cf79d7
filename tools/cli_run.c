/* cli_run.c - `hive run`: single-node text generation and an interactive
 * --chat loop. `--peers` hands over to cli_run_peers (distributed run).
 *
 *   hive run [-m MODEL.gguf] -p "prompt" [-n N] [-t threads] [--temp T]
 *            [--top-k K] [--top-p P] [--min-p M] [--repeat-penalty R]
 *            [--seed S] [--ctx N] [--chat] [--no-mmap-copy]
 *
 * Text streams to stdout as tokens arrive; a summary line goes to stderr. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/model.h"
#include "hive/sample.h"
#include "hive/tokenizer.h"

#pragma weak cli_run_peers
#pragma weak cli_default_model

struct run_opts {
    const char *model;
    const char *prompt;
    int n_predict;
    int n_threads;
    int n_ctx;
    int chat;
    int copy_weights;
    int seed_random; /* no --seed: a random one, printed once the model loaded */
    struct hive_sampler_params sp;
};

static void usage(void) {
    fprintf(stderr,
            "usage: hive run [-m MODEL.gguf] -p PROMPT [options]\n"
            "  -m, --model PATH       GGUF model (default: stories260K)\n"
            "  -p, --prompt TEXT      prompt text\n"
            "  -n, --n-predict N      tokens to generate (default 128, at most 16777216)\n"
            "  -t, --threads N        threads (default: all cores, as bench and node)\n"
            "  --ctx N                context size (default: min(training context, 4096))\n"
            "  --temp T               temperature (default 0 = greedy)\n"
            "  --top-k K --top-p P --min-p M --repeat-penalty R --repeat-last-n N\n"
            "  --presence-penalty P --frequency-penalty F   (each in [-2, 2])\n"
            "  --seed S               sampling seed (default: random, printed as 'seed: N')\n"
            "  --chat                 interactive chat on stdin (keeps the KV cache across turns)\n"
            "  --no-mmap-copy         read weights through the file mapping instead of copying\n"
            "  --peers HOST:PORT,...  run across hive nodes (see hive node)\n");
}

static int parse_args(int argc, char **argv, struct run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->n_threads = cli_default_threads();
    o->copy_weights = 1;
    o->sp = hive_sampler_default_params();
    int seed_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1, bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 2;
        } else if (!strcmp(a, "--chat")) {
            o->chat = 1, takes_value = 0;
        } else if (!strcmp(a, "--no-mmap-copy")) {
            o->copy_weights = 0, takes_value = 0;
        } else if (!v) {
            fprintf(stderr, "hive run: %s needs a value (or is unknown)\n", a);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            o->prompt = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            bad = cli_int_option("run", a, v, 0, 1 << 24, &o->n_predict);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            bad = cli_int_option("run", a, v, 1, 1024, &o->n_threads);
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            bad = cli_int_option("run", a, v, 1, 1 << 24, &o->n_ctx);
        } else if ((bad = cli_sampler_option("run", a, v, &o->sp, &seed_set)) == 1) {
            fprintf(stderr, "hive run: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (bad) return 1;
        if (takes_value) i++;
    }
    if (!seed_set) o->sp.seed = cli_random_seed(), o->seed_random = 1;
    return 0;
}

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

/* ---- session: model + context + token log ---- */

struct session {
    hive_model *model;
    hive_tokenizer *tok;
    hive_ctx *ctx;
    hive_pool *pool;
    struct hive_sampler sampler;
    const struct hive_hparams *hp;
    int n_ctx;
    int32_t *log;   /* tokens whose K/V are cached, (n_ctx,) */
    int n_log;
    float *logits;  /* (n_vocab,) */
    /* statistics */
    int n_prompt, n_gen;
    double prompt_ms, gen_ms, load_ms;
    char *text;     /* generated text of the current turn (chat) */
    size_t text_len, text_cap;
};

static void session_free(struct session *s) {
    hive_ctx_free(s->ctx);
    hive_pool_free(s->pool);
    hive_tokenizer_free(s->tok);
    hive_model_free(s->model);
    free(s->log);
    free(s->logits);
    free(s->text);
}

static int session_open(struct session *s, const struct run_opts *o, const char *path) {
    char err[HIVE_ERR_LEN];
    memset(s, 0, sizeof *s);
    double t0 = hive_now_ms();
    struct hive_model_opts mo = hive_model_default_opts();
    mo.copy_weights = o->copy_weights;
    if (hive_model_load(&s->model, path, &mo, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    s->hp = hive_model_hparams(s->model);
    if (hive_tokenizer_load(&s->tok, hive_model_gguf(s->model), err)) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    s->n_ctx = o->n_ctx > 0 ? o->n_ctx : (s->hp->n_ctx_train < 4096 ? s->hp->n_ctx_train : 4096);
    if (s->n_ctx <= 0) s->n_ctx = 2048;
    s->pool = hive_pool_create(o->n_threads);
    if (!s->pool) {
        fprintf(stderr, "hive run: cannot start %d threads\n", o->n_threads);
        return 1;
    }
    if (hive_ctx_create(&s->ctx, s->model, 0, s->hp->n_layer, s->n_ctx, s->pool, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    s->log = hive_malloc_array((size_t)s->n_ctx, sizeof *s->log);
    s->logits = hive_malloc_array((size_t)s->hp->n_vocab, sizeof *s->logits);
    if (!s->log || !s->logits) {
        fprintf(stderr, "hive run: out of memory\n");
        return 1;
    }
    hive_sampler_init(&s->sampler, &o->sp);
    s->load_ms = hive_now_ms() - t0;
    return 0;
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

static void append_text(struct session *s, const char *piece, int n) {
    if (s->text_len + (size_t)n + 1 > s->text_cap) {
        size_t cap = (s->text_cap ? s->text_cap * 2 : 256) + (size_t)n;
        char *p = realloc(s->text, cap);
        if (!p) return;
        s->text = p;
        s->text_cap = cap;
    }
    memcpy(s->text + s->text_len, piece, (size_t)n);
    s->text_len += (size_t)n;
    s->text[s->text_len] = 0;
}

/* Feeds ids so that the cache holds exactly ids[0..n) (reusing the common
 * prefix with what is cached), prints echo (the prompt) once that worked,
 * then generates up to n_predict tokens. Returns 0, or 1 after printing an
 * error. */
static int generate(struct session *s, const int32_t *ids, int n, int n_predict, const char *echo) {
    char err[HIVE_ERR_LEN];
    if (n <= 0) {
        fprintf(stderr, "hive run: the prompt is empty\n");
        return 1;
    }
    if (n > s->n_ctx) {
        fprintf(stderr, "hive run: prompt is %d tokens but the context holds %d (use --ctx)\n", n, s->n_ctx);
        return 1;
    }
    int common = 0;
    while (common < s->n_log && common < n - 1 && s->log[common] == ids[common]) common++;
    hive_ctx_truncate(s->ctx, common);
    double t0 = hive_now_ms();
    if (hive_forward(s->ctx, ids + common, NULL, n - common, common, s->logits, 0, err)) {
        fprintf(stderr, "hive run: %s\n", err);
        return 1;
    }
    s->prompt_ms += hive_now_ms() - t0;
    if (echo) {
        fputs(echo, stdout);
        fflush(stdout);
    }
    s->n_prompt += n - common;
    memcpy(s->log, ids, (size_t)n * sizeof *ids);
    s->n_log = n;
    for (int i = common; i < n; i++) hive_sampler_accept(&s->sampler, ids[i]);

    struct utf8_out u = {{0}, 0};
    s->text_len = 0;
    if (s->text) s->text[0] = 0;
    double t1 = hive_now_ms();
    for (int k = 0; k < n_predict; k++) {
        int32_t id = hive_sample(&s->sampler, s->logits, s->hp->n_vocab);
        hive_sampler_accept(&s->sampler, id);
        s->n_gen++;
        if (hive_tokenizer_is_eog(s->tok, id)) {
            /* Cache the end-of-turn token so the next chat turn follows it. */
            if (s->n_log < s->n_ctx && !hive_forward(s->ctx, &id, NULL, 1, s->n_log, s->logits, 0, err))
                s->log[s->n_log++] = id;
            break;
        }
        char piece[256];
        int len = hive_token_to_piece(s->tok, id, 0, piece, sizeof piece);
        if (len > (int)sizeof piece) len = (int)sizeof piece;
        if (len > 0) {
            utf8_write(&u, piece, len, stdout);
            append_text(s, piece, len);
        }
        if (s->n_log >= s->n_ctx) { /* context full */
            utf8_flush(&u, stdout);
            fprintf(stderr, "\nhive run: context full at %d tokens; generation stopped (use --ctx)\n", s->n_ctx);
            break;
        }
        if (cli_interrupted) break;
        if (k + 1 == n_predict) break;   /* no need to compute logits we will not use */
        if (hive_forward(s->ctx, &id, NULL, 1, s->n_log, s->logits, 0, err)) {
            utf8_flush(&u, stdout);
            fprintf(stderr, "\nhive run: %s\n", err);
            return 1;
        }
        s->log[s->n_log++] = id;
    }
    utf8_flush(&u, stdout);
    s->gen_ms += hive_now_ms() - t1;
    return 0;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static void print_summary(const struct session *s) {
    double pps = s->prompt_ms > 0 ? s->n_prompt / (s->prompt_ms / 1000.0) : 0.0;
    double gps = s->gen_ms > 0 ? s->n_gen / (s->gen_ms / 1000.0) : 0.0;
    long kib = rss_kib();
    fprintf(stderr, "\nprompt: %d tok, %.1f tok/s | generation: %d tok, %.1f tok/s | load: %.0f ms | memory: %.0f MiB\n",
            s->n_prompt, pps, s->n_gen, gps, s->load_ms, kib > 0 ? kib / 1024.0 : 0.0);
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

static int chat_loop(struct session *s, const struct run_opts *o) {
    int tmpl = hive_chat_template_detect(hive_model_gguf(s->model));
    struct chat_history h = {0};
    int rc = 0;
    if (o->prompt && history_add(&h, "system", o->prompt)) rc = 1;
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
        char *text = render(tmpl, &h);
        int32_t *ids = NULL;
        int n = text ? tokenize_alloc(s->tok, text, 1, tmpl != HIVE_CHAT_NONE, &ids) : -1;
        free(text);
        if (n < 0) {
            fprintf(stderr, "hive run: cannot tokenize the conversation\n");
            rc = 1;
            break;
        }
        rc = generate(s, ids, n, o->n_predict, NULL);
        free(ids);
        fputc('\n', stdout);
        if (!rc && history_add(&h, "assistant", s->text ? s->text : "")) rc = 1;
    }
    history_free(&h);
    return rc;
}

int cli_run(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peers")) {
            if (!cli_run_peers) {
                fprintf(stderr, "hive run: --peers is not built into this binary\n");
                return 1;
            }
            return cli_run_peers(argc, argv);
        }
    }
    struct run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 2 ? 0 : 1;
    char default_path[4096];
    const char *path = o.model;
    if (!path) {
        if (!cli_default_model) {
            fprintf(stderr, "hive run: no default model in this binary; pass -m MODEL.gguf\n");
            return 1;
        }
        if (cli_default_model(default_path, sizeof default_path)) return 1;
        path = default_path;
    }
    cli_catch_interrupt();
    struct session s;
    if (session_open(&s, &o, path)) {
        session_free(&s);
        return 1;
    }
    if (o.seed_random) fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);
    if (o.chat) {
        rc = chat_loop(&s, &o);
    } else {
        int32_t *ids = NULL;
        int n = tokenize_alloc(s.tok, o.prompt ? o.prompt : "", 1, 0, &ids);
        if (n < 0) {
            fprintf(stderr, "hive run: cannot tokenize the prompt\n");
            rc = 1;
        } else {
            rc = generate(&s, ids, n, o.n_predict, o.prompt);
            if (!rc) fputc('\n', stdout);
        }
        free(ids);
    }
    if (!rc) print_summary(&s);
    session_free(&s);
    if (cli_interrupted) {
        fprintf(stderr, "hive run: interrupted\n");
        return 130;
    }
    return rc;
}
