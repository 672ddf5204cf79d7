/* test_core.c - errors, range splitting and the thread pool. */
#include <stdatomic.h>

#include "check.h"
#include "hive/core.h"

struct sum_job {
    const int *v;
    int64_t n;
    long long partial[16];
    atomic_int calls;
};

static void sum_task(void *arg, int ith, int nth) {
    struct sum_job *j = arg;
    int64_t b, e;
    hive_split_range(j->n, ith, nth, &b, &e);
    long long s = 0;
    for (int64_t i = b; i < e; i++) s += j->v[i];
    j->partial[ith] = s;
    atomic_fetch_add(&j->calls, 1);
}

int main(void) {
    char err[HIVE_ERR_LEN];
    CHECK(hive_errf(err, HIVE_ERR_IO, "open %s", "x") == HIVE_ERR_IO);
    CHECK(!strcmp(err, "open x"));
    CHECK(!strcmp(hive_status_name(HIVE_ERR_AUTH), "authentication failed"));

    /* split covers [0,n) exactly once, sizes differ by at most one */
    for (int nth = 1; nth <= 7; nth++) {
        for (int64_t n = 0; n < 30; n++) {
            int64_t prev_end = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                hive_split_range(n, i, nth, &b, &e);
                CHECK(b == prev_end);
                CHECK(e - b == n / nth || e - b == n / nth + 1);
                prev_end = e;
            }
            CHECK(prev_end == n);
        }
    }

    enum { N = 100003 };
    static int v[N];
    long long want = 0;
    for (int i = 0; i < N; i++) {
        v[i] = (i * 7919) % 1000 - 500;
        want += v[i];
    }
    for (int nt = 1; nt <= 4; nt++) {
        hive_pool *pool = hive_pool_create(nt);
        CHECK(pool != NULL);
        CHECK(hive_pool_size(pool) == nt);
        /* many back-to-back jobs exercise the spin/sleep hand-off */
        for (int rep = 0; rep < 300; rep++) {
            struct sum_job j = {.v = v, .n = N};
            atomic_init(&j.calls, 0);
            hive_pool_run(pool, sum_task, &j);
            long long got = 0;
            for (int i = 0; i < nt; i++) got += j.partial[i];
            if (got != want || atomic_load(&j.calls) != nt) {
                CHECKF(0, "nt=%d rep=%d got %lld want %lld calls %d", nt, rep, got, want, atomic_load(&j.calls));
                break;
            }
        }
        hive_pool_free(pool);
    }
    hive_pool_run(NULL, sum_task, &(struct sum_job){.v = v, .n = 10});
    CHECK(hive_cpu_count() >= 1);
    return check_result("test_core");
}
