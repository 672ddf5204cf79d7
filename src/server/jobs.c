/* jobs.c - the job routes of `hive serve` (hive/job.h over HTTP):
 *
 *   POST /v1/hive/jobs             {"task": "..."} or {"subtasks": ["...", ...]},
 *                                  optional "reduce", "no_merge", "max_tokens"
 *                                  -> 202 {"id": ..., "status": ...}
 *   GET  /v1/hive/jobs/ID          status, progress and the answers so far
 *   GET  /v1/hive/jobs/ID/events   SSE: "event: progress" with the status on every
 *                                  change, "event: done" with the final result
 *
 * The server keeps up to SRV_JOBS_MAX jobs; a finished one no client is
 * reading is dropped when room is needed. Non-goals: persistence across
 * restarts (the ledger keeps what was computed), cancelling over HTTP. */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hive/job.h"
#include "srv.h"

#define SRV_JOBS_MAX 64
#define EVENTS_STEP_MS 1000 /* a keep-alive comment at least this often */

struct slot {
    hive_job *job;
    int refs; /* event streams reading it */
};

struct srv_jobs {
    struct hive_job_opts tmpl;
    pthread_mutex_t lock;
    struct slot slots[SRV_JOBS_MAX];
    atomic_int stopping;
};

struct srv_jobs *srv_jobs_new(const struct hive_job_opts *tmpl) {
    struct srv_jobs *J = calloc(1, sizeof *J);
    if (!J) return NULL;
    J->tmpl = *tmpl;
    pthread_mutex_init(&J->lock, NULL);
    atomic_init(&J->stopping, 0);
    return J;
}

void srv_jobs_stop(struct srv_jobs *J) {
    if (!J) return;
    atomic_store(&J->stopping, 1);
    pthread_mutex_lock(&J->lock);
    for (int i = 0; i < SRV_JOBS_MAX; i++)
        if (J->slots[i].job) hive_job_cancel(J->slots[i].job);
    pthread_mutex_unlock(&J->lock);
}

void srv_jobs_free(struct srv_jobs *J) {
    if (!J) return;
    for (int i = 0; i < SRV_JOBS_MAX; i++) hive_job_free(J->slots[i].job);
    pthread_mutex_destroy(&J->lock);
    free(J);
}

/* ---- JSON ---- */

