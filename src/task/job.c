/* job.c - a job's life: decomposition, the map over replicas and workers,
 * the merge, the ledger (see hive/job.h).
 *
 * The queue (queue.h) holds every model call of the job as an item; this
 * file decides which items exist (advance: decomposition -> subtasks ->
 * merge -> done) and runs the replica runners. Non-goals: jobs that outlive
 * the queen's process, priorities between jobs. */
#include "hive/job.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hive/decompose.h"
#include "hive/fleet.h"
#include "hive/sched.h"
#include "hive/tokenizer.h"
#include "gen.h"
#include "queue.h"

#define JOB_MAX_RUNNERS 256

struct runner {
    hive_job *j;
    int replica;
    pthread_t th;
};

struct hive_job {
    struct hive_job_opts o;
    struct hive_ledger_shares shares;
    char queen[64];
    char id[48];
    jobq *q;
    pthread_mutex_t lock; /* everything below */
    int state;
    char error[HIVE_ERR_LEN];
    char *task, *reduce;
    int no_merge;
    int decompose_idx;    /* -1: subtasks were given */
    int map_base, n_maps; /* items [map_base, map_base + n_maps) are the subtasks */
    int merge_idx;        /* -1 until queued */
    double t0_ms, end_ms;
    int replicas_left;    /* runners' replicas still in rotation */
    struct runner runners[JOB_MAX_RUNNERS];
    int n_runners;
};

