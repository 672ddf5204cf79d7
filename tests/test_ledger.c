/* test_ledger.c - the contribution ledger: the default path, credit shares,
 * totals per node, reopening, and a writer SIGKILLed mid-write losing none
 * of the entries it had seen committed (and leaving a sound database). */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hive/core.h"
#include "hive/ledger.h"
#include "hive/sched.h"

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-9 * (1 + fabs((double)(b))))

static const struct hive_ledger_total *find(const struct hive_ledger_total *t, int n, const char *node) {
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].node, node)) return &t[i];
    return NULL;
}

static void test_default_path(void) {
    char buf[512], err[HIVE_ERR_LEN];
    setenv("HIVE_LEDGER", "/x/y.db", 1);
    CHECK(hive_ledger_default_path(buf, sizeof buf, err) == 0 && !strcmp(buf, "/x/y.db"));
    unsetenv("HIVE_LEDGER");
    setenv("XDG_DATA_HOME", "/d", 1);
    CHECK(hive_ledger_default_path(buf, sizeof buf, err) == 0 && !strcmp(buf, "/d/hive/ledger.db"));
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/h", 1);
    CHECK(hive_ledger_default_path(buf, sizeof buf, err) == 0 && !strcmp(buf, "/h/.local/share/hive/ledger.db"));
    CHECK(hive_ledger_default_path(buf, 8, err) == HIVE_ERR_INVAL);
}

static void test_shares(void) {
    char err[HIVE_ERR_LEN];
    struct hive_ledger_shares d = hive_ledger_default_shares();
    CHECK(NEAR(d.workers, 0.65) && NEAR(d.queen, 0.30) && NEAR(d.pool, 0.05));
    CHECK(hive_ledger_shares_check(&d, err) == 0);
    struct hive_ledger_shares bad = {0.7, 0.3, 0.05};
    CHECK(hive_ledger_shares_check(&bad, err) == HIVE_ERR_INVAL);
    bad = (struct hive_ledger_shares){1.2, -0.2, 0};
    CHECK(hive_ledger_shares_check(&bad, err) == HIVE_ERR_INVAL);
    bad = (struct hive_ledger_shares){NAN, 0.5, 0.5};
    CHECK(hive_ledger_shares_check(&bad, err) == HIVE_ERR_INVAL);
}

