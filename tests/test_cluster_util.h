/* test_cluster_util.h - helpers shared by tests/test_cluster*.c: a temporary
 * directory with a cluster key, `hive node` processes on 127.0.0.1 with
 * ephemeral ports, running the head (`hive run --peers`) as a process, its
 * --stats-json summary, and the single-node reference computed in-process
 * with the model API (independent of the cluster code).
 *
 * Children get PR_SET_PDEATHSIG so a crashed test leaves no orphans. A node
 * is stopped with SIGTERM and must exit 0 (under ASan that includes "no
 * leaks"). */
#ifndef HIVE_TEST_CLUSTER_UTIL_H
#define HIVE_TEST_CLUSTER_UTIL_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hive/core.h"
#include "hive/lanproxy.h"
#include "hive/mkmodel.h"
#include "hive/model.h"
#include "hive/net.h"
#include "hive/sample.h"
#include "hive/tokenizer.h"

#define TC_MAX_TOK 1024

struct tc_env {
    char dir[64];
    char key[128];
    char bin[1024];
    const char *emulator; /* NULL, or a program that runs bin (wine for hive.exe): nodes only */
};

static inline int tc_small(void) {
    const char *s = getenv("HIVE_TEST_SCALE");
    return s && !strcmp(s, "small");
}

static inline void tc_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Skips (77) when the hive binary is missing. */
static inline void tc_setup(struct tc_env *e) {
    e->emulator = NULL;
    snprintf(e->bin, sizeof e->bin, "%s/hive", HIVE_BIN_DIR);
    if (access(e->bin, X_OK) != 0) {
        printf("SKIP: %s not built\n", e->bin);
        exit(SKIP_CODE);
    }
    snprintf(e->dir, sizeof e->dir, "/tmp/hive-cluster-XXXXXX");
    if (!mkdtemp(e->dir)) {
        perror("mkdtemp");
        exit(1);
    }
    /* Processes this test starts keep their contribution ledger here. */
    char ledger[128];
    snprintf(ledger, sizeof ledger, "%s/ledger.db", e->dir);
    setenv("HIVE_LEDGER", ledger, 1);
    uint8_t key[HIVE_KEY_BYTES];
    hive_key_generate(key);
    snprintf(e->key, sizeof e->key, "%s/key", e->dir);
    char err[HIVE_ERR_LEN];
    if (hive_key_write(e->key, key, 1, err)) {
        fprintf(stderr, "key: %s\n", err);
        exit(1);
    }
    signal(SIGPIPE, SIG_IGN);
}

