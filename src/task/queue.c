/* queue.c - a job's subtask queue with leases and deadlines (see queue.h).
 * Non-goals: priorities, persistence (a queen that dies loses its queue;
 * what the ledger committed stays). */
#include "queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hive/core.h"

struct item {
    char *text;
    int templated, max_tokens;
    int state;        /* enum jobq_state */
    int attempts;     /* leases so far */
    uint64_t lease;   /* the current lease (0: none) */
    double deadline_ms;
    double queued_at_ms; /* order of the queue: oldest first */
    char *result, *done_by;
    int n_prompt, n_gen;
};

struct jobq {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on every change */
    struct item *items;
    int n, cap;
    uint64_t next_lease;
    uint64_t version;
    int closed;
    int retries, discarded;
};

static void changed(jobq *q) {
    q->version++;
    pthread_cond_broadcast(&q->cond);
}

jobq *jobq_new(void) {
    jobq *q = hive_calloc(1, sizeof *q);
    if (!q) return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->next_lease = 1;
    return q;
}

void jobq_free(jobq *q) {
    if (!q) return;
    for (int i = 0; i < q->n; i++) {
        free(q->items[i].text);
        free(q->items[i].result);
        free(q->items[i].done_by);
    }
    free(q->items);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int jobq_add(jobq *q, const char *text, int templated, int max_tokens) {
    char *copy = strdup(text);
    if (!copy) return -1;
    pthread_mutex_lock(&q->lock);
    int idx = -1;
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 16;
        struct item *p = realloc(q->items, (size_t)cap * sizeof *p);
        if (p) q->items = p, q->cap = cap;
    }
    if (q->n < q->cap) {
        idx = q->n++;
        struct item *it = &q->items[idx];
        memset(it, 0, sizeof *it);
        it->text = copy;
        it->templated = templated;
        it->max_tokens = max_tokens;
        it->queued_at_ms = hive_now_ms();
        changed(q);
    }
    pthread_mutex_unlock(&q->lock);
    if (idx < 0) free(copy);
    return idx;
}

/* Expired leases go back to the queue (their holders are gone or late). */
static void sweep(jobq *q, double now) {
    for (int i = 0; i < q->n; i++) {
        struct item *it = &q->items[i];
        if (it->state == JOBQ_LEASED && now >= it->deadline_ms) {
            it->state = JOBQ_QUEUED;
            it->lease = 0;
            it->queued_at_ms = now;
            q->retries++;
            changed(q);
        }
    }
}

static int oldest_queued(const jobq *q) {
    int best = -1;
    for (int i = 0; i < q->n; i++)
        if (q->items[i].state == JOBQ_QUEUED && (best < 0 || q->items[i].queued_at_ms < q->items[best].queued_at_ms))
            best = i;
    return best;
}

/* The earliest lease deadline, so that a waiting taker wakes to sweep it. */
static double next_deadline(const jobq *q) {
    double d = 0;
    for (int i = 0; i < q->n; i++)
        if (q->items[i].state == JOBQ_LEASED && (d == 0 || q->items[i].deadline_ms < d)) d = q->items[i].deadline_ms;
    return d;
}

static void wait_until(jobq *q, double until_ms) {
    /* hive_now_ms is CLOCK_MONOTONIC; so is the condition's clock. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double left = until_ms - hive_now_ms();
    if (left < 0) left = 0;
    long long ns = (long long)now.tv_nsec + (long long)(left * 1e6);
    struct timespec ts = {now.tv_sec + (time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int jobq_take(jobq *q, const char *holder, int deadline_ms, int wait_ms, struct hive_job_lease *out) {
    (void)holder;
    memset(out, 0, sizeof *out);
    out->idx = -1;
    double until = wait_ms < 0 ? 0 : hive_now_ms() + wait_ms;
    pthread_mutex_lock(&q->lock);
    int got = 0;
    for (;;) {
        if (q->closed) {
            got = -1;
            break;
        }
        double now = hive_now_ms();
        sweep(q, now);
        int i = oldest_queued(q);
        if (i >= 0) {
            struct item *it = &q->items[i];
            char *text = strdup(it->text);
            if (!text) break; /* no memory: report "none yet" */
            it->state = JOBQ_LEASED;
            it->lease = q->next_lease++;
            it->attempts++;
            it->deadline_ms = now + (deadline_ms > 0 ? deadline_ms : 1);
            *out = (struct hive_job_lease){.idx = i, .lease = it->lease, .text = text, .templated = it->templated,
                                       .max_tokens = it->max_tokens, .attempt = it->attempts};
            changed(q);
            got = 1;
            break;
        }
        if (wait_ms >= 0 && now >= until) break;
        double wake = wait_ms < 0 ? now + 1000 : until;
        double d = next_deadline(q);
        if (d > 0 && d < wake) wake = d;
        wait_until(q, wake);
    }
    pthread_mutex_unlock(&q->lock);
    return got;
}

