/* ledger.c - the contribution ledger in SQLite (see hive/ledger.h).
 *
 * One connection per hive_ledger. Each record call is one BEGIN IMMEDIATE
 * ... COMMIT, so a crash leaves either the whole call or none of it; WAL
 * lets readers (`hive ledger`) run beside a writer (`hive serve`).
 * Non-goals: querying by time ranges, pruning, sync between machines. */
#include "hive/ledger.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hive/cluster.h"
#include "hive/core.h"
#include "hive/sched.h"

/* A writer waits this long for another process's transaction to end. */
#define LEDGER_BUSY_MS 5000

struct hive_ledger {
    sqlite3 *db;
    sqlite3_stmt *insert;
    /* One record call at a time: its transaction and the shared insert
     * statement belong to the connection, not to the calling thread. */
    pthread_mutex_t lock;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS entries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL,"
    " job TEXT NOT NULL,"
    " subtask TEXT,"
    " node TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('pipeline', 'worker', 'queen', 'pool')),"
    " tokens INTEGER NOT NULL CHECK (tokens >= 0),"
    " layer_passes INTEGER NOT NULL CHECK (layer_passes >= 0),"
    " credit REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS entries_node ON entries (node);"
    "CREATE INDEX IF NOT EXISTS entries_job ON entries (job, subtask);";

struct hive_ledger_shares hive_ledger_default_shares(void) {
    return (struct hive_ledger_shares){0.65, 0.30, 0.05};
}

int hive_ledger_shares_check(const struct hive_ledger_shares *s, char *err) {
    const double v[3] = {s->workers, s->queen, s->pool};
    for (int i = 0; i < 3; i++)
        if (!(v[i] >= 0 && v[i] <= 1))
            return hive_errf(err, HIVE_ERR_INVAL, "ledger: shares must lie in [0, 1] (workers %g, queen %g, pool %g)",
                             s->workers, s->queen, s->pool);
    if (fabs(v[0] + v[1] + v[2] - 1.0) > 1e-6)
        return hive_errf(err, HIVE_ERR_INVAL, "ledger: shares must sum to 1 (workers %g + queen %g + pool %g)",
                         s->workers, s->queen, s->pool);
    return HIVE_OK;
}

int hive_ledger_default_path(char *buf, size_t cap, char *err) {
    const char *env = getenv("HIVE_LEDGER"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (env && *env) n = snprintf(buf, cap, "%s", env);
    else if (xdg && *xdg) n = snprintf(buf, cap, "%s/hive/ledger.db", xdg);
    else if (home && *home) n = snprintf(buf, cap, "%s/.local/share/hive/ledger.db", home);
    else return hive_errf(err, HIVE_ERR_INVAL, "ledger: no path: set HIVE_LEDGER or HOME");
    if (n < 0 || (size_t)n >= cap) return hive_errf(err, HIVE_ERR_INVAL, "ledger: path too long");
    return HIVE_OK;
}

static int db_err(hive_ledger *l, char *err, const char *what) {
    return hive_errf(err, HIVE_ERR_IO, "ledger: %s: %s", what, sqlite3_errmsg(l->db));
}

static int exec(hive_ledger *l, const char *sql, char *err) {
    char *msg = NULL;
    if (sqlite3_exec(l->db, sql, NULL, NULL, &msg) == SQLITE_OK) return HIVE_OK;
    int rc = hive_errf(err, HIVE_ERR_IO, "ledger: %s: %s", sql, msg ? msg : sqlite3_errmsg(l->db));
    sqlite3_free(msg);
    return rc;
}

void hive_ledger_close(hive_ledger *l) {
    if (!l) return;
    sqlite3_finalize(l->insert);
    sqlite3_close(l->db);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int hive_ledger_open(hive_ledger **out, const char *path, char *err) {
    *out = NULL;
    char def[4096];
    if (!path) {
        int rc = hive_ledger_default_path(def, sizeof def, err);
        if (rc) return rc;
        path = def;
    }
    /* The directory: everything before the last '/'. */
    const char *slash = strrchr(path, '/');
    if (slash && slash > path) {
        char dir[4096];
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return hive_errf(err, HIVE_ERR_INVAL, "ledger: path too long");
        memcpy(dir, path, n);
        dir[n] = '\0';
        int rc = hive_mkdirs(dir, err);
        if (rc) return rc;
    }
    hive_ledger *l = calloc(1, sizeof *l);
    if (!l) return hive_errf(err, HIVE_ERR_NOMEM, "ledger: out of memory");
    pthread_mutex_init(&l->lock, NULL);
    int rc;
    if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        rc = hive_errf(err, HIVE_ERR_IO, "ledger: open %s: %s", path,
                       l->db ? sqlite3_errmsg(l->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(l->db, LEDGER_BUSY_MS);
    /* WAL: a commit is one append to the log, readers never block it, and a
     * torn append is ignored at the next open. FULL: the log is synced at
     * each commit, so a returned record call survives a power loss too. */
    rc = exec(l, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err);
    if (rc) goto fail;
    rc = exec(l, SCHEMA, err);
    if (rc) goto fail;
    if (sqlite3_prepare_v2(l->db,
                           "INSERT INTO entries (time_ms, job, subtask, node, role, tokens, layer_passes, credit)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &l->insert, NULL) != SQLITE_OK) {
        rc = db_err(l, err, "prepare");
        goto fail;
    }
    *out = l;
    return HIVE_OK;
fail:
    hive_ledger_close(l);
    return rc;
}

/* ---- writing ---- */

/* Entries carry wall-clock time (ms since the epoch), not monotonic: they
 * are read across restarts. */
static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct entry {
    const char *job, *subtask, *node, *role;
    uint64_t tokens, layer_passes;
    double credit;
};

static int insert(hive_ledger *l, int64_t time_ms, const struct entry *e, char *err) {
    if (e->tokens > INT64_MAX || e->layer_passes > INT64_MAX)
        return hive_errf(err, HIVE_ERR_INVAL, "ledger: count out of range for node %s", e->node);
    sqlite3_stmt *st = l->insert;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, time_ms);
    sqlite3_bind_text(st, 2, e->job, -1, SQLITE_TRANSIENT);
    if (e->subtask) sqlite3_bind_text(st, 3, e->subtask, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, e->node, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, e->role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)e->tokens);
    sqlite3_bind_int64(st, 7, (int64_t)e->layer_passes);
    sqlite3_bind_double(st, 8, e->credit);
    int step = sqlite3_step(st);
    sqlite3_reset(st);
    return step == SQLITE_DONE ? HIVE_OK : db_err(l, err, "insert");
}

/* Writes entries [0, n) in one transaction. */
static int insert_all(hive_ledger *l, const struct entry *e, int n, char *err) {
    /* IMMEDIATE takes the write lock now, so a busy database is waited for
     * here (busy timeout) rather than failing halfway. */
    pthread_mutex_lock(&l->lock);
    int rc = exec(l, "BEGIN IMMEDIATE", err);
    if (!rc) {
        int64_t now = wall_ms();
        for (int i = 0; i < n && !rc; i++) rc = insert(l, now, &e[i], err);
        if (!rc) rc = exec(l, "COMMIT", err);
        if (rc) sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static int check_name(const char *what, const char *s, char *err) {
    if (!s || !*s) return hive_errf(err, HIVE_ERR_INVAL, "ledger: empty %s", what);
    return HIVE_OK;
}

int hive_ledger_record_request(hive_ledger *l, const char *request_id, const struct hive_sched_node *nodes,
                               int n_nodes, char *err) {
    int rc = check_name("request id", request_id, err);
    if (rc) return rc;
    if (n_nodes < 0) return hive_errf(err, HIVE_ERR_INVAL, "ledger: negative node count");
    struct entry *e = hive_malloc_array(n_nodes ? (size_t)n_nodes : 1, sizeof *e);
    if (!e) return hive_errf(err, HIVE_ERR_NOMEM, "ledger: out of memory");
    int k = 0;
    for (int i = 0; i < n_nodes; i++) {
        if (!nodes[i].tokens) continue;
        rc = check_name("node name", nodes[i].name, err);
        if (rc) break;
        e[k++] = (struct entry){request_id, NULL, nodes[i].name, "pipeline", nodes[i].tokens, nodes[i].layer_passes,
                                (double)nodes[i].layer_passes};
    }
    if (!rc && k) rc = insert_all(l, e, k, err);
    free(e);
    return rc;
}

int hive_ledger_record_subtask(hive_ledger *l, const char *job_id, const char *subtask_id,
                               const struct hive_ledger_work *workers, int n_workers, const char *queen,
                               const struct hive_ledger_shares *shares, double credit, char *err) {
    struct hive_ledger_shares def = hive_ledger_default_shares();
    if (!shares) shares = &def;
    int rc = hive_ledger_shares_check(shares, err);
    if (!rc) rc = check_name("job id", job_id, err);
    if (!rc) rc = check_name("subtask id", subtask_id, err);
    if (!rc) rc = check_name("queen", queen, err);
    if (rc) return rc;
    if (n_workers < 1) return hive_errf(err, HIVE_ERR_INVAL, "ledger: a subtask needs at least one worker");
    if (!(isfinite(credit))) return hive_errf(err, HIVE_ERR_INVAL, "ledger: credit is not a number");
    double passes = 0;
    for (int i = 0; i < n_workers; i++) {
        rc = check_name("worker name", workers[i].node, err);
        if (rc) return rc;
        passes += (double)workers[i].layer_passes;
    }
    if (credit <= 0) credit = passes;
    struct entry *e = hive_malloc_array((size_t)n_workers + 2, sizeof *e);
    if (!e) return hive_errf(err, HIVE_ERR_NOMEM, "ledger: out of memory");
    double to_workers = shares->workers * credit;
    for (int i = 0; i < n_workers; i++) {
        double part = passes > 0 ? (double)workers[i].layer_passes / passes : 1.0 / n_workers;
        e[i] = (struct entry){job_id,  subtask_id,          workers[i].node, "worker", workers[i].tokens,
                              workers[i].layer_passes, to_workers * part};
    }
    e[n_workers] = (struct entry){job_id, subtask_id, queen, "queen", 0, 0, shares->queen * credit};
    e[n_workers + 1] = (struct entry){job_id, subtask_id, "pool", "pool", 0, 0, shares->pool * credit};
    rc = insert_all(l, e, n_workers + 2, err);
    free(e);
    return rc;
}

/* ---- reading ---- */

int hive_ledger_totals(hive_ledger *l, struct hive_ledger_total **out, int *n, char *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT node, COUNT(*), SUM(tokens), SUM(layer_passes), SUM(credit)"
                           " FROM entries GROUP BY node ORDER BY node",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(l, err, "prepare totals");
    struct hive_ledger_total *t = NULL;
    int count = 0, cap = 0, rc = HIVE_OK, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            int ncap = cap ? 2 * cap : 16;
            struct hive_ledger_total *nt = realloc(t, (size_t)ncap * sizeof *nt);
            if (!nt) {
                rc = hive_errf(err, HIVE_ERR_NOMEM, "ledger: out of memory");
                break;
            }
            t = nt;
            cap = ncap;
        }
        struct hive_ledger_total *r = &t[count++];
        memset(r, 0, sizeof *r);
        const unsigned char *name = sqlite3_column_text(st, 0);
        snprintf(r->node, sizeof r->node, "%s", name ? (const char *)name : "");
        r->entries = (uint64_t)sqlite3_column_int64(st, 1);
        r->tokens = (uint64_t)sqlite3_column_int64(st, 2);
        r->layer_passes = (uint64_t)sqlite3_column_int64(st, 3);
        r->credit = sqlite3_column_double(st, 4);
    }
    if (!rc && step != SQLITE_DONE) rc = db_err(l, err, "totals");
    sqlite3_finalize(st);
    if (rc) {
        free(t);
        return rc;
    }
    *out = t;
    *n = count;
    return HIVE_OK;
}

int hive_ledger_count(hive_ledger *l, const char *job_id, const char *subtask_id, int64_t *n, char *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, "SELECT COUNT(*) FROM entries WHERE job = ?1 AND (?2 IS NULL OR subtask = ?2)", -1,
                           &st, NULL) != SQLITE_OK)
        return db_err(l, err, "prepare count");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    if (subtask_id) sqlite3_bind_text(st, 2, subtask_id, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 2);
    int rc = HIVE_OK;
    if (sqlite3_step(st) == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
    else rc = db_err(l, err, "count");
    sqlite3_finalize(st);
    return rc;
}

int hive_ledger_check(hive_ledger *l, char *err) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
        return db_err(l, err, "prepare integrity_check");
    int rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *first = sqlite3_column_text(st, 0);
        if (first && !strcmp((const char *)first, "ok")) rc = HIVE_OK;
        else rc = hive_errf(err, HIVE_ERR_FORMAT, "ledger: integrity_check: %s", first ? (const char *)first : "?");
    } else {
        rc = db_err(l, err, "integrity_check");
    }
    sqlite3_finalize(st);
    return rc;
}