static inline int tc_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the test directory; HIVE_TEST_KEEP=1 keeps it (node logs) for debugging. */
static inline void tc_cleanup(struct tc_env *e) {
    if (getenv("HIVE_TEST_KEEP")) {
        fprintf(stderr, "keeping %s\n", e->dir);
        return;
    }
    nftw(e->dir, tc_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Forks and execs argv; stdout/stderr to the given fds (-1 = /dev/null). */
static inline pid_t tc_spawn(char *const argv[], int out_fd, int err_fd) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(out_fd >= 0 ? out_fd : null_fd, 1);
    dup2(err_fd >= 0 ? err_fd : null_fd, 2);
    execv(argv[0], argv);
    _exit(127);
}

/* Waits up to timeout_ms; returns the exit status (signal -> 128+sig), or
 * -1 after killing a process that did not finish. */
static inline int tc_wait(pid_t pid, int timeout_ms) {
    int status = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) return -1;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        tc_sleep_ms(20);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* Reads lines from fd until one says "listening on WORD" and copies WORD
 * into out (cap bytes). Gives up at EOF or after timeout_ms; 0 on success. */
static inline int tc_read_listening(int fd, char *out, size_t cap, int timeout_ms) {
    char line[256];
    size_t len = 0;
    out[0] = '\0';
    for (int waited = 0; waited < timeout_ms && len < sizeof line - 1;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        if (read(fd, line + len, 1) <= 0) break;
        if (line[len] != '\n') {
            len++;
            continue;
        }
        line[len] = '\0';
        len = 0;
        const char *pre = "listening on ";
        if (strncmp(line, pre, strlen(pre))) continue;
        const char *w = line + strlen(pre);
        size_t n = strcspn(w, " \t\r");
        if (n == 0 || n >= cap) return -1;
        memcpy(out, w, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

struct tc_node {
    pid_t pid;
    char addr[64];
    char cache[256];
    char log[256];
};

/* Starts `hive node` on an ephemeral port; mem may be NULL, key NULL = env key.
 * The node's stderr goes to <dir>/<name>.log. Returns 0 or -1. */
static inline int tc_node_start_ex(const struct tc_env *e, struct tc_node *n, const char *name, const char *mem,
                                   const char *key, const char *const *extra) {
    snprintf(n->cache, sizeof n->cache, "%s/cache-%s", e->dir, name);
    snprintf(n->log, sizeof n->log, "%s/%s.log", e->dir, name);
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    int log_fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    char *argv[34];
    int k = 0;
    if (e->emulator) argv[k++] = (char *)e->emulator;
    argv[k++] = (char *)e->bin;
    argv[k++] = "node";
    argv[k++] = "--listen";
    argv[k++] = "127.0.0.1:0";
    argv[k++] = "--key";
    argv[k++] = (char *)(key ? key : e->key);
    argv[k++] = "--cache-dir";
    argv[k++] = n->cache;
    argv[k++] = "--name";
    argv[k++] = (char *)name;
    argv[k++] = "--no-probe";
    argv[k++] = "-t";
    argv[k++] = "1";
    if (mem) {
        argv[k++] = "--mem";
        argv[k++] = (char *)mem;
    }
    for (int i = 0; extra && extra[i] && k < 33; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    n->pid = tc_spawn(argv, pipefd[1], log_fd);
    close(pipefd[1]);
    if (log_fd >= 0) close(log_fd);
    tc_read_listening(pipefd[0], n->addr, sizeof n->addr, 30000);
    close(pipefd[0]);
    if (!n->addr[0]) {
        fprintf(stderr, "node %s did not start (see %s)\n", name, n->log);
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
        return -1;
    }
    return 0;
}

static inline int tc_node_start(const struct tc_env *e, struct tc_node *n, const char *name, const char *mem,
                                const char *key) {
    return tc_node_start_ex(e, n, name, mem, key, NULL);
}

/* SIGTERM and wait; returns the exit status (0 = clean). */
static inline int tc_node_stop(struct tc_node *n) {
    if (n->pid <= 0) return 0;
    kill(n->pid, SIGTERM);
    int st = tc_wait(n->pid, 20000);
    n->pid = 0;
    if (st != 0) {
        fprintf(stderr, "node exited with %d; its log:\n", st);
        FILE *f = fopen(n->log, "r");
        char buf[512];
        while (f && fgets(buf, sizeof buf, f)) fputs(buf, stderr);
        if (f) fclose(f);
    }
    return st;
}

static inline int tc_node_alive(const struct tc_node *n) { return n->pid > 0 && kill(n->pid, 0) == 0 && waitpid(n->pid, NULL, WNOHANG) == 0; }

/* "a,b,c" from nodes[0..n). */
static inline void tc_peers(const struct tc_node *nodes, int n, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", i ? "," : "", nodes[i].addr);
    }
}

/* Builds the argv of a head run into argv (cap entries). */
static inline int tc_head_argv(const struct tc_env *e, char **argv, int cap, const char *model, const char *peers,
                        const char *prompt, const char *n_predict, const char *stats, const char *const *extra) {
    int k = 0;
    const char *fixed[] = {e->bin, "run", "-m", model, "--peers", peers, "--key", e->key, "-p", prompt, "-n",
                           n_predict, "-t", "1", "--stats-json", stats, "--timeout", "30000"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && k < cap - 1; i++) argv[k++] = (char *)fixed[i];
    for (int i = 0; extra && extra[i] && k < cap - 1; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    return k;
}

/* Runs the head to completion. Its stderr goes to <dir>/head.log (replaced
 * each run); returns its exit status. */
static inline int tc_head_run(const struct tc_env *e, const char *model, const char *peers, const char *prompt,
                       int n_predict, const char *stats, const char *const *extra) {
    char n[16], log[256];
    snprintf(n, sizeof n, "%d", n_predict);
    snprintf(log, sizeof log, "%s/head.log", e->dir);
    unlink(stats);
    char *argv[48];
    tc_head_argv(e, argv, 48, model, peers, prompt, n, stats, extra);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, -1, fd);
    if (fd >= 0) close(fd);
    return tc_wait(pid, 180000);
}

/* 1 if the head's last log contains s. */
static inline int tc_head_log_has(const struct tc_env *e, const char *s) {
    char log[256], buf[8192];
    snprintf(log, sizeof log, "%s/head.log", e->dir);
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, s) != NULL;
}

static inline void tc_head_log_print(const struct tc_env *e) {
    char log[256], buf[512];
    snprintf(log, sizeof log, "%s/head.log", e->dir);
    FILE *f = fopen(log, "r");
    while (f && fgets(buf, sizeof buf, f)) fprintf(stderr, "  head: %s", buf);
    if (f) fclose(f);
}

struct tc_stats {
    int32_t tokens[TC_MAX_TOK];
    int n_tokens, n_prompt;
    uint64_t weight_bytes_sent;
    int n_stages;
    int node[64], first[64], last[64];
    char weights[64][16]; /* "sent", "cache", "model-dir" */
    double tok_per_s;
    double ring_ms;    /* decode step round trip */
    double compute_ms; /* sum of the stages' own compute per decode token */
};

static inline int tc_read_stats(const char *path, struct tc_stats *s) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return -1;
    buf[n] = '\0';
    cJSON *doc = cJSON_Parse(buf);
    free(buf);
    if (!doc) return -1;
    cJSON *t, *toks = cJSON_GetObjectItem(doc, "tokens");
    cJSON_ArrayForEach(t, toks) if (s->n_tokens < TC_MAX_TOK) s->tokens[s->n_tokens++] = (int32_t)t->valuedouble;
    s->n_prompt = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "n_prompt"));
    s->weight_bytes_sent = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "weight_bytes_sent"));
    s->tok_per_s = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "tok_per_s"));
    s->ring_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(doc, "ring_ms"));
    cJSON *st;
    cJSON_ArrayForEach(st, cJSON_GetObjectItem(doc, "stages")) {
        if (s->n_stages >= 64) break;
        int i = s->n_stages++;
        s->node[i] = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "node"));
        s->first[i] = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "first"));
        s->last[i] = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(st, "last"));
        s->compute_ms += cJSON_GetNumberValue(cJSON_GetObjectItem(st, "compute_ms"));
        const char *w = cJSON_GetStringValue(cJSON_GetObjectItem(st, "weights"));
        snprintf(s->weights[i], sizeof s->weights[i], "%s", w ? w : "");
    }
    cJSON_Delete(doc);
    return 0;
}

