/* test_cache.c - the stage cache's size cap and `hive cache`.
 *
 * Unit part, on a temp cache dir of fake stage files with chosen mtimes:
 * listing (least recently used first, foreign names ignored), the default
 * cap (4x the largest file, or $HIVE_CACHE_MAX), LRU eviction that never
 * takes the kept file, clearing. CLI part: `hive cache` lists and
 * `--clear` empties. Node part: one `hive node --cache-max` serving three
 * different synthetic models in turn keeps only what fits, evicting the
 * least recently used stage, and a reused stage counts as used. */
#include <sys/mman.h>
#include <sys/time.h>

#include "hive/cluster.h"
#include "hive/mkmodel.h"
#include "test_cluster_util.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A file of n bytes under <cache>/stages with mtime `age` seconds ago. */
static void fake_file(const char *cache, const char *name, size_t n, int age) {
    char path[512];
    snprintf(path, sizeof path, "%s/stages", cache);
    hive_mkdirs(path, NULL);
    snprintf(path, sizeof path, "%s/stages/%s", cache, name);
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot write %s", path);
    if (!f) return;
    for (size_t i = 0; i < n; i++) fputc((int)(i & 0xff), f);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age;
    tv[1] = tv[0];
    utimes(path, tv);
}

static int exists(const char *cache, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/stages/%s", cache, name);
    return access(path, F_OK) == 0;
}

static void test_unit(const char *dir) {
    char cache[300], err[HIVE_ERR_LEN];
    snprintf(cache, sizeof cache, "%s/unit", dir);
    struct hive_cache_entry *e = NULL;
    int n = -1;
    /* Absent directory: empty cache, no cap yet, nothing to trim. */
    CHECK(hive_cache_list(cache, &e, &n, err) == HIVE_OK && n == 0);
    free(e);
    unsetenv("HIVE_CACHE_MAX");
    CHECK(hive_cache_default_max(cache) == 0);
    CHECK(hive_cache_trim(cache, 0, NULL, NULL, NULL, err) == HIVE_OK);

    fake_file(cache, HEX_A "-0-4.gguf", 4000, 400);  /* oldest */
    fake_file(cache, HEX_A "-4-8.gguf", 3000, 300);
    fake_file(cache, HEX_B "-0-8.gguf", 10000, 200); /* largest */
    fake_file(cache, HEX_B "-0-2.gguf", 1000, 100);  /* newest */
    fake_file(cache, "incoming-abc123", 500, 0);     /* not a stage file */
    fake_file(cache, HEX_A "-4-2.gguf", 100, 0);     /* bad range */
    fake_file(cache, "zz" HEX_A "-0-1.gguf", 100, 0);
    fake_file(cache, HEX_A "-0-1.gguf.part", 100, 0);
    CHECK(hive_cache_list(cache, &e, &n, err) == HIVE_OK);
    CHECKF(n == 4, "%d entries", n);
    if (n == 4) {
        CHECK(!strcmp(e[0].name, HEX_A "-0-4.gguf") && e[0].first == 0 && e[0].last == 4 && e[0].bytes == 4000);
        CHECK(!strcmp(e[1].name, HEX_A "-4-8.gguf") && e[1].first == 4 && e[1].last == 8);
        CHECK(!strcmp(e[2].name, HEX_B "-0-8.gguf") && !strcmp(e[2].model_hex, HEX_B));
        CHECK(!strcmp(e[3].name, HEX_B "-0-2.gguf"));
        for (int i = 1; i < n; i++) CHECK(e[i - 1].last_used_ns <= e[i].last_used_ns);
    }
    free(e);
    /* Default cap: 4 x the largest; the env wins over it. */
    CHECK(hive_cache_default_max(cache) == 40000);
    setenv("HIVE_CACHE_MAX", "12K", 1);
    CHECK(hive_cache_default_max(cache) == 12 * 1024);
    setenv("HIVE_CACHE_MAX", "garbage", 1);
    CHECK(hive_cache_default_max(cache) == 40000);
    unsetenv("HIVE_CACHE_MAX");

    /* Under the cap: nothing goes. */
    int ev = -1;
    uint64_t freed = 1;
    CHECK(hive_cache_trim(cache, 0, NULL, &ev, &freed, err) == HIVE_OK && ev == 0 && freed == 0);
    /* 18000 in all; a cap of 14000 takes the oldest (4000) only. */
    CHECK(hive_cache_trim(cache, 14000, NULL, &ev, &freed, err) == HIVE_OK);
    CHECK(ev == 1 && freed == 4000);
    CHECK(!exists(cache, HEX_A "-0-4.gguf") && exists(cache, HEX_A "-4-8.gguf"));
    /* A cap of 5000 with the oldest remaining kept: it stays, the next go. */
    CHECK(hive_cache_trim(cache, 5000, HEX_A "-4-8.gguf", &ev, &freed, err) == HIVE_OK);
    CHECK(ev == 1 && freed == 10000);
    CHECK(exists(cache, HEX_A "-4-8.gguf") && !exists(cache, HEX_B "-0-8.gguf") && exists(cache, HEX_B "-0-2.gguf"));
    /* A cap below the kept file alone: everything else goes, it stays. */
    char keep[512];
    snprintf(keep, sizeof keep, "%s/stages/%s", cache, HEX_B "-0-2.gguf");
    CHECK(hive_cache_trim(cache, 1, keep, &ev, &freed, err) == HIVE_OK && ev == 1);
    CHECK(exists(cache, HEX_B "-0-2.gguf") && !exists(cache, HEX_A "-4-8.gguf"));
    /* A file this process maps (as a live stage is) stays too. */
    fake_file(cache, HEX_A "-0-9.gguf", 4096, 1000);
    char mpath[512];
    snprintf(mpath, sizeof mpath, "%s/stages/%s", cache, HEX_A "-0-9.gguf");
    int mfd = open(mpath, O_RDONLY);
    void *map = mfd >= 0 ? mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, mfd, 0) : MAP_FAILED;
    CHECK(map != MAP_FAILED);
    CHECK(hive_cache_trim(cache, 1, keep, &ev, &freed, err) == HIVE_OK && ev == 0);
    CHECK(exists(cache, HEX_A "-0-9.gguf"));
    if (map != MAP_FAILED) munmap(map, 4096);
    if (mfd >= 0) close(mfd);
    CHECK(hive_cache_trim(cache, 1, keep, &ev, &freed, err) == HIVE_OK && ev == 1);
    CHECK(!exists(cache, HEX_A "-0-9.gguf"));
    /* Files that are not stage files are never evicted by the trim. */
    CHECK(exists(cache, "incoming-abc123") && exists(cache, HEX_A "-0-1.gguf.part"));

    /* Clear: stage files and stale partial transfers, nothing else. */
    fake_file(cache, HEX_A "-1-3.gguf", 200, 10);
    int removed = 0;
    CHECK(hive_cache_clear(cache, &removed, &freed, err) == HIVE_OK);
    CHECK(removed == 3 && freed == 1000 + 200 + 500);
    CHECK(hive_cache_list(cache, &e, &n, err) == HIVE_OK && n == 0);
    free(e);
    CHECK(exists(cache, "zz" HEX_A "-0-1.gguf")); /* not ours */
}

