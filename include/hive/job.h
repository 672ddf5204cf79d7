/* job.h - jobs: a task split into subtasks that run in parallel on the
 * fleet's replicas and on remote workers, then merged (queen / worker mode).
 *
 * A job is either
 *   - a task: the queen asks the model to decompose it (hive/decompose.h;
 *     a reply that is no list gives one subtask, the task itself), or
 *   - subtasks given by the caller (`hive job --map FILE`: one a line),
 * plus a reduce prompt: once every subtask has its answer, one more model
 * call merges them (unless no_merge).
 *
 * Every model call (decomposition, subtask, merge) is an item of the job's
 * queue. Takers lease items with a deadline:
 *   - one runner thread per replica of the fleet (per_replica of them) runs
 *     items on that replica's scheduler; a replica that fails for good
 *     gives its item back and its runner stops;
 *   - remote workers (hive/worker.h) take items through hive_job_take /
 *     hive_job_complete / hive_job_release.
 * An item whose taker dies or misses its deadline goes back to the queue and
 * another takes it. Results are keyed by item: the first answer is kept and
 * a late duplicate is discarded.
 *
 * Every kept answer is recorded in the ledger (when one is given): for a
 * replica, each of its nodes with the layer-passes it ran for that item
 * (the item's token rows x the layers the node holds); for a worker, the worker's name and the
 * counts it reported. Credit is split by the ledger's shares.
 *
 * Threads: every function is safe from any thread (status for HTTP, takers
 * on their own threads). */
#ifndef HIVE_JOB_H
#define HIVE_JOB_H

#include <stdint.h>
#include <stdio.h>

#include "hive/core.h"
#include "hive/ledger.h"
#include "hive/sample.h"

typedef struct hive_fleet hive_fleet;
typedef struct hive_tokenizer hive_tokenizer;
typedef struct hive_job hive_job;

/* Items at once per replica that `hive job` and `hive serve` use: their
 * tokens share each pass over the weights, which bounds decode. */
#define HIVE_JOB_PER_REPLICA 4

struct hive_job_opts {
    hive_fleet *fleet;          /* replicas to run on; NULL: remote workers only */
    const hive_tokenizer *tok;  /* the model's tokenizer (required with a fleet) */
    int chat_template;          /* enum hive_chat_template of the decomposition and merge prompts */
    int max_tokens;             /* per subtask and for the merge; 0: 128 */
    int decompose_tokens;       /* for the decomposition reply; 0: 512 */
    int max_subtasks;           /* decomposition asks for at most this many; 0: 16 */
    struct hive_sampler_params sampling;
    int deadline_ms;            /* per lease of an item; 0: 120000 */
    int max_attempts;           /* leases of one item before the job fails; 0: 8 */
    int per_replica;            /* items at once on each replica; 0: 1 (the replica's
                                   scheduler needs as many sequences: max_seqs) */
    int workers;                /* 1: remote workers may take items (the job does not fail
                                   when every replica has failed; it waits for workers) */
    hive_ledger *ledger;        /* NULL: nothing recorded */
    const char *queen;          /* the queen's name in the ledger; NULL: "queen" */
    const struct hive_ledger_shares *shares; /* NULL: the defaults */
    FILE *log;                  /* one line per retry and per failure; NULL: silent */
};

struct hive_job_spec {
    const char *task;                /* decomposed by the model when n_subtasks == 0 */
    const char *const *subtasks;     /* given subtasks (copied) */
    int n_subtasks;
    const char *reduce;              /* the merge instruction; NULL: a default one */
    int no_merge;                    /* 1: no merge call */
};

enum hive_job_state {
    HIVE_JOB_DECOMPOSING = 0,
    HIVE_JOB_MAPPING,
    HIVE_JOB_MERGING,
    HIVE_JOB_DONE,
    HIVE_JOB_FAILED,
    HIVE_JOB_CANCELLED,
};
const char *hive_job_state_name(int state);

/* Starts the job: queues its first items and starts the replica runners.
 * Returns 0, HIVE_ERR_INVAL (no task and no subtasks, too many subtasks, a
 * fleet without a tokenizer), HIVE_ERR_NOMEM. */
int hive_job_start(hive_job **out, const struct hive_job_opts *o, const struct hive_job_spec *s, char *err);
/* Waits until the job ends or timeout_ms passes (< 0: forever); 1 when it
 * has ended (DONE, FAILED or CANCELLED). */
int hive_job_wait(hive_job *j, int timeout_ms);
/* Ends a running job (CANCELLED); takers stop at their next step. */
void hive_job_cancel(hive_job *j);
/* Cancels it if running, joins the runners, frees it. No taker may use the
 * job after this (remote workers: hive_workers_set_job(w, NULL) first). */
void hive_job_free(hive_job *j);
const char *hive_job_id(const hive_job *j);

struct hive_job_status {
    int state;                /* enum hive_job_state */
    int n_subtasks;           /* 0 while decomposing */
    int done, running, queued;/* subtasks (the merge not counted) */
    int retries;              /* leases given back or expired */
    int discarded;            /* late duplicate answers */
    int merged;               /* 1 once the merge answer is in */
    double wall_ms;           /* since start, until the end */
    uint64_t version;         /* bumps on every change (for hive_job_wait_change) */
    char error[HIVE_ERR_LEN];
};
void hive_job_get_status(hive_job *j, struct hive_job_status *st);
/* Waits until the status changes after version seen (or timeout_ms);
 * returns the version now. For progress events. */
uint64_t hive_job_wait_change(hive_job *j, uint64_t seen, int timeout_ms);

/* One answer: subtask i in [0, n_subtasks), or HIVE_JOB_MERGE for the
 * merge. Strings are malloc'd copies (NULL until done); free with
 * hive_job_answer_free. Returns 0, or -1 when there is no such item. */
#define HIVE_JOB_MERGE (-1)
struct hive_job_answer {
    int done, attempts;
    char *prompt, *text;
    char *done_by;            /* node names joined by '+', or the worker's name */
    int n_prompt, n_gen;
};
int hive_job_get_answer(hive_job *j, int i, struct hive_job_answer *a);
void hive_job_answer_free(struct hive_job_answer *a);

/* ---- taking items from outside (remote workers) ---- */
struct hive_job_lease {
    int idx;         /* the item (opaque to takers) */
    uint64_t lease;  /* identifies this lease */
    char *text;      /* the prompt */
    int templated;   /* the prompt holds chat-template markup: tokenize its special tokens */
    int max_tokens;
    int attempt;     /* 1 for the item's first lease */
    struct hive_sampler_params sampling; /* the job's */
};
/* Leases an item for holder (a name for logs) until the job's deadline.
 * Waits up to wait_ms (< 0: forever). 1: *l filled (free its text with
 * hive_job_lease_free); 0: none now; -1: the job has ended. */
int hive_job_take(hive_job *j, const char *holder, int wait_ms, struct hive_job_lease *l);
/* The answer of a lease; work (n_work entries) is what to credit in the
 * ledger (layer_passes 0: credit by tokens). 1: kept; 0: discarded (a late
 * duplicate). */
int hive_job_complete(hive_job *j, const struct hive_job_lease *l, const char *text, int n_prompt, int n_gen,
                      const struct hive_ledger_work *work, int n_work, const char *done_by);
/* Gives a lease back: its item goes to the queue again. */
void hive_job_release(hive_job *j, const struct hive_job_lease *l, const char *why);
void hive_job_lease_free(struct hive_job_lease *l);

#endif
