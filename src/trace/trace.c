/* trace.c - in-memory trace events, exported as Chrome trace JSON.
 * Names are escaped for JSON; numbers are written with fixed precision so
 * the file is stable across runs with equal timings. */
#include "hive/trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_NAME_CAP 64

struct trace_event {
    char name[TRACE_NAME_CAP];
    char cat[24];
    char arg_name[24]; /* "" = no argument */
    int pid, tid;
    double ts_us, dur_us, arg_value;
};

struct trace_track_name {
    int pid, tid; /* tid < 0: process name */
    char name[TRACE_NAME_CAP];
};

struct hive_trace {
    struct trace_event *ev;
    int64_t n_ev, cap_ev;
    struct trace_track_name *names;
    int n_names, cap_names;
};

hive_trace *hive_trace_new(void) { return hive_calloc(1, sizeof(hive_trace)); }

void hive_trace_free(hive_trace *t) {
    if (!t) return;
    free(t->ev);
    free(t->names);
    free(t);
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

static int set_name(hive_trace *t, int pid, int tid, const char *name) {
    for (int i = 0; i < t->n_names; i++) {
        if (t->names[i].pid == pid && t->names[i].tid == tid) {
            copy_str(t->names[i].name, sizeof t->names[i].name, name);
            return HIVE_OK;
        }
    }
    if (t->n_names == t->cap_names) {
        int cap = t->cap_names ? t->cap_names * 2 : 16;
        void *p = realloc(t->names, (size_t)cap * sizeof *t->names);
        if (!p) return HIVE_ERR_NOMEM;
        t->names = p;
        t->cap_names = cap;
    }
    struct trace_track_name *n = &t->names[t->n_names++];
    n->pid = pid;
    n->tid = tid;
    copy_str(n->name, sizeof n->name, name);
    return HIVE_OK;
}

int hive_trace_name_process(hive_trace *t, int pid, const char *name) { return set_name(t, pid, -1, name); }

int hive_trace_name_thread(hive_trace *t, int pid, int tid, const char *name) {
    if (tid < 0) return HIVE_ERR_INVAL;
    return set_name(t, pid, tid, name);
}

int hive_trace_complete(hive_trace *t, const char *name, const char *cat, int pid, int tid, double ts_us,
                        double dur_us, const char *arg_name, double arg_value) {
    if (t->n_ev == t->cap_ev) {
        int64_t cap = t->cap_ev ? t->cap_ev * 2 : 256;
        void *p = realloc(t->ev, (size_t)cap * sizeof *t->ev);
        if (!p) return HIVE_ERR_NOMEM;
        t->ev = p;
        t->cap_ev = cap;
    }
    struct trace_event *e = &t->ev[t->n_ev++];
    copy_str(e->name, sizeof e->name, name);
    copy_str(e->cat, sizeof e->cat, cat);
    copy_str(e->arg_name, sizeof e->arg_name, arg_name);
    e->pid = pid;
    e->tid = tid;
    e->ts_us = ts_us;
    e->dur_us = dur_us > 0 && isfinite(dur_us) ? dur_us : 0;
    e->arg_value = isfinite(arg_value) ? arg_value : 0;
    return HIVE_OK;
}

int64_t hive_trace_n_events(const hive_trace *t) { return t->n_ev; }

/* JSON string body: quotes, backslashes and control characters escaped. */
static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

int hive_trace_write_json(const hive_trace *t, const char *path, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "trace: open %s: %s", path, strerror(errno));
    double origin = 0;
    for (int64_t i = 0; i < t->n_ev; i++)
        if (i == 0 || t->ev[i].ts_us < origin) origin = t->ev[i].ts_us;
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    int first = 1;
    for (int i = 0; i < t->n_names; i++) {
        const struct trace_track_name *n = &t->names[i];
        fprintf(f, "%s{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", first ? "" : ",\n",
                n->tid < 0 ? "process_name" : "thread_name", n->pid, n->tid < 0 ? 0 : n->tid);
        put_json_str(f, n->name);
        fprintf(f, "}}");
        first = 0;
    }
    for (int64_t i = 0; i < t->n_ev; i++) {
        const struct trace_event *e = &t->ev[i];
        fprintf(f, "%s{\"ph\":\"X\",\"name\":", first ? "" : ",\n");
        put_json_str(f, e->name);
        fprintf(f, ",\"cat\":");
        put_json_str(f, e->cat[0] ? e->cat : "hive");
        fprintf(f, ",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f", e->pid, e->tid, e->ts_us - origin, e->dur_us);
        if (e->arg_name[0]) {
            fprintf(f, ",\"args\":{");
            put_json_str(f, e->arg_name);
            fprintf(f, ":%.6g}", e->arg_value);
        }
        fputc('}', f);
        first = 0;
    }
    fprintf(f, "\n]}\n");
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return hive_errf(err, HIVE_ERR_IO, "trace: write %s failed", path);
    return HIVE_OK;
}
