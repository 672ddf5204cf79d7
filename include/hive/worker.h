/* worker.h - remote workers: machines that dial OUT to a queen (so they work
 * behind NAT), take subtasks over an authenticated, encrypted hive_link
 * (cluster key), run them on their own engine and send the answers back.
 *
 * Queen side (hive_workers): listens, accepts workers at any time, and gives
 * each one item at a time of the current job (hive/job.h). Both sides
 * heartbeat (W_PING, src/task/wire.h): a worker silent for dead_after_ms is
 * dropped and its item goes back to the queue; one that misses the job's
 * deadline has its item handed to another, and its answer, if it still
 * comes, is kept only when nobody answered first.
 *
 * Worker side (hive_worker_run): dials the queen, says hello with its name,
 * and runs each task on
 *   - its own hive engine: an in-process scheduler over a GGUF model, or
 *   - any OpenAI-compatible server (--backend URL: llama.cpp's server,
 *     Ollama, LM Studio, vLLM, another `hive serve`), through POST
 *     URL/v1/completions (chat = 0) or URL/v1/chat/completions (chat = 1).
 * When the link drops it dials again until stopped. */
#ifndef HIVE_WORKER_H
#define HIVE_WORKER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "hive/net.h"

typedef struct hive_job hive_job;
typedef struct hive_workers hive_workers;

struct hive_workers_opts {
    const char *listen;        /* "host:port" (port 0: ephemeral) */
    uint8_t key[HIVE_KEY_BYTES];
    int heartbeat_ms;          /* 0: 500 */
    int dead_after_ms;         /* 0: 5000 */
    FILE *log;                 /* joins, leaves, drops; NULL: silent */
};

int hive_workers_open(hive_workers **out, const struct hive_workers_opts *o, char *err);
/* "host:port" as bound (the real port when 0 was asked). */
const char *hive_workers_addr(const hive_workers *w);
/* The job whose items workers take (NULL: none; workers idle). Returns once
 * no connection uses the previous job any more, so it can be freed. */
void hive_workers_set_job(hive_workers *w, hive_job *j);
/* Workers connected now. */
int hive_workers_count(hive_workers *w);
/* Waits until at least one worker is connected; 1 if so, 0 after timeout_ms. */
int hive_workers_wait(hive_workers *w, int timeout_ms);
/* Items each worker answered (kept), for summaries: copies up to cap names
 * and counts; returns how many workers have been seen. */
int hive_workers_stats(hive_workers *w, char (*names)[64], int *answered, int cap);
void hive_workers_close(hive_workers *w);

#define HIVE_WORKER_MAX_SLOTS 64

struct hive_worker_opts {
    const char *queen;         /* "host:port" */
    uint8_t key[HIVE_KEY_BYTES];
    const char *name;          /* its name in the ledger; NULL: the hostname */
    const char *model_path;    /* run on this model, in process ... */
    const char *backend_url;   /* ... or on this OpenAI-compatible server */
    const char *backend_model; /* "model" in the request; NULL: the server's first (GET /v1/models) */
    int backend_chat;          /* 1: /v1/chat/completions (the prompt as one user message) */
    int n_threads;             /* engine threads; 0: every core */
    int slots;                 /* tasks at once, each on its own link to the queen, all on one
                                  engine (hive's own decodes them in one batch); 0: 1 */
    int heartbeat_ms;          /* 0: 500 */
    int dead_after_ms;         /* the queen silent this long: dial again; 0: 5000 */
    int max_tasks;             /* stop after this many answers (tests); 0: never */
    volatile sig_atomic_t *stop; /* set (by a signal handler) to leave */
    FILE *log;                 /* NULL: stderr */
};

/* Runs until *stop, max_tasks, or an error that retrying cannot mend (the
 * model does not load, the key is refused). 0 when stopped. */
int hive_worker_run(const struct hive_worker_opts *o, char *err);

#endif
