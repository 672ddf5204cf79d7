/* cli_common.c - helpers shared by subcommands: finding (and, once,
 * downloading) the default model, stories260K.gguf.
 *
 * Search order: $HIVE_MODELS (else hive's store), the shared test data beside the source tree
 * (<exe dir>/../../shared/models, ./../shared/models), the user cache
 * ($XDG_CACHE_HOME or ~/.cache, /hive/models), then a download from Hugging
 * Face into that cache (HIVE_NO_DOWNLOAD=1 forbids it; HIVE_MODEL_URL names
 * a mirror). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hive/sched.h"
#include "hive/core.h"
#include "hive/cluster.h"
#include "hive/gguf.h"
#include "hive/sample.h"
#include "hive/os.h"


#define DEFAULT_MODEL "stories260K.gguf"
#define DEFAULT_MODEL_URL "https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf"
#define PATH_CAP 4096

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes dir/name into buf when that file exists; returns 1 if it does. */
static int try_candidate(char *buf, size_t cap, const char *dir, const char *name) {
    if (!dir || !*dir) return 0;
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap && is_file(buf);
}

/* Directory of the running executable, or 0 when unknown. */
static int exe_dir(char *buf, size_t cap) {
#ifdef __linux__
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash) return 0;
    *slash = 0;
    return 1;
#else
    (void)buf;
    (void)cap;
    return 0;
#endif
}

/* The user cache's models directory (hive_user_cache_base()/hive/models). */
static int cache_dir(char *buf, size_t cap) {
    char base[PATH_CAP];
    if (hive_user_cache_base(base, sizeof base) != 0) return 0;
    int n = snprintf(buf, cap, "%s/hive/models", base);
    return n > 0 && (size_t)n < cap;
}

/* Where the default model can come from, for every way of not finding it. */
static int no_model_hint(void) {
    fprintf(stderr,
            "hive: no model to run. Either\n"
            "  - set $HIVE_MODELS to a directory holding %s,\n"
            "  - put %s in ../shared/models (beside the source tree), or\n"
            "  - pass -m MODEL.gguf (any llama/qwen2/qwen3 GGUF).\n"
            "  With network access it is downloaded once (1 MB) from %s\n",
            DEFAULT_MODEL, DEFAULT_MODEL, DEFAULT_MODEL_URL);
    return 1;
}

static int find_default_model(char *buf, size_t cap);

int cli_default_model(char *buf, size_t cap) { return find_default_model(buf, cap) ? no_model_hint() : 0; }

static int find_default_model(char *buf, size_t cap) {
    char dir[PATH_CAP];
    char store[PATH_CAP]; /* $HIVE_MODELS, else hive's store (where `hive pull` puts models) */
    if (cli_store_dir(store, sizeof store) == 0 && try_candidate(buf, cap, store, DEFAULT_MODEL)) return 0;
    if (exe_dir(dir, sizeof dir)) {
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof dir - n, "/../../shared/models");
        if (try_candidate(buf, cap, dir, DEFAULT_MODEL)) return 0;
    }
    if (try_candidate(buf, cap, "../shared/models", DEFAULT_MODEL)) return 0;
    if (!cache_dir(dir, sizeof dir)) {
        fprintf(stderr, "hive: no default model found and no cache directory (set HIVE_MODELS or HOME)\n");
        return 1;
    }
    if (try_candidate(buf, cap, dir, DEFAULT_MODEL)) return 0;

    const char *no_dl = getenv("HIVE_NO_DOWNLOAD");
    if (no_dl && *no_dl && strcmp(no_dl, "0")) {
        fprintf(stderr, "hive: %s not found (HIVE_MODELS, ../shared/models, %s) and HIVE_NO_DOWNLOAD is set\n",
                DEFAULT_MODEL, dir);
        return 1;
    }
    int n = snprintf(buf, cap, "%s/%s", dir, DEFAULT_MODEL);
    if (n <= 0 || (size_t)n >= cap || strlen(buf) + 8 > PATH_CAP) {
        fprintf(stderr, "hive: model path too long\n");
        return 1;
    }
    if (hive_mkdirs(dir, NULL) != HIVE_OK) {
        fprintf(stderr, "hive: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    const char *url = getenv("HIVE_MODEL_URL"); /* a mirror */
    if (!url || !*url) url = DEFAULT_MODEL_URL;
    fprintf(stderr, "hive: downloading the default model %s\n  from %s\n  to %s\n", DEFAULT_MODEL, url, buf);
    return cli_download(url, buf);
}

/* ---- options shared by the generating commands ---- */

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v) return -1;
    *out = v;
    return 0;
}

