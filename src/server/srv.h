/* srv.h - the HTTP server's internal pieces, one job per file:
 *   buf.c       a growable byte buffer with a hard cap
 *   stop.c      which generated text may be sent: stop strings across token
 *               boundaries, incomplete UTF-8 held back, invalid UTF-8 replaced
 *   request.c   OpenAI request JSON -> struct srv_request, with validation
 *   response.c  JSON bodies: completions, SSE chunks, errors, models, stats
 *   prompt.c    chat messages -> tokens (special tokens only from the template)
 *   gen.c       one generation: submit, pull tokens, text, finish reason
 *   backend.c   the scheduler behind struct srv_backend
 *   http.c      libmicrohttpd: routing, auth, body limits, streaming
 *   obs.c       what the server observes: requests in flight, counters,
 *               latency histograms, a once-a-second sampler (tokens/s history,
 *               per-node contribution per minute)
 *   cluster.c   GET /v1/hive/cluster: the dashboard's JSON
 *   metrics.c   GET /metrics: Prometheus text exposition format
 *   dashboard.c GET /, /app.js, /style.css: web/ embedded at build time
 * Tests include this header (tests/test_server_*.c); nothing else does. */
#ifndef HIVE_SRV_H
#define HIVE_SRV_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hive/sample.h"
#include "hive/sched.h"
#include "hive/server.h"
#include "hive/tokenizer.h"

/* ---- buf.c ---- */
struct srv_buf {
    char *p;    /* NUL-terminated when n > 0 or after any put */
    size_t n;   /* bytes used */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on n (0: unlimited); a put past it sets full */
    int full;   /* a put was refused (over max or out of memory) */
};
int srv_buf_put(struct srv_buf *b, const void *data, size_t n); /* 0, or -1 and b->full set */
int srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_free(struct srv_buf *b);
/* One step of a streamed answer (an MHD content reader): copies what is
 * left of out from *pos into buf (at most max bytes); when it is drained,
 * refills it with fill(arg) (which sets *done at the end). Returns the
 * bytes copied, or MHD's end-of-stream (done) / end-with-error (stopping,
 * or fill failed) codes. */
ssize_t srv_buf_stream(struct srv_buf *out, size_t *pos, const int *done, const atomic_int *stopping,
                       int (*fill)(void *arg), void *arg, char *buf, size_t max);

/* ---- stop.c ---- */
#define SRV_MAX_STOP 4
#define SRV_MAX_STOP_LEN 256 /* bytes per stop string */

struct srv_stop {
    char *stop[SRV_MAX_STOP]; /* copies, owned */
    size_t stop_len[SRV_MAX_STOP];
    int n_stop;
    struct srv_buf held; /* text received but not released yet */
    int stopped;         /* a stop string matched: nothing more is released */
};

/* stops[0..n) are copied; empty strings are ignored. 0 or -1 (no memory). */
int srv_stop_init(struct srv_stop *s, const char *const *stops, int n);
void srv_stop_free(struct srv_stop *s);
/* Takes the next piece of generated text and appends to out what can be
 * released: everything except a tail that could still begin a stop string
 * or that is an incomplete UTF-8 sequence. Returns 1 when a stop string
 * matched (out gets the text before it, never anything after), 0 otherwise,
 * -1 when out of memory. After a match every call returns 1 and adds nothing. */
int srv_stop_feed(struct srv_stop *s, const char *piece, size_t n, struct srv_buf *out);
/* Generation ended: releases what is held (an incomplete UTF-8 tail
 * becomes U+FFFD). Nothing when a stop string matched. */
int srv_stop_flush(struct srv_stop *s, struct srv_buf *out);

/* ---- request.c ---- */
enum srv_kind { SRV_CHAT = 0, SRV_COMPLETION = 1 };

struct srv_error {
    int status;         /* HTTP status */
    char message[512];
    const char *type;   /* "invalid_request_error", ... */
    char param[64];     /* "" = null */
    const char *code;   /* NULL = null */
};

