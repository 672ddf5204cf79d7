/* workers.c - the queen's side of remote workers (see hive/worker.h):
 * accept, handshake, hello, then one item at a time per worker, with
 * heartbeats both ways. One thread per connection.
 * Non-goals: the connection gate's admission control (workers are few and
 * authenticate at once), jobs side by side (one current job). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hive/core.h"
#include "hive/job.h"
#include "hive/worker.h"
#include "wire.h"

#define WORKERS_MAX 64
#define HANDSHAKE_MS 5000

struct conn {
    hive_workers *w;
    pthread_t th;
    int fd;
    hive_link *link;    /* set by the thread once the handshake is done (under w->lock) */
    char name[WIRE_NAME_CAP];
    int answered;
    int finished;       /* the thread is done; join it */
};

struct hive_workers {
    struct hive_workers_opts o;
    int lfd;
    char addr[160];
    pthread_t accept_th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    hive_job *job;
    int users;          /* connections inside the job now */
    int closing;
    int connected;
    struct conn *conns[WORKERS_MAX * 4];
    int n_conns;
};

static void wlog(hive_workers *w, const char *fmt, const char *a, const char *b) {
    if (!w->o.log) return;
    fprintf(w->o.log, "workers: ");
    fprintf(w->o.log, fmt, a, b);
    fputc('\n', w->o.log);
    fflush(w->o.log);
}

static hive_job *job_ref(hive_workers *w) {
    pthread_mutex_lock(&w->lock);
    hive_job *j = w->closing ? NULL : w->job;
    if (j) w->users++;
    pthread_mutex_unlock(&w->lock);
    return j;
}