/* Runs `hive cache ARGS` and returns its stdout (malloc'd) or NULL. */
static char *run_cli(const struct tc_env *env, const char *a1, const char *a2, const char *a3, int *status) {
    char out[300];
    snprintf(out, sizeof out, "%s/cli.out", env->dir);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {(char *)env->bin, "cache", (char *)a1, (char *)a2, (char *)a3, NULL};
    pid_t pid = tc_spawn(argv, fd, -1);
    if (fd >= 0) close(fd);
    *status = tc_wait(pid, 20000);
    return check_read_file(out, NULL);
}

static void test_cli(const struct tc_env *env) {
    char cache[300];
    snprintf(cache, sizeof cache, "%s/cli", env->dir);
    fake_file(cache, HEX_A "-0-4.gguf", 2048, 60);
    fake_file(cache, HEX_B "-3-5.gguf", 1024, 30);
    int st = -1;
    char *out = run_cli(env, "--cache-dir", cache, NULL, &st);
    CHECK(st == 0 && out);
    if (out) {
        CHECKF(strstr(out, "aaaaaaaaaaaa") && strstr(out, "[0, 4)") && strstr(out, "2.00 KiB"), "%s", out);
        CHECKF(strstr(out, "bbbbbbbbbbbb") && strstr(out, "[3, 5)"), "%s", out);
        CHECKF(strstr(out, "total 3.00 KiB in 2 stage files"), "%s", out);
        CHECK(strstr(out, "aaaaaaaaaaaa") < strstr(out, "bbbbbbbbbbbb")); /* least recently used first */
    }
    free(out);
    out = run_cli(env, "--clear", "--cache-dir", cache, &st);
    CHECK(st == 0 && out && strstr(out, "removed 2 files"));
    free(out);
    out = run_cli(env, "--cache-dir", cache, NULL, &st);
    CHECK(st == 0 && out && strstr(out, "total 0 B in 0 stage files"));
    free(out);
    out = run_cli(env, "--bogus", NULL, NULL, &st);
    CHECK(st == 1);
    free(out);
}

