/* ledger.h - the contribution ledger: who computed what, kept in SQLite.
 *
 * Every finished pipeline request credits each node with the token rows and
 * layer-passes (token rows x layers) it ran; every finished subtask of a job
 * splits that subtask's credit between its workers, the queen and the pool
 * by configurable shares (default 65% / 30% / 5%).
 *
 * Where it lives: $HIVE_LEDGER, else $XDG_DATA_HOME/hive/ledger.db, else
 * ~/.local/share/hive/ledger.db.
 *
 * Durability: WAL journal, one transaction per record call, synchronous =
 * FULL, so a record call that returned 0 is on disk even when the process is
 * killed (or the machine loses power) right after; a call cut short leaves
 * nothing of itself. Several processes may share one file (busy timeout),
 * and several threads one hive_ledger (record calls take turns).
 *
 * Schema (one table; credit is in layer-passes, the unit of compute):
 *   entries(id INTEGER PRIMARY KEY, time_ms, job, subtask, node, role,
 *           tokens, layer_passes, credit)
 *   job: the job id or the request id; subtask: NULL for pipeline requests;
 *   role: 'pipeline', 'worker', 'queen' or 'pool' (node "pool"). */
#ifndef HIVE_LEDGER_H
#define HIVE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct hive_sched_node;

typedef struct hive_ledger hive_ledger;

/* The shares of a job's credit; each in [0, 1], summing to 1. */
struct hive_ledger_shares {
    double workers, queen, pool;
};
struct hive_ledger_shares hive_ledger_default_shares(void); /* 0.65, 0.30, 0.05 */
/* 0, or HIVE_ERR_INVAL with a message when a share is out of range or the
 * three do not sum to 1 (within 1e-6). */
int hive_ledger_shares_check(const struct hive_ledger_shares *s, char *err);

/* What one node did for one request or subtask. */
struct hive_ledger_work {
    const char *node;
    uint64_t tokens;       /* token rows it ran */
    uint64_t layer_passes; /* token rows x layers */
};

/* The default path (see the top of this file). HIVE_ERR_INVAL when neither
 * HIVE_LEDGER, XDG_DATA_HOME nor HOME is set, or the path does not fit. */
int hive_ledger_default_path(char *buf, size_t cap, char *err);

/* Opens (creating the file, its directory and the table when absent). path
 * NULL: the default path. Close with hive_ledger_close (NULL is fine). */
int hive_ledger_open(hive_ledger **out, const char *path, char *err);
void hive_ledger_close(hive_ledger *l);

/* A finished pipeline request: one 'pipeline' entry per node that ran token
 * rows for it, credit = its layer-passes. The nodes carry what they did for
 * this request (the caller subtracts the counters it read before the
 * request from hive_sched_get_nodes). Nodes with no tokens are skipped. */
int hive_ledger_record_request(hive_ledger *l, const char *request_id, const struct hive_sched_node *nodes,
                               int n_nodes, char *err);

/* A finished subtask. Its credit C (credit <= 0: the workers' layer-passes
 * summed) is split: shares->workers x C among the workers in proportion to
 * their layer-passes (equally when all are 0), shares->queen x C to the
 * queen, shares->pool x C to "pool". shares NULL: the defaults. One
 * transaction: all of it is recorded or none. */
int hive_ledger_record_subtask(hive_ledger *l, const char *job_id, const char *subtask_id,
                               const struct hive_ledger_work *workers, int n_workers, const char *queen,
                               const struct hive_ledger_shares *shares, double credit, char *err);

/* Totals per node, by node name. */
struct hive_ledger_total {
    char node[64];
    uint64_t entries, tokens, layer_passes;
    double credit;
};
/* *out is malloc'd (the caller frees it), *n the count. */
int hive_ledger_totals(hive_ledger *l, struct hive_ledger_total **out, int *n, char *err);
/* Entries whose job and subtask are these (subtask NULL: any); for checks. */
int hive_ledger_count(hive_ledger *l, const char *job_id, const char *subtask_id, int64_t *n, char *err);
/* PRAGMA integrity_check: 0 when it says ok, HIVE_ERR_FORMAT with its first
 * line otherwise. */
int hive_ledger_check(hive_ledger *l, char *err);

#endif
