/* queue.h - a job's subtask queue: leases with deadlines, reassignment,
 * results keyed by subtask index (internal to src/task).
 *
 * A taker (a replica runner, a remote worker's connection) leases the oldest
 * queued item until a deadline. The lease ends one of three ways:
 *   - jobq_complete: the first result for an item is kept; any later one
 *     (a late duplicate from an older lease) is discarded;
 *   - jobq_release: the taker gave up (its replica failed, its worker
 *     died): the item goes back to the queue;
 *   - the deadline passes: the next jobq_take sweeps it back to the queue.
 * A result from an expired lease is still accepted while the item is not
 * done (it is a correct answer, only late); its newer lease then learns, on
 * completing, that it was discarded.
 *
 * Thread-safe: one mutex; takers sleep on a condition variable. */
#ifndef HIVE_TASK_QUEUE_H
#define HIVE_TASK_QUEUE_H

#include <stdint.h>

#include "hive/job.h"

enum jobq_state { JOBQ_QUEUED = 0, JOBQ_LEASED, JOBQ_DONE };

/* A lease is struct hive_job_lease (hive/job.h): takers outside src/task
 * (remote workers' connections) hold them too. */

/* A finished item's result, as the taker reports it. */
struct jobq_result {
    const char *text;
    int n_prompt, n_gen;
    const char *done_by; /* "replica 0 (n1)", a worker's name */
};

typedef struct jobq jobq;

jobq *jobq_new(void);
void jobq_free(jobq *q);
/* Appends an item (text copied); returns its index, or -1 (no memory). */
int jobq_add(jobq *q, const char *text, int templated, int max_tokens);
/* Leases the oldest queued item to holder until now + deadline_ms. Waits up
 * to wait_ms for one (< 0: forever). 1: *out filled; 0: none yet; -1: the
 * queue is closed. */
int jobq_take(jobq *q, const char *holder, int deadline_ms, int wait_ms, struct hive_job_lease *out);
/* 1: the result is kept (the item is done now); 0: discarded (done already). */
int jobq_complete(jobq *q, const struct hive_job_lease *l, const struct jobq_result *r);
/* Gives the item back (when this lease is still the current one). */
void jobq_release(jobq *q, const struct hive_job_lease *l, const char *why);
/* Wakes every taker; later takes return -1. */
void jobq_close(jobq *q);

/* ---- reading (any thread) ---- */
struct jobq_counts {
    int n, queued, leased, done;
    int retries;   /* leases given back or expired */
    int discarded; /* late duplicates */
};
void jobq_counts(jobq *q, struct jobq_counts *c);
/* Item idx: state, attempts, and copies (malloc'd, the caller frees; NULL
 * before it is done) of the result and of who computed it. -1 when idx is
 * out of range. */
int jobq_item(jobq *q, int idx, int *state, int *attempts, char **result, char **done_by, int *n_prompt,
              int *n_gen);
/* A copy of item idx's prompt (malloc'd), or NULL. */
char *jobq_item_text(jobq *q, int idx);
/* Waits until the queue changed after version `seen` (each add, lease,
 * completion or give-back bumps it) or timeout_ms passed; returns the
 * version now. */
uint64_t jobq_wait_change(jobq *q, uint64_t seen, int timeout_ms);

#endif
