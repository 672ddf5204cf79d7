/* server.h - `hive serve`: the OpenAI-compatible HTTP API in front of the
 * scheduler (libmicrohttpd, one thread per connection).
 *
 *   POST /v1/chat/completions   messages rendered with the model's chat template
 *   POST /v1/completions        prompt (a string)
 *        both: stream (SSE "data: {chunk}\n\n" ... "data: [DONE]\n\n"),
 *        max_tokens / max_completion_tokens, temperature, top_p, top_k,
 *        min_p, seed, stop (string or up to 4), presence_penalty,
 *        frequency_penalty, n (1 only), stream_options.include_usage
 *   GET  /v1/models             the served model (id = GGUF base name; "hive" also accepted)
 *   GET  /v1/hive/stats         hive_sched_get_stats as JSON
 *   GET  /health                {"status":"ok"} (no API key needed)
 *   POST /v1/hive/jobs          a job (hive/job.h): {"task"} or {"subtasks", "reduce", "no_merge"}
 *   GET  /v1/hive/jobs/ID       its status, progress and answers
 *   GET  /v1/hive/jobs/ID/events  the same as SSE events on every change
 *        (the job routes answer 404 unless opts.jobs is set)
 *
 * Errors use OpenAI's shape {"error":{"message","type","param","code"}}:
 * 400 bad JSON / bad field / prompt over the context, 401 missing or wrong
 * key, 404 unknown path or model, 405 wrong method, 413 body over max_body,
 * 429 queue full (Retry-After: 1), 500 the ring failed.
 *
 * A client that hangs up mid-stream releases its sequence (the scheduler
 * frees it on every stage). Non-streamed requests are generated to the end
 * even when the client leaves (bounded by max_tokens). */
#ifndef HIVE_SERVER_H
#define HIVE_SERVER_H

#include <stddef.h>
#include <stdio.h>

#include "hive/sched.h"
#include "hive/tokenizer.h"

#define HIVE_SERVER_DEFAULT_PORT 8080
#define HIVE_SERVER_DEFAULT_MAX_BODY (1u << 20) /* 1 MiB: far above any prompt a small context holds */
#define HIVE_SERVER_DEFAULT_MAX_TOKENS 512      /* when a request names none (also capped by the context) */

struct hive_server_opts {
    const char *host;       /* NULL: "127.0.0.1" */
    int port;               /* 0: an ephemeral port (hive_server_port tells which) */
    const char *api_key;    /* NULL or "": no key needed */
    size_t max_body;        /* request body limit in bytes; 0: HIVE_SERVER_DEFAULT_MAX_BODY */
    const char *model_id;   /* the id /v1/models shows and requests may name */
    int default_max_tokens; /* 0: HIVE_SERVER_DEFAULT_MAX_TOKENS */
    FILE *log;              /* one line per request; NULL: none */
    struct hive_ledger *ledger; /* with hive_server_start_fleet: each finished request credits its
                                   nodes there (hive/ledger.h); NULL: no ledger */
    /* Jobs: the options every POSTed job gets (its fleet, tokenizer,
     * ledger; copied; what they point to must outlive the server). NULL: no
     * job routes. */
    const struct hive_job_opts *jobs;
};

typedef struct hive_server hive_server;

/* Starts listening. sched and tok must outlive the server; chat_template
 * is hive_chat_template_detect's answer for the model. */
int hive_server_start(hive_server **out, hive_sched *sched, const hive_tokenizer *tok, int chat_template,
                      const struct hive_server_opts *o, char *err);
/* The same over replicas: each request goes to the least-loaded replica;
 * stats and nodes are every replica's. */
struct hive_fleet;
int hive_server_start_fleet(hive_server **out, struct hive_fleet *fleet, const hive_tokenizer *tok, int chat_template,
                            const struct hive_server_opts *o, char *err);
int hive_server_port(const hive_server *s);
/* Stops accepting, ends every connection (streams are cut, their
 * sequences released) and frees the server. Call before hive_sched_close. */
void hive_server_stop(hive_server *s);

/* The model id for a GGUF path: its base name without ".gguf". */
void hive_server_model_id(const char *path, char *buf, size_t cap);

#endif