/* Single-node reference, in-process with the model API: the prompt as
 * `hive run` tokenizes it, then up to n_predict sampled tokens (stopping
 * after an end-of-generation token). out gets prompt + generated; returns
 * the count or -1. */
static inline int tc_reference(const char *model, const char *prompt, int n_predict, const struct hive_sampler_params *sp,
                        int32_t *out, int cap) {
    char err[HIVE_ERR_LEN];
    hive_model *m = NULL;
    hive_tokenizer *tok = NULL;
    hive_ctx *ctx = NULL;
    hive_pool *pool = hive_pool_create(1);
    float *logits = NULL;
    int n = -1;
    if (hive_model_load(&m, model, NULL, err) || hive_tokenizer_load(&tok, hive_model_gguf(m), err)) {
        fprintf(stderr, "reference: %s\n", err);
        goto out;
    }
    const struct hive_hparams *hp = hive_model_hparams(m);
    int n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (hive_ctx_create(&ctx, m, 0, hp->n_layer, n_ctx, pool, err)) {
        fprintf(stderr, "reference: %s\n", err);
        goto out;
    }
    logits = malloc((size_t)hp->n_vocab * sizeof *logits);
    int n_prompt = hive_tokenize(tok, prompt, strlen(prompt), 1, 0, out, cap);
    if (!logits || n_prompt < 1 || n_prompt > cap) goto out;
    struct hive_sampler s;
    hive_sampler_init(&s, sp);
    for (int i = 0; i < n_prompt; i++) hive_sampler_accept(&s, out[i]);
    if (hive_forward(ctx, out, NULL, n_prompt, 0, logits, 0, err)) goto out;
    n = n_prompt;
    for (int k = 0; k < n_predict && n < cap; k++) {
        int32_t id = hive_sample(&s, logits, hp->n_vocab);
        hive_sampler_accept(&s, id);
        out[n++] = id;
        if (hive_tokenizer_is_eog(tok, id) || n >= n_ctx || k + 1 == n_predict) break;
        if (hive_forward(ctx, &id, NULL, 1, n - 1, logits, 0, err)) {
            n = -1;
            break;
        }
    }
out:
    free(logits);
    hive_ctx_free(ctx);
    hive_pool_free(pool);
    hive_tokenizer_free(tok);
    hive_model_free(m);
    return n;
}