static void job_unref(hive_workers *w) {
    pthread_mutex_lock(&w->lock);
    w->users--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* ---- one connection ---- */

struct session {
    struct conn *c;
    hive_link *l;
    double last_seen, last_sent;
};

/* Sends a ping when one is due; -1 when the link failed. */
static int ping_due(struct session *s) {
    double now = hive_now_ms();
    if (now - s->last_sent < s->c->w->o.heartbeat_ms) return 0;
    char err[HIVE_ERR_LEN];
    s->last_sent = now;
    return hive_link_send(s->l, W_PING, NULL, 0, NULL, 0, err) ? -1 : 0;
}

/* Reads one frame (up to wait_ms). 1: a frame (type, p, len); 0: none;
 * -1: the worker is gone (link error, W_BYE, or silent too long). */
static int step(struct session *s, int wait_ms, uint8_t *type, const uint8_t **p, size_t *len) {
    char err[HIVE_ERR_LEN];
    if (ping_due(s)) return -1;
    int rc = hive_link_recv(s->l, type, p, len, wait_ms, err);
    double now = hive_now_ms();
    if (rc == HIVE_ERR_TIMEOUT) return now - s->last_seen > s->c->w->o.dead_after_ms ? -1 : 0;
    if (rc) return -1;
    s->last_seen = now;
    if (*type == W_BYE) return -1;
    return *type == W_PING ? 0 : 1;
}

/* Runs one lease on the worker: sends it and waits for its answer. Returns
 * -1 when the worker is gone (the lease was given back), else 0. */
static int serve_lease(struct session *s, hive_job *j, struct hive_job_lease *l) {
    char err[HIVE_ERR_LEN];
    struct hive_wbuf b;
    hive_wbuf_init(&b);
    struct wire_task t = {.lease = l->lease, .max_tokens = (uint32_t)l->max_tokens, .templated = l->templated,
                          .sp = l->sampling, .prompt = l->text};
    wire_put_task(&b, &t);
    int rc = b.bad ? HIVE_ERR_NOMEM : hive_link_send(s->l, W_TASK, b.p, b.len, NULL, 0, err);
    hive_wbuf_free(&b);
    if (rc) {
        hive_job_release(j, l, "could not send it to the worker");
        return -1;
    }
    for (;;) {
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int got = step(s, 200, &type, &p, &len);
        if (got < 0) {
            char why[128];
            snprintf(why, sizeof why, "worker %s is gone", s->c->name);
            hive_job_release(j, l, why);
            return -1;
        }
        /* The job ended (done elsewhere, cancelled): the answer is not needed. */
        if (got == 0 && hive_job_wait(j, 0)) return 0;
        if (got == 0 || type != W_RESULT) continue;
        struct wire_result r;
        if (wire_get_result(p, len, &r, err)) {
            hive_job_release(j, l, err);
            return -1;
        }
        if (r.lease != l->lease) { /* an answer to an older lease, of a job gone: nothing to do */
            free(r.text);
            continue;
        }
        if (!r.ok) {
            char why[HIVE_ERR_LEN + WIRE_NAME_CAP];
            snprintf(why, sizeof why, "worker %s: %.160s", s->c->name, r.text);
            hive_job_release(j, l, why);
        } else {
            struct hive_ledger_work work = {s->c->name, (uint64_t)r.n_prompt + r.n_gen, r.layer_passes};
            if (hive_job_complete(j, l, r.text, (int)r.n_prompt, (int)r.n_gen, &work, 1, s->c->name))
                s->c->answered++;
        }
        free(r.text);
        return 0;
    }
}

/* Handshake and hello; 0 with s->l set, else -1. */
static int greet(struct session *s) {
    struct conn *c = s->c;
    char err[HIVE_ERR_LEN];
    hive_link *l = NULL;
    if (hive_link_server(&l, c->fd, c->w->o.key, HANDSHAKE_MS, err)) { /* closes fd on failure */
        wlog(c->w, "a connection failed its handshake: %s%s", err, "");
        return -1;
    }
    uint8_t type = 0;
    const uint8_t *p = NULL;
    size_t len = 0;
    int rc = hive_link_recv(l, &type, &p, &len, HANDSHAKE_MS, err);
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, rc ? 0 : len);
    uint32_t version = hive_rbuf_u32(&r);
    hive_rbuf_str(&r, c->name, sizeof c->name);
    if (rc || type != W_HELLO || r.bad || version != WIRE_VERSION || !c->name[0]) {
        wlog(c->w, "a connection is no worker (or speaks another version)%s%s", "", "");
        hive_link_close(l);
        return -1;
    }
    pthread_mutex_lock(&c->w->lock);
    int closing = c->w->closing;
    if (!closing) c->link = l;
    pthread_mutex_unlock(&c->w->lock);
    if (closing) {
        hive_link_close(l);
        return -1;
    }
    s->l = l;
    return 0;
}

static void *conn_main(void *arg) {
    struct conn *c = arg;
    hive_workers *w = c->w;
    struct session s = {c, NULL, hive_now_ms(), 0};
    if (greet(&s) == 0) {
        pthread_mutex_lock(&w->lock);
        w->connected++;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        wlog(w, "worker %s joined%s", c->name, "");
        for (;;) {
            hive_job *j = job_ref(w);
            int gone = 0;
            if (!j) {
                uint8_t type;
                const uint8_t *p;
                size_t len;
                pthread_mutex_lock(&w->lock);
                int closing = w->closing;
                pthread_mutex_unlock(&w->lock);
                if (closing || step(&s, 200, &type, &p, &len) < 0) break;
                continue;
            }
            struct hive_job_lease l;
            int got = hive_job_take(j, c->name, 100, &l);
            if (got == 1) {
                gone = serve_lease(&s, j, &l) < 0;
                hive_job_lease_free(&l);
            } else {
                uint8_t type;
                const uint8_t *p;
                size_t len;
                gone = step(&s, got < 0 ? 100 : 0, &type, &p, &len) < 0;
            }
            job_unref(w);
            if (gone) break;
        }
        wlog(w, "worker %s left (%s)", c->name, hive_link_is_dead(s.l) ? "link lost" : "silent or said bye");
        pthread_mutex_lock(&w->lock);
        w->connected--;
        c->link = NULL;
        pthread_mutex_unlock(&w->lock);
        hive_link_close(s.l);
    }
    pthread_mutex_lock(&w->lock);
    c->finished = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- the listener ---- */

/* Connections are kept (names and counts for the summary) until close:
 * at most WORKERS_MAX * 4 over the queen's life. */
static void *accept_main(void *arg) {
    hive_workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        int closing = w->closing;
        pthread_mutex_unlock(&w->lock);
        if (closing) break;
        int fd = -1;
        char err[HIVE_ERR_LEN];
        if (hive_net_accept(w->lfd, 200, &fd, err)) continue;
        struct conn *c = hive_calloc(1, sizeof *c);
        pthread_mutex_lock(&w->lock);
        int room = w->n_conns < (int)(sizeof w->conns / sizeof w->conns[0]) && w->connected < WORKERS_MAX;
        if (c && room) {
            c->w = w;
            c->fd = fd;
            if (pthread_create(&c->th, NULL, conn_main, c) == 0) {
                w->conns[w->n_conns++] = c;
                c = NULL, fd = -1;
            }
        }
        pthread_mutex_unlock(&w->lock);
        if (fd >= 0) {
            wlog(w, "a worker was refused (%s)%s", room ? "out of memory" : "too many", "");
            close(fd);
        }
        free(c);
    }
    return NULL;
}

