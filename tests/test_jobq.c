/* test_jobq.c - the job queue (src/task/queue.h): leases, give-backs,
 * deadlines that send an item back, the first answer kept and a late
 * duplicate discarded, closing. No model, no network. */
#include "check.h"

#include <pthread.h>
#include <time.h>

#include "hive/core.h"
#include "task/queue.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int done_by_is(jobq *q, int idx, const char *who, const char *text) {
    char *r = NULL, *by = NULL;
    int st = -1;
    jobq_item(q, idx, &st, NULL, &r, &by, NULL, NULL);
    int ok = st == JOBQ_DONE && r && by && !strcmp(by, who) && !strcmp(r, text);
    free(r);
    free(by);
    return ok;
}

static void *closer(void *arg) {
    sleep_ms(50);
    jobq_close(arg);
    return NULL;
}

int main(void) {
    jobq *q = jobq_new();
    CHECK(q != NULL);
    CHECK(jobq_add(q, "a", 0, 8) == 0);
    CHECK(jobq_add(q, "b", 1, 8) == 1);
    CHECK(jobq_add(q, "c", 0, 8) == 2);

    struct hive_job_lease l0, l1, l2, again;
    CHECK(jobq_take(q, "r0", 10000, 0, &l0) == 1 && l0.idx == 0 && !strcmp(l0.text, "a") && l0.attempt == 1);
    CHECK(jobq_take(q, "r1", 10000, 0, &l1) == 1 && l1.idx == 1 && l1.templated == 1);
    CHECK(jobq_take(q, "r2", 30, 0, &l2) == 1 && l2.idx == 2);
    struct hive_job_lease none;
    CHECK(jobq_take(q, "r3", 10000, 0, &none) == 0); /* every item is leased */

    /* A give-back: the item is queued again and the next take gets it. */
    jobq_release(q, &l1, "replica failed");
    /* A release of a lease that is no longer current changes nothing. */
    jobq_release(q, &l1, "twice");
    struct jobq_counts c;
    jobq_counts(q, &c);
    CHECK(c.queued == 1 && c.leased == 2 && c.retries == 1);

    /* The first answer is kept. */
    struct jobq_result r0 = {"answer a", 3, 4, "n0"};
    CHECK(jobq_complete(q, &l0, &r0) == 1);
    CHECK(done_by_is(q, 0, "n0", "answer a"));

    /* Item 2's deadline (30 ms) passes: a take sweeps it back. Item 1 was
     * queued first, so it comes first, then item 2 (attempt 2). */
    sleep_ms(60);
    struct hive_job_lease l1b;
    CHECK(jobq_take(q, "r3", 10000, 0, &l1b) == 1 && l1b.idx == 1 && l1b.attempt == 2);
    CHECK(jobq_take(q, "r4", 10000, 0, &again) == 1 && again.idx == 2 && again.attempt == 2);
    jobq_counts(q, &c);
    CHECK(c.retries == 2);

    /* The late holder of item 2 answers first: kept (nobody had). The new
     * holder's answer is then a late duplicate: discarded. */
    struct jobq_result late = {"answer c (late)", 1, 1, "slow"}, dup = {"answer c", 1, 1, "fast"};
    CHECK(jobq_complete(q, &l2, &late) == 1);
    CHECK(jobq_complete(q, &again, &dup) == 0);
    CHECK(done_by_is(q, 2, "slow", "answer c (late)"));
    jobq_counts(q, &c);
    CHECK(c.discarded == 1 && c.done == 2 && c.leased == 1);

    struct jobq_result r1 = {"answer b", 1, 1, "w1"};
    CHECK(jobq_complete(q, &l1b, &r1) == 1);
    jobq_counts(q, &c);
    CHECK(c.done == 3 && c.queued == 0 && c.leased == 0 && c.n == 3);

    /* Versions: a change wakes a waiter; no change times out. */
    uint64_t v = jobq_wait_change(q, UINT64_MAX, 0);
    double t0 = hive_now_ms();
    CHECK(jobq_wait_change(q, v, 50) == v);
    CHECK(hive_now_ms() - t0 >= 40);
    CHECK(jobq_add(q, "d", 0, 8) == 3);
    CHECK(jobq_wait_change(q, v, 0) > v);
    char *t = jobq_item_text(q, 3);
    CHECK(t && !strcmp(t, "d"));
    free(t);
    CHECK(jobq_item(q, 9, NULL, NULL, NULL, NULL, NULL, NULL) == -1);

    /* A taker waiting on an empty queue wakes when it closes. */
    struct hive_job_lease ld;
    CHECK(jobq_take(q, "r5", 10000, 0, &ld) == 1 && ld.idx == 3);
    pthread_t th;
    pthread_create(&th, NULL, closer, q);
    struct hive_job_lease lz;
    CHECK(jobq_take(q, "r6", 10000, -1, &lz) == -1);
    pthread_join(th, NULL);

    free(l0.text), free(l1.text), free(l2.text), free(again.text), free(l1b.text), free(ld.text);
    jobq_free(q);
    return check_result("test_jobq");
}