const char *hive_job_state_name(int state) {
    switch (state) {
    case HIVE_JOB_DECOMPOSING: return "decomposing";
    case HIVE_JOB_MAPPING: return "mapping";
    case HIVE_JOB_MERGING: return "merging";
    case HIVE_JOB_DONE: return "done";
    case HIVE_JOB_FAILED: return "failed";
    case HIVE_JOB_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

static void logf_job(hive_job *j, const char *fmt, const char *a, const char *b) {
    if (!j->o.log) return;
    fprintf(j->o.log, "hive job %s: ", j->id);
    fprintf(j->o.log, fmt, a, b);
    fputc('\n', j->o.log);
    fflush(j->o.log);
}

static int ended(int state) { return state >= HIVE_JOB_DONE; }

/* Ends the job (caller holds the lock); the first end wins. */
static void finish_locked(hive_job *j, int state, const char *why) {
    if (ended(j->state)) return;
    j->state = state;
    j->end_ms = hive_now_ms();
    if (why) snprintf(j->error, sizeof j->error, "%s", why);
    jobq_close(j->q);
}

static void fail(hive_job *j, const char *why) {
    pthread_mutex_lock(&j->lock);
    finish_locked(j, HIVE_JOB_FAILED, why);
    pthread_mutex_unlock(&j->lock);
    logf_job(j, "failed: %s%s", why, "");
}

/* The ledger's name of an item: "decompose", "merge" or the subtask's index. */
static void item_name(hive_job *j, int idx, char *buf, size_t cap) {
    pthread_mutex_lock(&j->lock);
    if (idx == j->decompose_idx) snprintf(buf, cap, "decompose");
    else if (idx == j->merge_idx) snprintf(buf, cap, "merge");
    else snprintf(buf, cap, "%d", idx - j->map_base);
    pthread_mutex_unlock(&j->lock);
}

/* ---- phases ---- */

/* Bytes of s kept when it is cut to at most cap (0: all), on a UTF-8
 * character boundary. */
static size_t utf8_cut(const char *s, size_t cap) {
    size_t n = strlen(s);
    if (cap == 0 || n <= cap) return n;
    while (cap > 0 && ((unsigned char)s[cap] & 0xC0) == 0x80) cap--;
    return cap;
}

/* The merge prompt: the instruction, then each answer numbered, each cut
 * to per_answer bytes (0: whole), in the chat template when there is one. */
static char *merge_prompt_cut(hive_job *j, size_t per_answer, int *templated) {
    const char *inst = j->reduce ? j->reduce : "Combine the following answers into one complete answer.";
    size_t cap = strlen(inst) + 64, len = 0;
    for (int i = 0; i < j->n_maps; i++) {
        char *t = NULL;
        jobq_item(j->q, j->map_base + i, NULL, NULL, &t, NULL, NULL, NULL);
        cap += (t ? strlen(t) : 0) + 40;
        free(t);
    }
    char *body = malloc(cap);
    if (!body) return NULL;
    len = (size_t)snprintf(body, cap, "%s\n", inst);
    for (int i = 0; i < j->n_maps && len < cap; i++) {
        char *t = NULL;
        jobq_item(j->q, j->map_base + i, NULL, NULL, &t, NULL, NULL, NULL);
        const char *a = t ? t : "";
        size_t keep = utf8_cut(a, per_answer);
        len += (size_t)snprintf(body + len, cap - len, "\nAnswer %d: %.*s%s\n", i + 1, (int)keep, a,
                                keep < strlen(a) ? " [...]" : "");
        free(t);
    }
    *templated = 0;
    if (j->o.chat_template == HIVE_CHAT_NONE) return body;
    struct hive_chat_msg m = {"user", body};
    int n = hive_chat_format(j->o.chat_template, &m, 1, 1, NULL, 0);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (out) hive_chat_format(j->o.chat_template, &m, 1, 1, out, (size_t)n + 1);
    free(body);
    *templated = out != NULL;
    return out;
}

/* The merge prompt, made to fit the replicas' context: a job of many long
 * answers (200 file summaries) would not, so each answer is cut to an
 * equal share until the prompt leaves room for the merged answer. Without a
 * fleet (workers only) the context is unknown and nothing is cut. */
static char *merge_prompt(hive_job *j, int *templated) {
    int budget = 0;
    if (j->o.fleet && j->o.tok) {
        int n_ctx = hive_sched_n_ctx(hive_fleet_replica(j->o.fleet, 0));
        budget = n_ctx - j->o.max_tokens;
        if (budget < n_ctx / 2) budget = n_ctx / 2;
    }
    size_t per = 0;
    for (;;) {
        char *p = merge_prompt_cut(j, per, templated);
        if (!p || budget <= 0) return p;
        int n = hive_tokenize(j->o.tok, p, strlen(p), 1, *templated, NULL, 0);
        if (n <= budget || (per > 0 && per <= 16)) {
            if (per > 0 && j->o.log)
                fprintf(j->o.log, "hive job %s: the merge prompt is cut to fit the context (each answer at most %zu bytes)\n",
                        j->id, per);
            return p;
        }
        if (per == 0) /* start from the longest answer */
            for (int i = 0; i < j->n_maps; i++) {
                char *t = NULL;
                jobq_item(j->q, j->map_base + i, NULL, NULL, &t, NULL, NULL, NULL);
                if (t && strlen(t) > per) per = strlen(t);
                free(t);
            }
        size_t next = (size_t)((double)per * budget / n * 0.9);
        per = next < per ? next : per * 9 / 10;
        if (per < 16) per = 16;
        free(p);
    }
}

/* Queues the subtasks (caller holds the lock). */
static int add_maps_locked(hive_job *j, const char *const *texts, int n) {
    j->map_base = -1;
    for (int i = 0; i < n; i++) {
        int idx = jobq_add(j->q, texts[i], 0, j->o.max_tokens);
        if (idx < 0) return -1;
        if (i == 0) j->map_base = idx;
    }
    j->n_maps = n;
    j->state = HIVE_JOB_MAPPING;
    return 0;
}

/* Moves the job on after item idx got its answer. */
static void advance(hive_job *j, int idx) {
    pthread_mutex_lock(&j->lock);
    if (ended(j->state)) goto out;
    if (idx == j->decompose_idx && j->state == HIVE_JOB_DECOMPOSING) {
        char *reply = NULL, err[HIVE_ERR_LEN];
        jobq_item(j->q, idx, NULL, NULL, &reply, NULL, NULL, NULL);
        struct hive_subtasks st;
        int rc = hive_decompose_parse(reply ? reply : "", reply ? strlen(reply) : 0, j->task, j->o.max_subtasks,
                                      &st, err);
        free(reply);
        if (rc || add_maps_locked(j, (const char *const *)st.text, st.n)) {
            finish_locked(j, HIVE_JOB_FAILED, rc ? err : "out of memory");
        } else if (st.fallback && j->o.log) {
            fprintf(j->o.log, "hive job %s: the decomposition gave no list; one subtask, the task itself\n", j->id);
        }
        hive_subtasks_free(&st);
        goto out;
    }
    if (j->state == HIVE_JOB_MAPPING) {
        for (int i = 0; i < j->n_maps; i++) {
            int s = 0;
            jobq_item(j->q, j->map_base + i, &s, NULL, NULL, NULL, NULL, NULL);
            if (s != JOBQ_DONE) goto out;
        }
        if (j->no_merge) {
            finish_locked(j, HIVE_JOB_DONE, NULL);
            goto out;
        }
        int templated = 0;
        char *p = merge_prompt(j, &templated);
        j->merge_idx = p ? jobq_add(j->q, p, templated, j->o.max_tokens) : -1;
        free(p);
        if (j->merge_idx < 0) finish_locked(j, HIVE_JOB_FAILED, "out of memory");
        else j->state = HIVE_JOB_MERGING;
        goto out;
    }
    if (j->state == HIVE_JOB_MERGING && idx == j->merge_idx) finish_locked(j, HIVE_JOB_DONE, NULL);
out:
    pthread_mutex_unlock(&j->lock);
}

/* ---- leases ---- */

int hive_job_take(hive_job *j, const char *holder, int wait_ms, struct hive_job_lease *l) {
    int got = jobq_take(j->q, holder, j->o.deadline_ms, wait_ms, l);
    if (got == 1) l->sampling = j->o.sampling;
    if (got == 1 && l->attempt > j->o.max_attempts) {
        char why[HIVE_ERR_LEN], name[32];
        item_name(j, l->idx, name, sizeof name);
        snprintf(why, sizeof why, "item %s failed %d times", name, l->attempt - 1);
        hive_job_lease_free(l);
        fail(j, why);
        return -1;
    }
    if (got == 1 && l->attempt > 1) {
        char name[32];
        item_name(j, l->idx, name, sizeof name);
        logf_job(j, "item %s taken again by %s", name, holder);
    }
    return got;
}

void hive_job_lease_free(struct hive_job_lease *l) {
    free(l->text);
    l->text = NULL;
}

void hive_job_release(hive_job *j, const struct hive_job_lease *l, const char *why) {
    char name[32];
    item_name(j, l->idx, name, sizeof name);
    logf_job(j, "item %s back to the queue: %s", name, why ? why : "given back");
    jobq_release(j->q, l, why);
}

int hive_job_complete(hive_job *j, const struct hive_job_lease *l, const char *text, int n_prompt, int n_gen,
                      const struct hive_ledger_work *work, int n_work, const char *done_by) {
    struct jobq_result r = {text, n_prompt, n_gen, done_by};
    int kept = jobq_complete(j->q, l, &r);
    char name[32];
    item_name(j, l->idx, name, sizeof name);
    if (!kept) {
        logf_job(j, "late duplicate of item %s from %s discarded", name, done_by ? done_by : "?");
        return 0;
    }
    if (j->o.ledger && n_work > 0) {
        /* Credit in layer-passes when known; a backend worker reports tokens only. */
        double credit = 0;
        for (int i = 0; i < n_work; i++) credit += (double)work[i].layer_passes;
        if (credit <= 0)
            for (int i = 0; i < n_work; i++) credit += (double)work[i].tokens;
        char err[HIVE_ERR_LEN];
        if (hive_ledger_record_subtask(j->o.ledger, j->id, name, work, n_work, j->queen, &j->shares, credit, err))
            logf_job(j, "ledger: %s%s", err, "");
    }
    advance(j, l->idx);
    return 1;
}

/* ---- replica runners ---- */

static int job_ended(hive_job *j) {
    pthread_mutex_lock(&j->lock);
    int e = ended(j->state);
    pthread_mutex_unlock(&j->lock);
    return e;
}

static const char *stop_when_ended(void *arg) { return job_ended(arg) ? "the job ended" : NULL; }

/* Runs one leased item on replica r: answered (kept or discarded), or
 * given back (the replica failed, the deadline passed, the job ended). */
static void run_item(hive_job *j, int r, struct hive_job_lease *l) {
    char err[HIVE_ERR_LEN];
    struct gen_request rq = {.prompt = l->text, .templated = l->templated, .max_tokens = l->max_tokens,
                             .sp = l->sampling, .deadline_ms = hive_now_ms() + j->o.deadline_ms,
                             .stop = stop_when_ended, .stop_arg = j};
    struct gen_result res;
    int rc = gen_run(hive_fleet_replica(j->o.fleet, r), j->o.tok, &rq, &res, err);
    if (rc == HIVE_ERR_INVAL) { /* the prompt itself is bad: no replica will do better */
        fail(j, err);
        return;
    }
    if (rc) {
        char msg[HIVE_ERR_LEN + 32];
        snprintf(msg, sizeof msg, "replica %d: %s", r, err);
        hive_job_release(j, l, msg);
        return;
    }
    char done_by[256] = "";
    for (int k = 0; k < res.n_work; k++) {
        size_t len = strlen(done_by);
        snprintf(done_by + len, sizeof done_by - len, "%s%s", len ? "+" : "", res.work[k].node);
    }
    if (!done_by[0]) snprintf(done_by, sizeof done_by, "replica %d", r);
    hive_job_complete(j, l, res.text, res.n_prompt, res.n_gen, res.work, res.n_work, done_by);
    gen_result_free(&res);
}

static void *runner_main(void *arg) {
    struct runner *rn = arg;
    hive_job *j = rn->j;
    char holder[32];
    snprintf(holder, sizeof holder, "replica %d", rn->replica);
    for (;;) {
        if (!hive_fleet_replica_ok(j->o.fleet, rn->replica)) break;
        struct hive_job_lease l;
        int got = hive_job_take(j, holder, 500, &l);
        if (got < 0) return NULL;
        if (got == 0) continue;
        run_item(j, rn->replica, &l);
        hive_job_lease_free(&l);
    }
    /* This replica is out of rotation: the others (or workers) carry on. */
    logf_job(j, "%s is out of rotation; its runner stops%s", holder, "");
    pthread_mutex_lock(&j->lock);
    int left = --j->replicas_left;
    pthread_mutex_unlock(&j->lock);
    if (left <= 0 && !j->o.workers) fail(j, "every replica failed");
    return NULL;
}

/* ---- the job ---- */

static void make_id(char *buf, size_t cap) {
    static unsigned counter;
    unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    snprintf(buf, cap, "job-%llx-%u", (unsigned long long)hive_now_us(), c);
}

int hive_job_start(hive_job **out, const struct hive_job_opts *o, const struct hive_job_spec *s, char *err) {
    *out = NULL;
    if (s->n_subtasks <= 0 && (!s->task || !s->task[0]))
        return hive_errf(err, HIVE_ERR_INVAL, "a job needs a task or subtasks");
    if (s->n_subtasks > HIVE_DECOMPOSE_MAX_SUBTASKS * 64)
        return hive_errf(err, HIVE_ERR_INVAL, "%d subtasks (at most %d)", s->n_subtasks,
                         HIVE_DECOMPOSE_MAX_SUBTASKS * 64);
    if (o->fleet && !o->tok) return hive_errf(err, HIVE_ERR_INVAL, "a job on a fleet needs the model's tokenizer");
    if (!o->fleet && !o->workers) return hive_errf(err, HIVE_ERR_INVAL, "a job needs a fleet or workers");
    hive_job *j = hive_calloc(1, sizeof *j);
    if (!j) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    j->o = *o;
    if (j->o.max_tokens <= 0) j->o.max_tokens = 128;
    if (j->o.decompose_tokens <= 0) j->o.decompose_tokens = 512;
    if (j->o.max_subtasks <= 0) j->o.max_subtasks = 16;
    if (j->o.deadline_ms <= 0) j->o.deadline_ms = 120000;
    if (j->o.max_attempts <= 0) j->o.max_attempts = 8;
    if (j->o.per_replica <= 0) j->o.per_replica = 1;
    j->shares = o->shares ? *o->shares : hive_ledger_default_shares();
    snprintf(j->queen, sizeof j->queen, "%s", o->queen ? o->queen : "queen");
    make_id(j->id, sizeof j->id);
    pthread_mutex_init(&j->lock, NULL);
    j->decompose_idx = j->merge_idx = -1;
    j->no_merge = s->no_merge;
    j->t0_ms = hive_now_ms();
    j->q = jobq_new();
    j->task = s->task ? strdup(s->task) : NULL;
    j->reduce = s->reduce ? strdup(s->reduce) : NULL;
    int rc = HIVE_OK;
    if (!j->q || (s->task && !j->task) || (s->reduce && !j->reduce)) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (s->n_subtasks > 0) {
        if (add_maps_locked(j, s->subtasks, s->n_subtasks)) {
            rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
            goto fail;
        }
    } else {
        char *p = malloc(HIVE_DECOMPOSE_MAX_LEN * 2);
        int len = p ? hive_decompose_prompt(o->chat_template, s->task, j->o.max_subtasks, p,
                                            HIVE_DECOMPOSE_MAX_LEN * 2)
                    : -1;
        if (len < 0 || len >= HIVE_DECOMPOSE_MAX_LEN * 2) {
            free(p);
            rc = hive_errf(err, HIVE_ERR_INVAL, "the task is too long to decompose (at most about %d bytes)",
                           HIVE_DECOMPOSE_MAX_LEN);
            goto fail;
        }
        j->decompose_idx = jobq_add(j->q, p, o->chat_template != HIVE_CHAT_NONE, j->o.decompose_tokens);
        free(p);
        if (j->decompose_idx < 0) {
            rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
            goto fail;
        }
        j->state = HIVE_JOB_DECOMPOSING;
    }
    int n_rep = o->fleet ? hive_fleet_n_replicas(o->fleet) : 0;
    j->replicas_left = n_rep * j->o.per_replica;
    for (int r = 0; r < n_rep; r++)
        for (int k = 0; k < j->o.per_replica && j->n_runners < JOB_MAX_RUNNERS; k++) {
            struct runner *rn = &j->runners[j->n_runners];
            rn->j = j;
            rn->replica = r;
            if (pthread_create(&rn->th, NULL, runner_main, rn)) {
                rc = hive_errf(err, HIVE_ERR_NOMEM, "cannot start a runner thread");
                goto fail;
            }
            j->n_runners++;
        }
    j->replicas_left = j->n_runners;
    *out = j;
    return HIVE_OK;
fail:
    hive_job_free(j);
    return rc;
}

int hive_job_wait(hive_job *j, int timeout_ms) {
    double until = hive_now_ms() + timeout_ms;
    uint64_t seen = 0;
    for (;;) {
        if (job_ended(j)) return 1;
        double left = until - hive_now_ms();
        if (timeout_ms >= 0 && left <= 0) return 0;
        seen = jobq_wait_change(j->q, seen, timeout_ms < 0 || left > 1000 ? 1000 : (int)left + 1);
    }
}

void hive_job_cancel(hive_job *j) {
    pthread_mutex_lock(&j->lock);
    finish_locked(j, HIVE_JOB_CANCELLED, "cancelled");
    pthread_mutex_unlock(&j->lock);
}

void hive_job_free(hive_job *j) {
    if (!j) return;
    if (j->q) hive_job_cancel(j);
    for (int i = 0; i < j->n_runners; i++) pthread_join(j->runners[i].th, NULL);
    jobq_free(j->q);
    free(j->task);
    free(j->reduce);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

const char *hive_job_id(const hive_job *j) { return j->id; }

void hive_job_get_status(hive_job *j, struct hive_job_status *st) {
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&j->lock);
    st->state = j->state;
    st->n_subtasks = j->n_maps;
    int base = j->map_base, merge = j->merge_idx;
    st->wall_ms = (ended(j->state) ? j->end_ms : hive_now_ms()) - j->t0_ms;
    snprintf(st->error, sizeof st->error, "%s", j->error);
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < st->n_subtasks; i++) {
        int s = 0;
        jobq_item(j->q, base + i, &s, NULL, NULL, NULL, NULL, NULL);
        st->done += s == JOBQ_DONE;
        st->running += s == JOBQ_LEASED;
        st->queued += s == JOBQ_QUEUED;
    }
    int ms = 0;
    if (merge >= 0 && !jobq_item(j->q, merge, &ms, NULL, NULL, NULL, NULL, NULL)) st->merged = ms == JOBQ_DONE;
    struct jobq_counts c;
    jobq_counts(j->q, &c);
    st->retries = c.retries;
    st->discarded = c.discarded;
    st->version = jobq_wait_change(j->q, UINT64_MAX, 0);
}

uint64_t hive_job_wait_change(hive_job *j, uint64_t seen, int timeout_ms) {
    return jobq_wait_change(j->q, seen, timeout_ms);
}

int hive_job_get_answer(hive_job *j, int i, struct hive_job_answer *a) {
    memset(a, 0, sizeof *a);
    pthread_mutex_lock(&j->lock);
    int idx = i == HIVE_JOB_MERGE ? j->merge_idx : (i >= 0 && i < j->n_maps ? j->map_base + i : -1);
    pthread_mutex_unlock(&j->lock);
    if (idx < 0) return -1;
    int s = 0;
    if (jobq_item(j->q, idx, &s, &a->attempts, &a->text, &a->done_by, &a->n_prompt, &a->n_gen)) return -1;
    a->done = s == JOBQ_DONE;
    a->prompt = jobq_item_text(j->q, idx);
    return 0;
}

void hive_job_answer_free(struct hive_job_answer *a) {
    free(a->prompt);
    free(a->text);
    free(a->done_by);
    memset(a, 0, sizeof *a);
}
