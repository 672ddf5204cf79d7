/* worker.c - a worker: dials out to the queen, takes tasks, runs them on
 * its engine (engine.h), answers; dials again when the link drops (see
 * hive/worker.h). The main thread receives and computes; a heartbeat thread
 * keeps W_PING going meanwhile, so a long task is not mistaken for a death.
 * With slots > 1 the worker holds that many links to the queen, each taking
 * one task at a time, all on one engine: on hive's own engine the tasks in
 * flight then share each pass over the weights (one batch). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "hive/core.h"
#include "hive/worker.h"
#include "wire.h"

#define DIAL_MS 5000
#define REDIAL_MS 1000

struct link_tx {
    hive_link *l;
    pthread_mutex_t lock; /* two senders: the main thread and the heartbeat */
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    int stop;
    int heartbeat_ms;
};

static int tx_send(struct link_tx *tx, uint8_t type, const void *p, size_t len, char *err) {
    pthread_mutex_lock(&tx->lock);
    int rc = hive_link_send(tx->l, type, p, len, NULL, 0, err);
    pthread_mutex_unlock(&tx->lock);
    return rc;
}

static void *heartbeat_main(void *arg) {
    struct link_tx *tx = arg;
    pthread_mutex_lock(&tx->stop_lock);
    while (!tx->stop) {
        pthread_mutex_unlock(&tx->stop_lock);
        char err[HIVE_ERR_LEN];
        if (tx_send(tx, W_PING, NULL, 0, err)) break; /* the main thread sees the dead link too */
        pthread_mutex_lock(&tx->stop_lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)tx->heartbeat_ms * 1000000LL;
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        if (!tx->stop) pthread_cond_timedwait(&tx->stop_cond, &tx->stop_lock, &ts);
    }
    pthread_mutex_unlock(&tx->stop_lock);
    return NULL;
}

static void wlog(const struct hive_worker_opts *o, const char *fmt, const char *a, const char *b) {
    FILE *f = o->log ? o->log : stderr;
    fprintf(f, "worker: ");
    fprintf(f, fmt, a, b);
    fputc('\n', f);
    fflush(f);
}

static int stopped(const struct hive_worker_opts *o) { return o->stop && *o->stop; }

/* What the slots share. */
struct crew {
    const struct hive_worker_opts *o;
    engine *e;
    const char *name, *host;
    int port;
    atomic_int answered;      /* answers sent, over every slot */
    atomic_int auth_refused;  /* the queen holds another key: every slot leaves */
    char auth_err[HIVE_ERR_LEN]; /* why, from the slot that saw it first */
};

static int crew_done(struct crew *c) {
    return stopped(c->o) || atomic_load(&c->auth_refused) ||
           (c->o->max_tasks > 0 && atomic_load(&c->answered) >= c->o->max_tasks);
}

/* Runs one task and sends the answer (or the error). */
static int answer(engine *e, struct link_tx *tx, const uint8_t *p, size_t len, char *err) {
    struct wire_task t;
    int rc = wire_get_task(p, len, &t, err);
    if (rc) return rc;
    struct engine_answer a;
    char run_err[HIVE_ERR_LEN];
    int run_rc = e->run(e, &t, &a, run_err);
    struct wire_result r = {.lease = t.lease, .ok = run_rc == 0};
    if (run_rc == 0) {
        r.n_prompt = (uint32_t)a.n_prompt;
        r.n_gen = (uint32_t)a.n_gen;
        r.layer_passes = a.layer_passes;
        r.text = a.text;
    } else {
        r.text = run_err;
    }
    struct hive_wbuf b;
    hive_wbuf_init(&b);
    wire_put_result(&b, &r);
    rc = b.bad ? hive_errf(err, HIVE_ERR_NOMEM, "out of memory") : tx_send(tx, W_RESULT, b.p, b.len, err);
    hive_wbuf_free(&b);
    if (run_rc == 0) free(a.text);
    free(t.prompt);
    return rc;
}

/* One connection to the queen: hello, then tasks until the link drops, the
 * queen falls silent, or we stop. Counts answers in c->answered. */