/* Stage files in the node's cache, and whether one of model m is there. */
static int n_stage_files(const char *cache, uint64_t *total) {
    struct hive_cache_entry *e = NULL;
    int n = 0;
    *total = 0;
    if (hive_cache_list(cache, &e, &n, NULL)) return -1;
    for (int i = 0; i < n; i++) *total += e[i].bytes;
    free(e);
    return n;
}

static void test_node(const struct tc_env *env) {
    char models[3][300], err[HIVE_ERR_LEN], stats[300];
    snprintf(stats, sizeof stats, "%s/stats.json", env->dir);
    for (int m = 0; m < 3; m++) {
        snprintf(models[m], sizeof models[m], "%s/m%d.gguf", env->dir, m);
        struct hive_mkmodel_opts o = {0};
        o.type = "q8_0";
        o.dim = 64;
        o.n_layers = 2;
        o.n_heads = 4;
        o.n_kv_heads = 2;
        o.ff = 128;
        o.vocab = 320;
        o.ctx = 128;
        o.seed = 100 + (uint64_t)m; /* different weights: a different model hash */
        o.n_threads = 1;
        CHECKF(hive_mkmodel(&o, models[m], err) == HIVE_OK, "mkmodel: %s", err);
    }
    /* The first model's stage file tells the size; the cap holds two. */
    struct tc_node nd;
    CHECK(tc_node_start(env, &nd, "probe", NULL, NULL) == 0);
    int rc = tc_head_run(env, models[0], nd.addr, "Hi", 2, stats, NULL);
    CHECKF(rc == 0, "head exited %d", rc);
    if (rc) tc_head_log_print(env);
    uint64_t one = 0;
    CHECK(n_stage_files(nd.cache, &one) == 1 && one > 0);
    CHECK(tc_node_stop(&nd) == 0);
    char cap[32];
    snprintf(cap, sizeof cap, "%llu", (unsigned long long)(one * 5 / 2));
    const char *extra[] = {"--cache-max", cap, NULL};
    CHECK(tc_node_start_ex(env, &nd, "capped", NULL, NULL, extra) == 0);
    uint64_t total = 0;
    for (int m = 0; m < 2; m++) CHECK(tc_head_run(env, models[m], nd.addr, "Hi", 2, stats, NULL) == 0);
    CHECK(n_stage_files(nd.cache, &total) == 2);
    /* Model 0 used again (from the cache: nothing sent): now model 1 is the oldest. */
    tc_sleep_ms(20);
    CHECK(tc_head_run(env, models[0], nd.addr, "Hi", 2, stats, NULL) == 0);
    struct tc_stats st;
    CHECK(tc_read_stats(stats, &st) == 0 && st.weight_bytes_sent == 0);
    CHECK(tc_head_run(env, models[2], nd.addr, "Hi", 2, stats, NULL) == 0);
    CHECKF(n_stage_files(nd.cache, &total) == 2 && total <= one * 5 / 2, "%llu bytes cached",
           (unsigned long long)total);
    /* Model 0 survived (recently used), model 1 went: running it sends again. */
    CHECK(tc_head_run(env, models[0], nd.addr, "Hi", 2, stats, NULL) == 0);
    CHECK(tc_read_stats(stats, &st) == 0 && st.weight_bytes_sent == 0);
    CHECK(tc_head_run(env, models[1], nd.addr, "Hi", 2, stats, NULL) == 0);
    CHECK(tc_read_stats(stats, &st) == 0 && st.weight_bytes_sent > 0);
    CHECK(n_stage_files(nd.cache, &total) == 2);
    CHECK(tc_node_stop(&nd) == 0);
}

int main(void) {
    struct tc_env env;
    tc_setup(&env);
    test_unit(env.dir);
    test_cli(&env);
    test_node(&env);
    tc_cleanup(&env);
    return check_result("test_cache");
}