int jobq_complete(jobq *q, const struct hive_job_lease *l, const struct jobq_result *r) {
    char *text = strdup(r->text ? r->text : "");
    char *by = strdup(r->done_by ? r->done_by : "?");
    pthread_mutex_lock(&q->lock);
    int kept = 0;
    if (l->idx >= 0 && l->idx < q->n && text && by) {
        struct item *it = &q->items[l->idx];
        if (it->state == JOBQ_DONE) {
            q->discarded++;
        } else {
            it->state = JOBQ_DONE;
            it->lease = 0;
            it->result = text;
            it->done_by = by;
            it->n_prompt = r->n_prompt;
            it->n_gen = r->n_gen;
            text = by = NULL;
            kept = 1;
        }
        changed(q);
    }
    pthread_mutex_unlock(&q->lock);
    free(text);
    free(by);
    return kept;
}

void jobq_release(jobq *q, const struct hive_job_lease *l, const char *why) {
    (void)why;
    pthread_mutex_lock(&q->lock);
    if (l->idx >= 0 && l->idx < q->n) {
        struct item *it = &q->items[l->idx];
        if (it->state == JOBQ_LEASED && it->lease == l->lease) {
            it->state = JOBQ_QUEUED;
            it->lease = 0;
            it->queued_at_ms = hive_now_ms();
            q->retries++;
            changed(q);
        }
    }
    pthread_mutex_unlock(&q->lock);
}

void jobq_close(jobq *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    changed(q);
    pthread_mutex_unlock(&q->lock);
}

void jobq_counts(jobq *q, struct jobq_counts *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&q->lock);
    c->n = q->n;
    for (int i = 0; i < q->n; i++) {
        int s = q->items[i].state;
        c->queued += s == JOBQ_QUEUED;
        c->leased += s == JOBQ_LEASED;
        c->done += s == JOBQ_DONE;
    }
    c->retries = q->retries;
    c->discarded = q->discarded;
    pthread_mutex_unlock(&q->lock);
}

int jobq_item(jobq *q, int idx, int *state, int *attempts, char **result, char **done_by, int *n_prompt,
              int *n_gen) {
    pthread_mutex_lock(&q->lock);
    int rc = -1;
    if (idx >= 0 && idx < q->n) {
        const struct item *it = &q->items[idx];
        if (state) *state = it->state;
        if (attempts) *attempts = it->attempts;
        if (result) *result = it->result ? strdup(it->result) : NULL;
        if (done_by) *done_by = it->done_by ? strdup(it->done_by) : NULL;
        if (n_prompt) *n_prompt = it->n_prompt;
        if (n_gen) *n_gen = it->n_gen;
        rc = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

char *jobq_item_text(jobq *q, int idx) {
    pthread_mutex_lock(&q->lock);
    char *t = idx >= 0 && idx < q->n ? strdup(q->items[idx].text) : NULL;
    pthread_mutex_unlock(&q->lock);
    return t;
}

uint64_t jobq_wait_change(jobq *q, uint64_t seen, int timeout_ms) {
    double until = hive_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&q->lock);
    while (q->version == seen && !q->closed && hive_now_ms() < until) wait_until(q, until);
    uint64_t v = q->version;
    pthread_mutex_unlock(&q->lock);
    return v;
}