int hive_workers_open(hive_workers **out, const struct hive_workers_opts *o, char *err) {
    *out = NULL;
    char host[128];
    int port = 0, rc;
    if ((rc = hive_net_parse_hostport(o->listen, host, sizeof host, &port, err))) return rc;
    hive_workers *w = hive_calloc(1, sizeof *w);
    if (!w) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    w->o = *o;
    if (w->o.heartbeat_ms <= 0) w->o.heartbeat_ms = 500;
    if (w->o.dead_after_ms <= 0) w->o.dead_after_ms = 5000;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int real_port = 0;
    if ((rc = hive_net_listen(host, port, &w->lfd, &real_port, err))) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return rc;
    }
    snprintf(w->addr, sizeof w->addr, "%s:%d", host[0] ? host : "0.0.0.0", real_port);
    if (pthread_create(&w->accept_th, NULL, accept_main, w)) {
        close(w->lfd);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return hive_errf(err, HIVE_ERR_NOMEM, "cannot start the listener thread");
    }
    *out = w;
    return HIVE_OK;
}

const char *hive_workers_addr(const hive_workers *w) { return w->addr; }

void hive_workers_set_job(hive_workers *w, hive_job *j) {
    pthread_mutex_lock(&w->lock);
    w->job = j;
    while (w->users > 0) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

int hive_workers_count(hive_workers *w) {
    pthread_mutex_lock(&w->lock);
    int n = w->connected;
    pthread_mutex_unlock(&w->lock);
    return n;
}

int hive_workers_wait(hive_workers *w, int timeout_ms) {
    double until = hive_now_ms() + timeout_ms;
    while (hive_workers_count(w) == 0) {
        if (hive_now_ms() >= until) return 0;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 1;
}

int hive_workers_stats(hive_workers *w, char (*names)[64], int *answered, int cap) {
    pthread_mutex_lock(&w->lock);
    int n = 0;
    for (int i = 0; i < w->n_conns; i++) {
        if (!w->conns[i]->name[0]) continue;
        if (n < cap) {
            snprintf(names[n], 64, "%s", w->conns[i]->name);
            answered[n] = w->conns[i]->answered;
        }
        n++;
    }
    pthread_mutex_unlock(&w->lock);
    return n;
}

void hive_workers_close(hive_workers *w) {
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->closing = 1;
    w->job = NULL;
    for (int i = 0; i < w->n_conns; i++)
        if (w->conns[i]->link) hive_link_shutdown(w->conns[i]->link);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->accept_th, NULL);
    for (int i = 0; i < w->n_conns; i++) {
        pthread_join(w->conns[i]->th, NULL);
        free(w->conns[i]);
    }
    close(w->lfd);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