static cJSON *status_json(hive_job *j, int with_answers) {
    struct hive_job_status st;
    hive_job_get_status(j, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", hive_job_id(j));
    cJSON_AddStringToObject(o, "object", "hive.job");
    cJSON_AddStringToObject(o, "status", hive_job_state_name(st.state));
    if (st.error[0]) cJSON_AddStringToObject(o, "error", st.error);
    cJSON *p = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddNumberToObject(p, "subtasks", st.n_subtasks);
    cJSON_AddNumberToObject(p, "done", st.done);
    cJSON_AddNumberToObject(p, "running", st.running);
    cJSON_AddNumberToObject(p, "queued", st.queued);
    cJSON_AddNumberToObject(p, "retries", st.retries);
    cJSON_AddNumberToObject(p, "discarded", st.discarded);
    cJSON_AddNumberToObject(p, "wall_ms", st.wall_ms);
    if (!with_answers) return o;
    cJSON *arr = cJSON_AddArrayToObject(o, "results");
    for (int i = 0; i <= st.n_subtasks; i++) {
        struct hive_job_answer a;
        int idx = i < st.n_subtasks ? i : HIVE_JOB_MERGE;
        if (hive_job_get_answer(j, idx, &a)) continue;
        cJSON *r = cJSON_CreateObject();
        if (idx >= 0) cJSON_AddNumberToObject(r, "index", i);
        cJSON_AddStringToObject(r, "prompt", a.prompt ? a.prompt : "");
        if (a.done) cJSON_AddStringToObject(r, "answer", a.text ? a.text : "");
        else cJSON_AddNullToObject(r, "answer");
        cJSON_AddStringToObject(r, "done_by", a.done_by ? a.done_by : "");
        cJSON_AddNumberToObject(r, "attempts", a.attempts);
        if (idx >= 0) cJSON_AddItemToArray(arr, r);
        else cJSON_AddItemToObject(o, "merge", r);
        hive_job_answer_free(&a);
    }
    return o;
}

static char *print_free(cJSON *o) {
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* ---- the table ---- */

/* Takes a free slot, dropping a finished job nobody reads if need be
 * (caller holds the lock). -1 when every slot holds a live job. */
static int free_slot(struct srv_jobs *J) {
    for (int i = 0; i < SRV_JOBS_MAX; i++)
        if (!J->slots[i].job) return i;
    for (int i = 0; i < SRV_JOBS_MAX; i++)
        if (J->slots[i].refs == 0 && hive_job_wait(J->slots[i].job, 0)) {
            hive_job_free(J->slots[i].job);
            J->slots[i].job = NULL;
            return i;
        }
    return -1;
}

/* The slot of job id, with a reference taken (ref) or not; -1 if none. */
static int find(struct srv_jobs *J, const char *id, size_t id_len, int ref) {
    pthread_mutex_lock(&J->lock);
    int found = -1;
    for (int i = 0; i < SRV_JOBS_MAX && found < 0; i++) {
        hive_job *j = J->slots[i].job;
        if (j && strlen(hive_job_id(j)) == id_len && !strncmp(hive_job_id(j), id, id_len)) found = i;
    }
    if (found >= 0 && ref) J->slots[found].refs++;
    pthread_mutex_unlock(&J->lock);
    return found;
}

static void unref(struct srv_jobs *J, int i) {
    pthread_mutex_lock(&J->lock);
    J->slots[i].refs--;
    pthread_mutex_unlock(&J->lock);
}

char *srv_jobs_post(struct srv_jobs *J, const char *body, size_t n, struct srv_error *e) {
    cJSON *doc = cJSON_ParseWithLength(body ? body : "", n);
    if (!doc || !cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        srv_errorf(e, 400, "invalid_request_error", NULL, NULL, "the body is not a JSON object");
        return NULL;
    }
    struct hive_job_spec spec = {0};
    struct hive_job_opts o = J->tmpl;
    cJSON *task = cJSON_GetObjectItem(doc, "task"), *subs = cJSON_GetObjectItem(doc, "subtasks");
    cJSON *reduce = cJSON_GetObjectItem(doc, "reduce"), *nm = cJSON_GetObjectItem(doc, "no_merge");
    cJSON *mt = cJSON_GetObjectItem(doc, "max_tokens");
    const char **texts = NULL;
    char *out = NULL;
    if (task && (!cJSON_IsString(task) || !task->valuestring[0])) {
        srv_errorf(e, 400, "invalid_request_error", "task", NULL, "task must be a non-empty string");
        goto done;
    }
    if (subs && (!cJSON_IsArray(subs) || cJSON_GetArraySize(subs) < 1)) {
        srv_errorf(e, 400, "invalid_request_error", "subtasks", NULL, "subtasks must be a non-empty array of strings");
        goto done;
    }
    if (!task == !subs) {
        srv_errorf(e, 400, "invalid_request_error", NULL, NULL, "give either task or subtasks");
        goto done;
    }
    if ((reduce && !cJSON_IsString(reduce)) || (nm && !cJSON_IsBool(nm)) ||
        (mt && (!cJSON_IsNumber(mt) || mt->valuedouble < 1 || mt->valuedouble > 1 << 20))) {
        srv_errorf(e, 400, "invalid_request_error", NULL, NULL,
                   "reduce must be a string, no_merge a boolean, max_tokens a positive integer");
        goto done;
    }
    if (subs) {
        int k = 0, count = cJSON_GetArraySize(subs);
        texts = calloc((size_t)count, sizeof *texts);
        cJSON *s;
        cJSON_ArrayForEach(s, subs) {
            if (!cJSON_IsString(s) || !s->valuestring[0]) break;
            if (texts) texts[k++] = s->valuestring;
        }
        if (!texts || k != count) {
            srv_errorf(e, texts ? 400 : 500, texts ? "invalid_request_error" : "server_error", "subtasks", NULL,
                       texts ? "every subtask must be a non-empty string" : "out of memory");
            goto done;
        }
        spec.subtasks = texts;
        spec.n_subtasks = count;
    } else {
        spec.task = task->valuestring;
    }
    spec.reduce = reduce ? reduce->valuestring : NULL;
    spec.no_merge = nm && cJSON_IsTrue(nm);
    if (mt) o.max_tokens = (int)mt->valuedouble;
    char err[HIVE_ERR_LEN];
    pthread_mutex_lock(&J->lock);
    int i = free_slot(J);
    int rc = i < 0 ? HIVE_ERR_BUSY : hive_job_start(&J->slots[i].job, &o, &spec, err);
    if (!rc) out = print_free(status_json(J->slots[i].job, 0));
    pthread_mutex_unlock(&J->lock);
    if (rc == HIVE_ERR_BUSY) srv_errorf(e, 429, "server_error", NULL, NULL, "%d jobs are running; try later", SRV_JOBS_MAX);
    else if (rc) srv_errorf(e, rc == HIVE_ERR_INVAL ? 400 : 500, rc == HIVE_ERR_INVAL ? "invalid_request_error" : "server_error", NULL, NULL, "%s", err);
    else if (!out) srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
done:
    free(texts);
    cJSON_Delete(doc);
    return out;
}

char *srv_jobs_get(struct srv_jobs *J, const char *id, struct srv_error *e) {
    int i = find(J, id, strlen(id), 1);
    if (i < 0) {
        srv_errorf(e, 404, "invalid_request_error", NULL, "not_found", "no such job: %.64s", id);
        return NULL;
    }
    char *out = print_free(status_json(J->slots[i].job, 1));
    unref(J, i);
    if (!out) srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    return out;
}

/* ---- events ---- */

struct events {
    struct srv_jobs *J;
    int slot;
    uint64_t seen;
    int done;
    struct srv_buf out;
    size_t pos;
};

/* The next event into ev->out: progress on a change, the result at the end,
 * a comment when nothing changed for EVENTS_STEP_MS. */
static int events_fill(struct events *ev) {
    hive_job *j = ev->J->slots[ev->slot].job;
    uint64_t v = hive_job_wait_change(j, ev->seen, EVENTS_STEP_MS);
    int ended = hive_job_wait(j, 0);
    if (v == ev->seen && !ended) return srv_buf_puts(&ev->out, ": keep-alive\n\n");
    ev->seen = v;
    char *s = print_free(status_json(j, ended));
    if (!s) return -1;
    int rc = srv_buf_puts(&ev->out, ended ? "event: done\ndata: " : "event: progress\ndata: ");
    if (!rc) rc = srv_buf_puts(&ev->out, s);
    if (!rc) rc = srv_buf_puts(&ev->out, "\n\n");
    free(s);
    ev->done = ended;
    return rc;
}

static int events_fill_cb(void *arg) { return events_fill(arg); }

static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct events *ev = cls;
    return srv_buf_stream(&ev->out, &ev->pos, &ev->done, &ev->J->stopping, events_fill_cb, ev, buf, max);
}

static void events_free(void *cls) {
    struct events *ev = cls;
    unref(ev->J, ev->slot);
    srv_buf_free(&ev->out);
    free(ev);
}

struct MHD_Response *srv_jobs_events(struct srv_jobs *J, const char *id, struct srv_error *e) {
    int i = find(J, id, strlen(id), 1);
    if (i < 0) {
        srv_errorf(e, 404, "invalid_request_error", NULL, "not_found", "no such job: %.64s", id);
        return NULL;
    }
    struct events *ev = calloc(1, sizeof *ev);
    struct MHD_Response *r = ev ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, events_read, ev, events_free) : NULL;
    if (!r) {
        if (ev) free(ev);
        unref(J, i);
        srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        return NULL;
    }
    ev->J = J;
    ev->slot = i;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}
