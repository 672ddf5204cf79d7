/* cli_mkmodel.c - `hive mkmodel`: write a synthetic GGUF model from a seed.
 * Parses options into struct hive_mkmodel_opts (include/hive/mkmodel.h),
 * which does the work. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hive/mkmodel.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hive mkmodel -o OUT.gguf [options]\n"
            "\n"
            "Writes a model with random weights (deterministic for a seed) and llama.cpp's\n"
            "GGUF conventions, for tests and benchmarks.\n"
            "\n"
            "  -o, --out FILE        output file (required)\n"
            "  --arch A              llama (default), qwen2, qwen3\n"
            "  --type T              f32 (default) f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1\n"
            "                        q2_k q3_k q4_k q5_k q6_k q4_k_m q5_k_m\n"
            "  --preset P            tinyllama-1.1b (dim 2048, 22 layers, 32/4 heads, ff 5632,\n"
            "                        vocab 32000, ctx 2048), llama-8b, llama-70b (Llama 3),\n"
            "                        qwen2.5-7b, qwen2.5-32b (arch qwen2); other options override it\n"
            "  --dim N               embedding length (default 256)\n"
            "  --layers N            blocks (default 4)\n"
            "  --heads N             attention heads (default 8)\n"
            "  --kv-heads N          KV heads (default heads/2)\n"
            "  --head-dim N          per-head size (default dim/heads)\n"
            "  --ff N                feed-forward length (default 3*dim)\n"
            "  --vocab N             vocab size (default 512, at least 259)\n"
            "  --vocab-from FILE     copy the tokenizer.* keys of FILE (sets the vocab size)\n"
            "  --ctx N               context length (default 512)\n"
            "  --rope-theta F        RoPE base (default 10000 llama, 1e6 qwen)\n"
            "  --eps F               RMSNorm epsilon (default 1e-5 llama, 1e-6 qwen)\n"
            "  --std F               weight standard deviation (default 0.02)\n"
            "  --depth-decay F       layer i writes to the residual with std * F^i, F in (0, 1]: the\n"
            "                        first layers decide, so fewer layers make a good draft (default 1)\n"
            "  --seed N              random seed (default 1)\n"
            "  --name S              general.name\n"
            "  --threads N           threads (default: all CPUs)\n"
            "  -q, --quiet           no progress output\n");
}

static int parse_i64(const char *opt, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "hive mkmodel: %s needs a non-negative integer, got '%s'\n", opt, s);
        return 1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "hive mkmodel: %s needs an unsigned integer, got '%s'\n", opt, s);
        return 1;
    }
    *out = v;
    return 0;
}

static int parse_f32(const char *opt, const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v > 0)) {
        fprintf(stderr, "hive mkmodel: %s needs a positive number, got '%s'\n", opt, s);
        return 1;
    }
    *out = v;
    return 0;
}

static void show_progress(void *ctx, uint64_t done, uint64_t total) {
    int *last = ctx;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == *last) return;
    *last = pct;
    fprintf(stderr, "\rwriting: %3d%% (%.1f / %.1f MiB)", pct, (double)done / (1 << 20), (double)total / (1 << 20));
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* Splits "--opt=value" or takes the next argument; returns NULL when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *arg, size_t name_len) {
    if (arg[name_len] == '=') return arg + name_len + 1;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int cli_mkmodel(int argc, char **argv) {
    struct hive_mkmodel_opts o = {0};
    struct hive_mkmodel_stats stats = {0};
    const char *out = NULL;
    int quiet = 0;
    o.seed = 1;
    o.stats = &stats;

    /* the preset first, so that explicit options override it wherever they appear */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--preset", 8) || (argv[i][8] && argv[i][8] != '=')) continue;
        const char *v = option_value(argc, argv, &i, argv[i], 8);
        char err[HIVE_ERR_LEN];
        if (!v || hive_mkmodel_preset(&o, v, err)) {
            fprintf(stderr, "hive mkmodel: %s\n", v ? err : "--preset needs a value");
            return 2;
        }
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) goto missing;
            out = argv[++i];
            continue;
        }
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "hive mkmodel: unexpected argument '%s'\n", a);
            return 2;
        }
        size_t name_len = strcspn(a, "=");
        char name[32];
        if (name_len >= sizeof name) goto unknown;
        memcpy(name, a, name_len);
        name[name_len] = 0;
        const char *v = option_value(argc, argv, &i, a, name_len);
        if (!v) goto missing;
        int bad = 0;
        if (!strcmp(name, "--out")) out = v;
        else if (!strcmp(name, "--preset")) continue; /* handled above */
        else if (!strcmp(name, "--arch")) o.arch = v;
        else if (!strcmp(name, "--type")) o.type = v;
        else if (!strcmp(name, "--dim")) bad = parse_i64(name, v, &o.dim);
        else if (!strcmp(name, "--layers")) bad = parse_i64(name, v, &o.n_layers);
        else if (!strcmp(name, "--heads")) bad = parse_i64(name, v, &o.n_heads);
        else if (!strcmp(name, "--kv-heads")) bad = parse_i64(name, v, &o.n_kv_heads);
        else if (!strcmp(name, "--head-dim")) bad = parse_i64(name, v, &o.head_dim);
        else if (!strcmp(name, "--ff")) bad = parse_i64(name, v, &o.ff);
        else if (!strcmp(name, "--vocab")) bad = parse_i64(name, v, &o.vocab);
        else if (!strcmp(name, "--ctx")) bad = parse_i64(name, v, &o.ctx);
        else if (!strcmp(name, "--seed")) bad = parse_u64(name, v, &o.seed);
        else if (!strcmp(name, "--rope-theta")) bad = parse_f32(name, v, &o.rope_theta);
        else if (!strcmp(name, "--eps")) bad = parse_f32(name, v, &o.rms_eps);
        else if (!strcmp(name, "--std")) bad = parse_f32(name, v, &o.weight_std);
        else if (!strcmp(name, "--depth-decay")) bad = parse_f32(name, v, &o.depth_decay);
        else if (!strcmp(name, "--vocab-from")) o.vocab_from = v;
        else if (!strcmp(name, "--name")) o.name = v;
        else if (!strcmp(name, "--threads")) {
            int64_t t;
            bad = parse_i64(name, v, &t) || t > 1024;
            o.n_threads = (int)t;
        } else goto unknown;
        if (bad) return 2;
        continue;
    unknown:
        fprintf(stderr, "hive mkmodel: unknown option '%s' (see --help)\n", a);
        return 2;
    missing:
        fprintf(stderr, "hive mkmodel: %s needs a value\n", a);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "hive mkmodel: no output file (-o OUT.gguf)\n\n");
        usage(stderr);
        return 2;
    }

    int last_pct = -1;
    if (!quiet && isatty(STDERR_FILENO)) {
        o.progress = show_progress;
        o.progress_ctx = &last_pct;
    }
    char err[HIVE_ERR_LEN];
    int rc = hive_mkmodel(&o, out, err);
    if (rc) {
        if (last_pct >= 0 && last_pct < 100) fputc('\n', stderr);
        fprintf(stderr, "hive mkmodel: %s\n", err);
        return 1;
    }
    if (!quiet)
        printf("wrote %s: %s %s, %" PRId64 " tensors, %.2fM params, %.1f MiB in %.2f s\n", out, o.arch ? o.arch : "llama",
               o.type ? o.type : "f32", stats.n_tensors, (double)stats.n_params / 1e6,
               (double)stats.n_bytes / (1 << 20), stats.elapsed_ms / 1000);
    return 0;
}