int cli_int_option(const char *cmd, const char *opt, const char *val, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "hive %s: bad value '%s' for %s (an integer from %ld to %ld)\n", cmd, val, opt, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_default_threads(void) { return hive_cpu_count(); }

uint64_t cli_random_seed(void) { return (uint32_t)hive_os_random64(); }

volatile sig_atomic_t cli_interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

/* hive_on_stop: SIGINT/SIGTERM, console events on Windows; a second
 * Ctrl-C kills as usual. */
void cli_catch_interrupt(void) { hive_on_stop(on_interrupt); }

int cli_sampler_option(const char *cmd, const char *opt, const char *val, struct hive_sampler_params *sp,
                       int *seed_set) {
    double d = 0;
    if (!strcmp(opt, "--seed") || !strcmp(opt, "-s")) {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-') {
            fprintf(stderr, "hive %s: bad value '%s' for %s (an integer from 0 to %llu)\n", cmd, val, opt,
                    (unsigned long long)UINT64_MAX);
            return -1;
        }
        sp->seed = seed;
        if (seed_set) *seed_set = 1;
        return 0;
    }
    static const struct {
        const char *opt;
        int is_int;
    } known[] = {{"--temp", 0},           {"--top-k", 1},           {"--top-p", 0},
                 {"--min-p", 0},          {"--repeat-penalty", 0},  {"--repeat-last-n", 1},
                 {"--presence-penalty", 0}, {"--frequency-penalty", 0}};
    size_t k = 0;
    while (k < sizeof known / sizeof known[0] && strcmp(opt, known[k].opt)) k++;
    if (k == sizeof known / sizeof known[0]) return 1;
    if (parse_double(val, &d) || (known[k].is_int && (d != (double)(long)d || d < INT32_MIN || d > INT32_MAX))) {
        fprintf(stderr, "hive %s: bad value '%s' for %s (%s)\n", cmd, val, opt, known[k].is_int ? "an integer" : "a number");
        return -1;
    }
    struct hive_sampler_params t = *sp;
    switch (k) {
    case 0: t.temperature = (float)d; break;
    case 1: t.top_k = (int32_t)d; break;
    case 2: t.top_p = (float)d; break;
    case 3: t.min_p = (float)d; break;
    case 4: t.repeat_penalty = (float)d; break;
    case 5: t.repeat_last_n = (int32_t)d; break;
    case 6: t.presence_penalty = (float)d; break;
    default: t.frequency_penalty = (float)d; break;
    }
    char err[HIVE_ERR_LEN];
    if (hive_sampler_params_check(&t, err) != HIVE_OK) {
        fprintf(stderr, "hive %s: %s %s refused: %s\n", cmd, opt, val, err);
        return -1;
    }
    *sp = t;
    return 0;
}

int cli_cluster_opts(const char *cmd, const char *peers, const char *key_path, int head_layers,
                     struct hive_sched_opts *so, const char **addrs, int cap, char **buf) {
    char err[HIVE_ERR_LEN];
    *buf = NULL;
    if (!peers) {
        /* This machine alone: the in-process node is the only one that will
         * ever hear this key, so a fresh random one does. */
        hive_key_generate(so->key);
        so->local_layers = 1;
        return 0;
    }
    /* "auto" alone, or mixed into the list ("auto,10.0.0.5:7070"): the nodes
     * found on the LAN too (where multicast is blocked, name the others). */
    int n = 0, autodisc = 0;
    *buf = strdup(peers);
    for (char *save = NULL, *t = *buf ? strtok_r(*buf, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "auto")) {
            autodisc = 1;
            continue;
        }
        if (n == cap) {
            n = -1;
            break;
        }
        addrs[n++] = t;
    }
    if (n < 0 || (n == 0 && !autodisc)) {
        fprintf(stderr, "hive %s: bad --peers list '%s' (host:port,host:port,... at most %d, and/or auto)\n", cmd,
                peers, cap);
        return 1;
    }
    if (key_path ? hive_key_load(key_path, so->key, err) : hive_key_load_default(so->key, err)) {
        fprintf(stderr, "hive %s: %s\n", cmd, err);
        return 1;
    }
    if (autodisc) {
        so->discover_ms = CLI_DISCOVER_MS;
        so->discover_iface = getenv("HIVE_MDNS_IFACE"); /* e.g. 127.0.0.1 for nodes on this machine */
        so->local_layers = 1;
    }
    if (n == 0) return 0;
    so->peers = addrs;
    so->n_peers = n;
    so->local_layers |= head_layers;
    return 0;
}

int cli_draft_option(const char *cmd, const char *opt, const char *val, struct cli_draft *d, int *took_value) {
    *took_value = 0;
    if (!strcmp(opt, "--draft-ngram")) return d->ngram = 1, 0;
    if (!strcmp(opt, "--draft-fixed")) return d->fixed = 1, 0;
    if (strcmp(opt, "--draft") && strcmp(opt, "--draft-max")) return 1;
    if (!val) {
        fprintf(stderr, "hive %s: %s needs a value\n", cmd, opt);
        return -1;
    }
    *took_value = 1;
    if (!strcmp(opt, "--draft")) return d->model = val, 0;
    return cli_int_option(cmd, opt, val, 1, 16, &d->max) ? -1 : 0;
}

int cli_draft_apply(const char *cmd, const struct cli_draft *d, struct hive_sched_opts *so, char *path, size_t cap) {
    if (d->model && d->ngram) {
        fprintf(stderr, "hive %s: --draft and --draft-ngram are two sources of drafts; pick one\n", cmd);
        return 1;
    }
    if ((d->max || d->fixed) && !d->model && !d->ngram) {
        fprintf(stderr, "hive %s: --draft-max and --draft-fixed need a source of drafts (--draft MODEL or --draft-ngram)\n", cmd);
        return 1;
    }
    if (d->model) {
        if (cli_resolve_model(d->model, path, cap)) return 1;
        so->draft_path = path;
    }
    so->draft_ngram = d->ngram;
    so->draft_max = d->max;
    so->draft_fixed = d->fixed;
    return 0;
}

int cli_print_json(void *doc) {
    char *s = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!s) return 1;
    printf("%s\n", s);
    free(s);
    return 0;
}