/* Fills e and returns status (for `return srv_errorf(...)`). */
int srv_errorf(struct srv_error *e, int status, const char *type, const char *param, const char *code,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

struct srv_msg {
    const char *role; /* "system", "user" or "assistant" (static strings) */
    char *content;    /* owned */
};

struct srv_request {
    int kind;
    char *model;               /* NULL when absent */
    struct srv_msg *msgs;      /* chat */
    int n_msgs;
    char *prompt;              /* completion */
    int stream;
    int include_usage;         /* stream_options.include_usage */
    int max_tokens;            /* -1 when absent */
    struct hive_sampler_params sp;
    int has_seed;
    float presence_penalty;    /* parsed and validated; see TODO in request.c */
    float frequency_penalty;
    char *stop[SRV_MAX_STOP];
    int n_stop;
};

/* Parses and validates a request body. 0, or the HTTP status with e filled
 * (the request is then freed already). Sampling defaults: OpenAI's
 * temperature 1 and top_p 1, hive's top_k 40 and min_p 0.05 (off when
 * the request sets top_p, top_k or min_p itself... see request.c). */
int srv_request_parse(const char *body, size_t len, int kind, struct srv_request *r, struct srv_error *e);
void srv_request_free(struct srv_request *r);

/* ---- response.c ---- (each returns a malloc'd string the caller frees, or NULL) */
enum srv_finish { SRV_FINISH_NONE = 0, SRV_FINISH_STOP, SRV_FINISH_LENGTH, SRV_FINISH_ERROR };
const char *srv_finish_name(int finish); /* "stop", "length", NULL */

struct srv_resp_meta {
    int kind;
    const char *id;    /* "chatcmpl-..." / "cmpl-..." */
    long long created; /* unix seconds */
    const char *model;
};

char *srv_json_error(const struct srv_error *e);
char *srv_json_completion(const struct srv_resp_meta *m, const char *text, size_t len, int finish, int n_prompt,
                          int n_gen);
/* One SSE event "data: {...}\n\n" in the chunk shape. text may be NULL (no
 * content: the role-only first chat chunk when first is set, or the
 * final one with finish). usage: a usage-only chunk (choices []). */
char *srv_sse_chunk(const struct srv_resp_meta *m, int first, const char *text, size_t len, int finish);
char *srv_sse_usage(const struct srv_resp_meta *m, int n_prompt, int n_gen);
char *srv_sse_error(const struct srv_error *e);
char *srv_json_models(const char *model_id, long long created);
/* The scheduler's counters as fields of o (shared by /v1/hive/stats and /v1/hive/cluster). */
struct cJSON;
void srv_json_sched_fields(struct cJSON *o, const struct hive_sched_stats *st);
char *srv_json_stats(const struct hive_sched_stats *st);

/* ---- prompt.c ---- */
/* Chat messages -> prompt tokens (malloc'd into *out; returns the count or
 * -1). The messages are rendered with the template and tokenized with
 * special tokens recognised only in the template's own text: a message
 * that contains "<|im_end|>" gets the plain text of it, not the control
 * token. When no message holds such text the result equals tokenizing the
 * rendered prompt whole (add_special = 1, parse_special = 1). */
int srv_prompt_chat(const hive_tokenizer *t, int tmpl, const struct hive_chat_msg *msgs, int n, int32_t **out);
/* Completion prompt: tokenized as `hive run` does (BOS, no special tokens). */
int srv_prompt_text(const hive_tokenizer *t, const char *text, int32_t **out);

/* ---- backend.c: what the server needs from a scheduler ---- */
struct srv_backend {
    void *ctx;
    int (*submit)(void *ctx, const struct hive_seq_params *p, void **seq, char *err);
    int (*next)(void *seq, int32_t *token, int timeout_ms);
    int (*finish)(void *seq);                /* enum hive_finish */
    const char *(*error)(void *seq);
    void (*release)(void *seq);
    void (*stats)(void *ctx, struct hive_sched_stats *st);
    int n_ctx;
    /* Optional: the contribution ledger, and what credits a finished
     * sequence's nodes there (called before it is released). */
    struct hive_ledger *ledger;
    void (*done)(struct hive_ledger *ledger, void *seq);
};
/* What the dashboard and /metrics read besides stats (optional: the test
 * fakes have none): membership, a sequence's progress, its time to first token. */
struct srv_backend_more {
    int (*nodes)(void *ctx, struct hive_sched_node *out, int cap);
    void (*usage)(void *seq, int *n_prompt, int *n_gen);
    double (*ttft_ms)(void *seq);
};
/* The real scheduler. */
void srv_backend_sched(struct srv_backend *be, hive_sched *s);
void srv_backend_sched_more(struct srv_backend_more *m);

/* ---- gen.c ---- */
struct srv_gen {
    const struct srv_backend *be;
    const hive_tokenizer *tok;
    void *seq;           /* NULL once released */
    struct srv_stop stop;
    int finish;          /* enum srv_finish; NONE while running */
    char error[HIVE_ERR_LEN];
    int n_prompt, n_gen;
    struct srv_obs *obs;        /* set by srv_gen_track: counted and listed while it runs */
    struct srv_active *active;
};

/* Submits the prompt. 0, or the HTTP status with e filled: 429 queue full,
 * 400 prompt too long for the context, 500 otherwise. */
int srv_gen_start(struct srv_gen *g, const struct srv_backend *be, const hive_tokenizer *tok, const int32_t *prompt,
                  int n_prompt, int max_tokens, const struct hive_sampler_params *sp, const char *const *stops,
                  int n_stops, struct srv_error *e);
/* Waits up to timeout_ms for the next token and appends the text it
 * releases to out. Returns 1 when the generation has finished (g->finish
 * says why; the sequence is released), 0 otherwise (also on a timeout). */
int srv_gen_step(struct srv_gen *g, struct srv_buf *out, int timeout_ms);
/* Releases the sequence (cancelling it if it still runs) and frees g. */
void srv_gen_end(struct srv_gen *g);

/* ---- obs.c ---- */
#define SRV_HISTORY 600     /* per-second samples kept (10 minutes) */
#define SRV_LEDGER_WINDOW 61 /* per-node samples for the per-minute rates */
#define SRV_LEDGER_NODES 64
#define SRV_HIST_BUCKETS 14

struct srv_hist {
    const double *le; /* upper bounds in seconds, SRV_HIST_BUCKETS of them (+Inf implied) */
    uint64_t count[SRV_HIST_BUCKETS + 1]; /* per bucket, not cumulative; [SRV_HIST_BUCKETS] = over the last bound */
    uint64_t n;
    double sum;
};

/* One request being answered. */
struct srv_active {
    char id[48];
    int kind; /* enum srv_kind */
    int n_prompt, n_gen, max_tokens, stream;
    double started_ms; /* hive_now_ms-style monotonic */
    long long started_unix;
    void *seq;
    struct srv_active *next;
};

enum srv_outcome { SRV_OUT_STOP = 0, SRV_OUT_LENGTH, SRV_OUT_ERROR, SRV_OUT_CANCELLED, SRV_OUT_N };

struct srv_sample {
    double t_ms;         /* monotonic */
    uint64_t generated;  /* scheduler's generated_tokens */
    uint64_t prompt;     /* scheduler's prompt_tokens */
};

struct srv_ledger_node {
    char addr[128];
    uint64_t tokens[SRV_LEDGER_WINDOW], passes[SRV_LEDGER_WINDOW];
    double t_ms[SRV_LEDGER_WINDOW];
    int n, head; /* samples held; next slot */
    double last_seen_ms;
};

struct srv_obs;
/* Starts the sampler thread over be (NULL when out of memory / no thread). */
struct srv_obs *srv_obs_start(const struct srv_backend *be, const struct srv_backend_more *more);
void srv_obs_stop(struct srv_obs *o);
double srv_obs_now_ms(void);
/* Counters for error answers (by HTTP status). */
void srv_obs_error(struct srv_obs *o, int status);
/* A started generation is listed as in flight until it is released. */
void srv_gen_track(struct srv_gen *g, struct srv_obs *o, const char *id, int kind, int max_tokens, int stream);
/* A token reached the client side of a generation. */
void srv_obs_token(struct srv_obs *o, struct srv_active *a);
/* The generation ends (before its sequence is released). */
void srv_obs_finish(struct srv_obs *o, struct srv_gen *g);

/* ---- cluster.c / metrics.c (malloc'd strings, NULL when out of memory) ---- */
char *srv_json_cluster(struct srv_obs *o, const char *model_id, long long started_unix);
char *srv_metrics_text(struct srv_obs *o, const char *model_id);
/* Prometheus label value escaping (backslash, quote, newline) into out. */
void srv_prom_escape(const char *in, char *out, size_t cap);

/* ---- dashboard.c: web/ embedded at build time (the generated web_assets.c) ---- */
struct srv_asset {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
};
extern const struct srv_asset srv_assets[];
extern const int srv_n_assets;
const struct srv_asset *srv_asset_find(const char *url);

/* ---- jobs.c: the job routes (hive/job.h) ---- */
struct srv_jobs;
struct hive_job_opts;
struct MHD_Response;
/* tmpl: the options every job gets (its fleet, tokenizer, ledger); copied. */
struct srv_jobs *srv_jobs_new(const struct hive_job_opts *tmpl);
/* Cancels every job and ends the event streams (before MHD_stop_daemon). */
void srv_jobs_stop(struct srv_jobs *J);
void srv_jobs_free(struct srv_jobs *J);
/* POST /v1/hive/jobs: the new job's status as JSON (malloc'd; answer 202),
 * or NULL with e set. */
char *srv_jobs_post(struct srv_jobs *J, const char *body, size_t n, struct srv_error *e);
/* GET /v1/hive/jobs/ID: status and answers as JSON, or NULL with e set (404). */
char *srv_jobs_get(struct srv_jobs *J, const char *id, struct srv_error *e);
/* GET /v1/hive/jobs/ID/events: an SSE response to queue, or NULL with e set. */
struct MHD_Response *srv_jobs_events(struct srv_jobs *J, const char *id, struct srv_error *e);

/* ---- http.c ---- */
/* hive_server_start with any backend (tests pass a fake one). */
int srv_start(hive_server **out, const struct srv_backend *be, const hive_tokenizer *tok, int chat_template,
              const struct hive_server_opts *o, char *err);
/* The same with the optional readers (more may be NULL). */
int srv_start_ex(hive_server **out, const struct srv_backend *be, const struct srv_backend_more *more,
                 const hive_tokenizer *tok, int chat_template, const struct hive_server_opts *o, char *err);

#endif