static void test_record_and_reopen(const char *path) {
    char err[HIVE_ERR_LEN];
    hive_ledger *l = NULL;
    CHECKF(hive_ledger_open(&l, path, err) == 0, "%s", err);
    if (!l) return;
    /* Two workers of one replica (a 2-stage pipeline): 300 and 100 passes. */
    struct hive_ledger_work w[2] = {{"pc", 10, 300}, {"laptop", 10, 100}};
    CHECKF(hive_ledger_record_subtask(l, "job1", "0", w, 2, "queen", NULL, 0, err) == 0, "%s", err);
    /* Custom shares and an explicit credit. */
    struct hive_ledger_shares half = {0.5, 0.5, 0};
    struct hive_ledger_work one = {"laptop", 4, 40};
    CHECKF(hive_ledger_record_subtask(l, "job1", "1", &one, 1, "queen", &half, 1000, err) == 0, "%s", err);
    /* Refused without writing anything. */
    struct hive_ledger_shares bad = {0.5, 0.6, 0};
    CHECK(hive_ledger_record_subtask(l, "job1", "2", &one, 1, "queen", &bad, 0, err) == HIVE_ERR_INVAL);
    CHECK(hive_ledger_record_subtask(l, "job1", "2", &one, 0, "queen", NULL, 0, err) == HIVE_ERR_INVAL);
    CHECK(hive_ledger_record_subtask(l, "", "2", &one, 1, "queen", NULL, 0, err) == HIVE_ERR_INVAL);
    int64_t cnt = -1;
    CHECK(hive_ledger_count(l, "job1", "2", &cnt, err) == 0 && cnt == 0);
    CHECK(hive_ledger_count(l, "job1", "0", &cnt, err) == 0 && cnt == 4);
    /* A pipeline request: what each node ran for it; idle nodes are skipped. */
    struct hive_sched_node nodes[3];
    memset(nodes, 0, sizeof nodes);
    snprintf(nodes[0].name, sizeof nodes[0].name, "pc");
    nodes[0].tokens = 20, nodes[0].layer_passes = 20 * 6;
    snprintf(nodes[1].name, sizeof nodes[1].name, "pi");
    nodes[1].tokens = 20, nodes[1].layer_passes = 20 * 2;
    snprintf(nodes[2].name, sizeof nodes[2].name, "idle");
    CHECKF(hive_ledger_record_request(l, "req-7", nodes, 3, err) == 0, "%s", err);
    CHECK(hive_ledger_count(l, "req-7", NULL, &cnt, err) == 0 && cnt == 2);
    hive_ledger_close(l);

    /* Reopen: everything is there, totals per node. */
    l = NULL;
    CHECKF(hive_ledger_open(&l, path, err) == 0, "%s", err);
    if (!l) return;
    struct hive_ledger_total *t = NULL;
    int n = 0;
    CHECKF(hive_ledger_totals(l, &t, &n, err) == 0, "%s", err);
    CHECK(n == 5); /* laptop, pc, pi, pool, queen */
    const struct hive_ledger_total *pc = find(t, n, "pc"), *lap = find(t, n, "laptop"), *q = find(t, n, "queen"),
                                   *pool = find(t, n, "pool"), *pi = find(t, n, "pi");
    CHECK(pc && lap && q && pool && pi && !find(t, n, "idle"));
    if (pc && lap && q && pool && pi) {
        /* job1/0: credit 400 -> workers 260 (pc 195, laptop 65), queen 120, pool 20.
         * job1/1: credit 1000 -> laptop 500, queen 500, pool 0.
         * req-7: pc 120, pi 40 (their layer-passes). */
        CHECKF(NEAR(pc->credit, 195 + 120), "pc %g", pc->credit);
        CHECKF(NEAR(lap->credit, 65 + 500), "laptop %g", lap->credit);
        CHECKF(NEAR(q->credit, 120 + 500), "queen %g", q->credit);
        CHECKF(NEAR(pool->credit, 20), "pool %g", pool->credit);
        CHECKF(NEAR(pi->credit, 40), "pi %g", pi->credit);
        CHECK(pc->tokens == 30 && pc->layer_passes == 420 && pc->entries == 2);
        CHECK(lap->tokens == 14 && lap->layer_passes == 140 && lap->entries == 2);
        CHECK(q->tokens == 0 && q->entries == 2);
    }
    free(t);
    CHECKF(hive_ledger_check(l, err) == 0, "%s", err);
    hive_ledger_close(l);

    /* `hive ledger --json` prints the same totals. */
    char cmd[600], out[4096];
    snprintf(cmd, sizeof cmd, "%s/hive ledger --db '%s' --json --check", HIVE_BIN_DIR, path);
    FILE *f = popen(cmd, "r");
    size_t len = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[len] = '\0';
    CHECK(f && pclose(f) == 0);
    CHECKF(strstr(out, "\"node\":\t\"pc\"") && strstr(out, "\"credit\":\t315"), "%s", out);
}

/* The child: records subtasks "k" of job "crash" in a loop and writes k to
 * the pipe after each record call returned (= committed). */
static void writer(const char *path, int fd) {
    char err[HIVE_ERR_LEN], id[32];
    hive_ledger *l = NULL;
    if (hive_ledger_open(&l, path, err)) _exit(2);
    struct hive_ledger_work w[3] = {{"a", 5, 50}, {"b", 5, 30}, {"c", 5, 20}};
    for (uint32_t k = 0;; k++) {
        snprintf(id, sizeof id, "%u", k);
        if (hive_ledger_record_subtask(l, "crash", id, w, 3, "queen", NULL, 0, err)) _exit(3);
        if (write(fd, &k, sizeof k) != sizeof k) _exit(4);
    }
}

