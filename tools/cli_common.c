/* cli_common.c - helpers shared by subcommands: finding (and, once,
 * downloading) the default model, stories260K.gguf.
 *
 * Search order: $HIVE_MODELS (else hive's store), the shared test data beside the source tree
 * (<exe dir>/../../shared/models, ./../shared/models), the user cache
 * ($XDG_CACHE_HOME or ~/.cache, /hive/models), then a download from Hugging
 * Face into that cache (HIVE_NO_DOWNLOAD=1 forbids it; HIVE_MODEL_URL names
 * a mirror). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hive/sched.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/sample.h"
#include "hive/store.h"

#ifdef _WIN32
#include <direct.h>
#define make_dir(p) _mkdir(p)
#else
#define make_dir(p) mkdir((p), 0755)
#endif

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

static int cache_dir(char *buf, size_t cap) {
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
#ifdef _WIN32
    if (!home) home = getenv("LOCALAPPDATA");
#endif
    int n;
    if (xdg && *xdg) n = snprintf(buf, cap, "%s/hive/models", xdg);
    else if (home && *home) n = snprintf(buf, cap, "%s/.cache/hive/models", home);
    else return 0;
    return n > 0 && (size_t)n < cap;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char tmp[PATH_CAP];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0) continue;
        char c = tmp[i];
        tmp[i] = 0;
        if (make_dir(tmp) != 0 && errno != EEXIST) return -1;
        tmp[i] = c;
    }
    return 0;
}

/* ---- download ---- */

struct download {
    FILE *f;
    int last_pct;
    int tty;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    struct download *d = userdata;
    return fwrite(ptr, size, nmemb, d->f); /* a short count makes libcurl abort with CURLE_WRITE_ERROR */
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    struct download *d = clientp;
    if (dltotal <= 0) return 0; /* size not known yet */
    int pct = (int)(dlnow * 100 / dltotal);
    if (pct == d->last_pct) return 0;
    d->last_pct = pct;
    if (d->tty) {
        int bar = pct / 4;
        fprintf(stderr, "\r  [%-25.*s] %3d%% %.1f/%.1f MiB", bar, "#########################", pct,
                (double)dlnow / (1 << 20), (double)dltotal / (1 << 20));
    } else if (pct % 25 == 0 && pct > 0) {
        fprintf(stderr, "  %d%%\n", pct);
    }
    return 0; /* nonzero would abort the transfer */
}

/* Downloads url to path via path.part; checks the result is GGUF. */
static int download_file(const char *url, const char *path) {
    char part[PATH_CAP + 8];
    snprintf(part, sizeof part, "%s.part", path);
    struct download d = {.f = fopen(part, "wb"), .last_pct = -1, .tty = isatty(STDERR_FILENO)};
    if (!d.f) {
        fprintf(stderr, "hive: cannot create %s: %s\n", part, strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fclose(d.f);
        remove(part);
        fprintf(stderr, "hive: libcurl failed to initialise\n");
        return 1;
    }
    CURL *curl = curl_easy_init();
    char curl_err[CURL_ERROR_SIZE] = "";
    CURLcode res = CURLE_FAILED_INIT;
    long status = 0;
    if (curl) {
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L); /* Hugging Face redirects to its CDN */
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);    /* HTTP >= 400 is an error, not a body */
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "hive/" HIVE_VERSION);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* give up when stalled for a minute */
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &d);
        res = curl_easy_perform(curl);
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(curl);
    }
    curl_global_cleanup();
    if (d.tty && d.last_pct >= 0) fputc('\n', stderr);
    int closed = fclose(d.f);
    if (res != CURLE_OK || closed != 0) {
        if (res != CURLE_OK && status > 0)
            fprintf(stderr, "hive: download of %s failed: %s (HTTP %ld)\n", url, curl_err[0] ? curl_err : curl_easy_strerror(res), status);
        else if (res != CURLE_OK)
            fprintf(stderr, "hive: download of %s failed: %s\n", url, curl_err[0] ? curl_err : curl_easy_strerror(res));
        else
            fprintf(stderr, "hive: writing %s failed: %s\n", part, strerror(errno));
        remove(part);
        return 1;
    }
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open(&g, part, err) != HIVE_OK) {
        fprintf(stderr, "hive: the downloaded file is not a usable GGUF: %s\n", err);
        remove(part);
        return 1;
    }
    hive_gguf_close(g);
#ifdef _WIN32
    remove(path);
#endif
    if (rename(part, path) != 0) {
        fprintf(stderr, "hive: cannot rename %s to %s: %s\n", part, path, strerror(errno));
        remove(part);
        return 1;
    }
    return 0;
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
    if (hive_store_dir(store, sizeof store, NULL) == HIVE_OK && try_candidate(buf, cap, store, DEFAULT_MODEL)) return 0;
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
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "hive: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    const char *url = getenv("HIVE_MODEL_URL"); /* a mirror */
    if (!url || !*url) url = DEFAULT_MODEL_URL;
    fprintf(stderr, "hive: downloading the default model %s\n  from %s\n  to %s\n", DEFAULT_MODEL, url, buf);
    return download_file(url, buf);
}

int cli_resolve_model(const char *name, char *path, size_t cap) {
    struct hive_model_ref r;
    char err[HIVE_ERR_LEN];
    if (hive_store_resolve(name, &r, err) != HIVE_OK) {
        fprintf(stderr, "hive: %s\n", err);
        return 1;
    }
    if (snprintf(path, cap, "%s", r.path) >= (int)cap) {
        fprintf(stderr, "hive: model path too long: %s\n", r.path);
        return 1;
    }
    return 0;
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

uint64_t cli_random_seed(void) {
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        v = (uint32_t)(hive_now_us() ^ ((uint64_t)getpid() << 16)); /* no /dev/urandom: good enough for a seed */
    if (fd >= 0) close(fd);
    return v;
}

volatile sig_atomic_t cli_interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = (int)SA_RESETHAND; /* a second Ctrl-C kills as usual */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

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