/* A small synthetic model (5 layers, dim 64, vocab 320) of arch and type
 * at path, with its own seed. HIVE_OK or the error in err. */
static inline int tc_mkmodel_small(const char *path, const char *arch, const char *type, uint64_t seed, char *err) {
    struct hive_mkmodel_opts o = {0};
    o.arch = arch;
    o.type = type;
    o.dim = 64;
    o.n_layers = 5;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.ff = 128;
    o.vocab = 320;
    o.ctx = 256;
    o.seed = seed;
    o.n_threads = 1;
    return hive_mkmodel(&o, path, err);
}

/* CHECKs that a run's token log equals the reference; prints both on failure. */
#define TC_CHECK_TOKENS(stats, ref, n_ref, what)                                                            \
    do {                                                                                                    \
        int same_ = (stats)->n_tokens == (n_ref);                                                           \
        for (int i_ = 0; same_ && i_ < (n_ref); i_++) same_ = (stats)->tokens[i_] == (ref)[i_];             \
        CHECKF(same_, "%s: %d tokens differ from the %d of the single-node reference", what,                \
               (stats)->n_tokens, (n_ref));                                                                 \
        if (!same_) {                                                                                       \
            fprintf(stderr, "  got:");                                                                      \
            for (int i_ = 0; i_ < (stats)->n_tokens && i_ < 60; i_++) fprintf(stderr, " %d", (stats)->tokens[i_]); \
            fprintf(stderr, "\n  ref:");                                                                    \
            for (int i_ = 0; i_ < (n_ref) && i_ < 60; i_++) fprintf(stderr, " %d", (ref)[i_]);               \
            fprintf(stderr, "\n");                                                                          \
        }                                                                                                   \
    } while (0)

/* LAN emulator proxies in front of nodes (delay, jitter; cut with
 * hive_lanproxy_command(p, "cut")). The ring's data links go through them
 * too, since the head hands each stage its successor's address as it knows it. */
struct tc_proxies {
    hive_lanproxy *p[8];
    char addr[8][64];
    int n;
};

static inline int tc_proxies_start(struct tc_proxies *px, struct tc_node *nodes, int n, double delay_ms, double jitter_ms) {
    px->n = 0;
    for (int i = 0; i < n; i++) {
        char host[64], err[HIVE_ERR_LEN];
        int port;
        if (hive_net_parse_hostport(nodes[i].addr, host, sizeof host, &port, err)) return -1;
        struct hive_lanproxy_opts o = {.to_host = host, .to_port = port, .delay_ms = delay_ms,
                                       .jitter_ms = jitter_ms, .seed = 5 + (uint64_t)i};
        if (hive_lanproxy_start(&px->p[i], &o, err)) {
            fprintf(stderr, "lanproxy: %s\n", err);
            return -1;
        }
        snprintf(px->addr[i], sizeof px->addr[i], "127.0.0.1:%d", hive_lanproxy_port(px->p[i]));
        px->n++;
    }
    return 0;
}

static inline void tc_proxies_stop(struct tc_proxies *px) {
    for (int i = 0; i < px->n; i++) hive_lanproxy_stop(px->p[i]);
    px->n = 0;
}

static inline void tc_proxies_peers(const struct tc_proxies *px, char *buf, size_t cap) {
    buf[0] = '\0';
    for (int i = 0; i < px->n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", i ? "," : "", px->addr[i]);
    }
}


#endif