static void test_sigkill(const char *path) {
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        writer(path, p[1]);
    }
    close(p[1]);
    /* Let it commit a few dozen subtasks, then kill it while it writes on. */
    uint32_t k, last = 0;
    int got = 0;
    while (got < 40 && read(p[0], &k, sizeof k) == sizeof k) last = k, got++;
    kill(pid, SIGKILL);
    while (read(p[0], &k, sizeof k) == sizeof k) last = k, got++; /* reports already in the pipe */
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "writer exited with status %d", status);
    CHECK(got > 0 && last + 1 == (uint32_t)got);
    printf("writer killed after %d reported commits\n", got);

    char err[HIVE_ERR_LEN], id[32];
    hive_ledger *l = NULL;
    CHECKF(hive_ledger_open(&l, path, err) == 0, "%s", err);
    if (!l) return;
    CHECKF(hive_ledger_check(l, err) == 0, "%s", err);
    int missing = 0;
    for (uint32_t i = 0; i <= last; i++) {
        int64_t n = -1;
        snprintf(id, sizeof id, "%u", i);
        if (hive_ledger_count(l, "crash", id, &n, err) || n != 5) missing++; /* 3 workers + queen + pool */
    }
    CHECKF(missing == 0, "%d of %u reported subtasks missing or partial", missing, last + 1);
    /* The one it was writing when killed is whole or absent, never partial. */
    int64_t n = -1;
    snprintf(id, sizeof id, "%u", last + 1);
    CHECK(hive_ledger_count(l, "crash", id, &n, err) == 0 && (n == 0 || n == 5));
    /* And the file takes new entries. */
    struct hive_ledger_work w = {"a", 1, 1};
    CHECKF(hive_ledger_record_subtask(l, "after", "0", &w, 1, "queen", NULL, 0, err) == 0, "%s", err);
    hive_ledger_close(l);
}

/* Two threads recording through one hive_ledger: every subtask whole. */
struct thread_arg {
    hive_ledger *l;
    const char *job;
    int failures;
};

static void *record_many(void *p) {
    struct thread_arg *a = p;
    char id[16], err[HIVE_ERR_LEN];
    struct hive_ledger_work w[2] = {{"x", 1, 10}, {"y", 1, 10}};
    for (int k = 0; k < 40; k++) {
        snprintf(id, sizeof id, "%d", k);
        a->failures += hive_ledger_record_subtask(a->l, a->job, id, w, 2, "queen", NULL, 0, err) != 0;
    }
    return NULL;
}

static void test_threads(const char *path) {
    char err[HIVE_ERR_LEN];
    hive_ledger *l = NULL;
    CHECKF(hive_ledger_open(&l, path, err) == 0, "%s", err);
    if (!l) return;
    struct thread_arg a = {l, "t1", 0}, b = {l, "t2", 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, record_many, &a) == 0 && pthread_create(&tb, NULL, record_many, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.failures == 0 && b.failures == 0);
    int64_t n1 = 0, n2 = 0;
    CHECK(hive_ledger_count(l, "t1", NULL, &n1, err) == 0 && hive_ledger_count(l, "t2", NULL, &n2, err) == 0);
    CHECKF(n1 == 40 * 4 && n2 == 40 * 4, "%lld and %lld entries", (long long)n1, (long long)n2);
    hive_ledger_close(l);
}

int main(void) {
    char dir[] = "/tmp/hive-ledger-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], path2[256];
    snprintf(path, sizeof path, "%s/sub/ledger.db", dir); /* the directory is created */
    snprintf(path2, sizeof path2, "%s/crash.db", dir);
    test_default_path();
    test_shares();
    test_record_and_reopen(path);
    test_sigkill(path2);
    test_threads(path);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
    return check_result("test_ledger");
}