static void session(struct crew *c, hive_link *l) {
    const struct hive_worker_opts *o = c->o;
    char err[HIVE_ERR_LEN];
    struct link_tx tx = {.l = l, .heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms : 500};
    pthread_mutex_init(&tx.lock, NULL);
    pthread_mutex_init(&tx.stop_lock, NULL);
    pthread_cond_init(&tx.stop_cond, NULL);
    struct hive_wbuf b;
    hive_wbuf_init(&b);
    hive_wbuf_u32(&b, WIRE_VERSION);
    hive_wbuf_str(&b, c->name);
    hive_wbuf_u8(&b, 0);
    int rc = b.bad ? HIVE_ERR_NOMEM : tx_send(&tx, W_HELLO, b.p, b.len, err);
    hive_wbuf_free(&b);
    pthread_t hb;
    int hb_started = !rc && pthread_create(&hb, NULL, heartbeat_main, &tx) == 0;
    int dead_after = o->dead_after_ms > 0 ? o->dead_after_ms : 5000;
    double last_seen = hive_now_ms();
    while (hb_started && !crew_done(c)) {
        uint8_t type;
        const uint8_t *p;
        size_t len;
        rc = hive_link_recv(l, &type, &p, &len, 200, err);
        if (rc == HIVE_ERR_TIMEOUT) {
            if (hive_now_ms() - last_seen > dead_after) {
                wlog(o, "the queen is silent; dialling again%s%s", "", "");
                break;
            }
            continue;
        }
        if (rc) {
            wlog(o, "link to the queen lost: %s%s", err, "");
            break;
        }
        last_seen = hive_now_ms();
        if (type != W_TASK) continue;
        if (answer(c->e, &tx, p, len, err)) {
            wlog(o, "%s%s", err, "");
            break;
        }
        last_seen = hive_now_ms(); /* the queen's pings wait in the socket while we compute */
        atomic_fetch_add(&c->answered, 1);
    }
    if (hb_started) {
        pthread_mutex_lock(&tx.stop_lock);
        tx.stop = 1;
        pthread_cond_broadcast(&tx.stop_cond);
        pthread_mutex_unlock(&tx.stop_lock);
        pthread_join(hb, NULL);
    }
    if (crew_done(c)) tx_send(&tx, W_BYE, NULL, 0, err);
    pthread_cond_destroy(&tx.stop_cond);
    pthread_mutex_destroy(&tx.stop_lock);
    pthread_mutex_destroy(&tx.lock);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One slot: dials the queen and runs sessions until the crew is done. */
static void *slot_main(void *arg) {
    struct crew *c = arg;
    char err[HIVE_ERR_LEN];
    while (!crew_done(c)) {
        int fd = -1;
        hive_link *l = NULL;
        int rc = hive_net_connect(c->host, c->port, DIAL_MS, &fd, err);
        if (!rc) rc = hive_link_client(&l, fd, c->o->key, DIAL_MS, err); /* closes fd on failure */
        if (rc == HIVE_ERR_AUTH) { /* the queen holds another key: retrying cannot help */
            if (atomic_exchange(&c->auth_refused, 1) == 0) snprintf(c->auth_err, sizeof c->auth_err, "%s", err);
            break;
        }
        if (rc) {
            sleep_ms(REDIAL_MS);
            continue;
        }
        wlog(c->o, "connected to the queen at %s%s", c->o->queen, "");
        session(c, l);
        hive_link_close(l);
        if (!crew_done(c)) sleep_ms(100);
    }
    return NULL;
}

int hive_worker_run(const struct hive_worker_opts *o, char *err) {
    char host[256], name[WIRE_NAME_CAP];
    int port = 0, rc;
    if ((rc = hive_net_parse_hostport(o->queen, host, sizeof host, &port, err))) return rc;
    if (o->name) snprintf(name, sizeof name, "%s", o->name);
    else if (gethostname(name, sizeof name)) snprintf(name, sizeof name, "worker");
    name[sizeof name - 1] = 0;
    int slots = o->slots > 0 ? o->slots : 1;
    if (slots > HIVE_WORKER_MAX_SLOTS) slots = HIVE_WORKER_MAX_SLOTS;
    engine *e = NULL;
    rc = o->backend_url ? engine_http_open(&e, o->backend_url, o->backend_model, o->backend_chat, err)
                        : engine_hive_open(&e, o->model_path, o->n_threads, slots, err);
    if (rc) return rc;
    char who[WIRE_NAME_CAP + 32];
    snprintf(who, sizeof who, "%s (%d task%s at once)", name, slots, slots == 1 ? "" : "s");
    wlog(o, "%s ready; dialling the queen at %s", who, o->queen);
    struct crew c = {.o = o, .e = e, .name = name, .host = host, .port = port};
    atomic_init(&c.answered, 0);
    atomic_init(&c.auth_refused, 0);
    pthread_t th[HIVE_WORKER_MAX_SLOTS];
    int started = 0;
    for (int i = 1; i < slots; i++) {
        if (pthread_create(&th[started], NULL, slot_main, &c)) break;
        started++;
    }
    slot_main(&c); /* this thread is a slot too */
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    e->close(e);
    if (atomic_load(&c.auth_refused)) return hive_errf(err, HIVE_ERR_AUTH, "%s", c.auth_err);
    return 0;
}
