/* http.c - the HTTP side of `hive serve` (libmicrohttpd): routing, the API
 * key, body limits, and the answers, streamed or whole.
 *
 * Threads: MHD runs one thread per connection, so a handler may block on
 * hive_seq_next. A streamed answer is an MHD callback response that pulls
 * the next token each time MHD wants bytes; when the client hangs up, MHD
 * frees the response and its free callback releases the sequence, which
 * frees it on every stage. While a sequence waits (queued, or the ring is
 * slow) the stream sends an SSE comment every second, which both keeps
 * proxies happy and lets a hang-up be noticed.
 *
 * Non-goals: TLS (put a proxy in front), HTTP/2, batching several choices. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "srv.h"

#define STEP_MS 1000 /* longest wait for a token before a keep-alive comment */

struct hive_server {
    struct MHD_Daemon *d;
    struct srv_backend be;
    const hive_tokenizer *tok;
    int tmpl;
    char *api_key;
    size_t max_body;
    char model_id[256];
    int default_max_tokens;
    int port;
    FILE *log;
    long long started; /* unix seconds, the models' "created" */
    atomic_int stopping;
    atomic_ulong next_id;
    struct srv_obs *obs; /* requests in flight, counters, the per-second sampler */
    struct srv_jobs *jobs; /* NULL: no job routes */
};

enum route {
    R_NONE = 0, R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_STATS, R_CLUSTER, R_METRICS, R_ASSET,
    R_JOBS, R_JOB, R_JOB_EVENTS,
};

/* Per-request state while MHD reads the body. */
struct conn {
    enum route route;
    struct srv_buf body;
    char job_id[64]; /* R_JOB, R_JOB_EVENTS */
};

#define JOBS_PATH "/v1/hive/jobs"

/* ---- plain answers ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *type, char *body) {
    if (!body) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 500, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 429) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 405) MHD_add_response_header(r, "Allow", "GET, POST");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The dashboard's files are public: they hold no data (the page reads
 * /v1/hive/cluster, which needs the API key when there is one). */
static enum MHD_Result send_asset(struct MHD_Connection *c, const char *url) {
    const struct srv_asset *a = srv_asset_find(url);
    struct MHD_Response *r = MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct hive_server *s, struct MHD_Connection *c, const struct srv_error *e) {
    if (s->log) fprintf(s->log, "hive serve: %d %s\n", e->status, e->message);
    srv_obs_error(s->obs, e->status);
    return send_text(c, e->status, "application/json", srv_json_error(e));
}

/* ---- routing and auth ---- */

static enum route route_of(const char *url, const char *method, int *method_ok) {
    static const struct { const char *path, *method; enum route r; } routes[] = {
        {"/v1/chat/completions", "POST", R_CHAT}, {"/v1/completions", "POST", R_COMPLETIONS},
        {"/v1/models", "GET", R_MODELS},           {"/health", "GET", R_HEALTH},
        {"/v1/hive/stats", "GET", R_STATS},        {"/v1/hive/cluster", "GET", R_CLUSTER},
        {"/metrics", "GET", R_METRICS},            {JOBS_PATH, "POST", R_JOBS},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path)) continue;
        *method_ok = !strcmp(method, routes[i].method) || (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"));
        return routes[i].r;
    }
    size_t jl = strlen(JOBS_PATH "/");
    if (!strncmp(url, JOBS_PATH "/", jl) && url[jl]) { /* /v1/hive/jobs/ID[/events] */
        *method_ok = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        const char *slash = strchr(url + jl, '/');
        if (!slash) return R_JOB;
        return !strcmp(slash, "/events") ? R_JOB_EVENTS : R_NONE;
    }
    if (srv_asset_find(url)) { /* the dashboard's files */
        *method_ok = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        return R_ASSET;
    }
    *method_ok = 0;
    return R_NONE;
}

/* Constant time in the key's length, so the key cannot be guessed byte by byte. */
static int key_ok(const struct hive_server *s, struct MHD_Connection *c) {
    if (!s->api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    while (*h == ' ') h++;
    size_t n = strlen(s->api_key), m = strlen(h);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(s->api_key[i] ^ (i < m ? h[i] : 0));
    return diff == 0;
}

static int model_ok(const struct hive_server *s, const char *model) {
    return !model || !strcmp(model, s->model_id) || !strcmp(model, "hive");
}

/* ---- generation requests ---- */

struct stream {
    struct hive_server *s;
    struct srv_gen gen;
    struct srv_resp_meta meta;
    char id[48];
    int include_usage;
    int started;         /* the first chunk went out */
    int done;            /* everything including [DONE] is queued in out */
    struct srv_buf out;  /* bytes for MHD */
    size_t out_pos;
};

static void stream_free(void *cls) {
    struct stream *st = cls;
    srv_gen_end(&st->gen); /* a client that hung up: cancels the sequence everywhere */
    srv_buf_free(&st->out);
    free(st);
}

static void put_owned(struct srv_buf *b, char *s) {
    if (!s) {
        b->full = 1;
        return;
    }
    srv_buf_puts(b, s);
    free(s);
}

/* Produces more SSE bytes into st->out; returns 0, or -1 to end the stream. */
static int stream_fill(struct stream *st) {
    struct srv_buf text = {0};
    if (!st->started) {
        st->started = 1;
        if (st->meta.kind == SRV_CHAT) put_owned(&st->out, srv_sse_chunk(&st->meta, 1, NULL, 0, SRV_FINISH_NONE));
    }
    int fin = srv_gen_step(&st->gen, &text, STEP_MS);
    if (text.n) put_owned(&st->out, srv_sse_chunk(&st->meta, 0, text.p, text.n, SRV_FINISH_NONE));
    srv_buf_free(&text);
    if (fin) {
        if (st->gen.finish == SRV_FINISH_ERROR) {
            struct srv_error e;
            srv_errorf(&e, 500, "server_error", NULL, NULL, "generation failed: %s", st->gen.error);
            put_owned(&st->out, srv_sse_error(&e));
        } else {
            put_owned(&st->out, srv_sse_chunk(&st->meta, 0, NULL, 0, st->gen.finish));
            if (st->include_usage) put_owned(&st->out, srv_sse_usage(&st->meta, st->gen.n_prompt, st->gen.n_gen));
        }
        srv_buf_puts(&st->out, "data: [DONE]\n\n");
        st->done = 1;
    } else if (!st->out.n) {
        srv_buf_puts(&st->out, ": waiting\n\n"); /* SSE comment: clients ignore it */
    }
    return st->out.full ? -1 : 0;
}

static int stream_fill_cb(void *arg) { return stream_fill(arg); }

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct stream *st = cls;
    return srv_buf_stream(&st->out, &st->out_pos, &st->done, &st->s->stopping, stream_fill_cb, st, buf, max);
}

/* Prompt tokens for a parsed request; status on failure. */
static int request_tokens(struct hive_server *s, const struct srv_request *r, int32_t **ids, int *n,
                          struct srv_error *e) {
    if (r->kind == SRV_COMPLETION) {
        *n = srv_prompt_text(s->tok, r->prompt, ids);
    } else {
        struct hive_chat_msg *m = calloc((size_t)r->n_msgs, sizeof *m);
        if (!m) return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        for (int i = 0; i < r->n_msgs; i++) m[i] = (struct hive_chat_msg){r->msgs[i].role, r->msgs[i].content};
        *n = srv_prompt_chat(s->tok, s->tmpl, m, r->n_msgs, ids);
        free(m);
    }
    if (*n < 0) return srv_errorf(e, 500, "server_error", NULL, NULL, "cannot tokenize the prompt");
    if (*n == 0) {
        free(*ids);
        return srv_errorf(e, 400, "invalid_request_error", r->kind == SRV_CHAT ? "messages" : "prompt", "empty_prompt",
                          "the prompt is empty");
    }
    return 0;
}

static enum MHD_Result handle_generate(struct hive_server *s, struct MHD_Connection *c, struct conn *cn) {
    struct srv_request r;
    struct srv_error e;
    int kind = cn->route == R_CHAT ? SRV_CHAT : SRV_COMPLETION;
    if (srv_request_parse(cn->body.p ? cn->body.p : "", cn->body.n, kind, &r, &e)) return send_error(s, c, &e);
    if (!model_ok(s, r.model)) {
        srv_errorf(&e, 404, "invalid_request_error", "model", "model_not_found",
                   "the model '%s' does not exist; this server serves '%s' (or 'hive')", r.model, s->model_id);
        srv_request_free(&r);
        return send_error(s, c, &e);
    }
    int32_t *ids = NULL;
    int n_prompt = 0;
    if (request_tokens(s, &r, &ids, &n_prompt, &e)) {
        srv_request_free(&r);
        return send_error(s, c, &e);
    }
    if (s->be.n_ctx > 0 && n_prompt >= s->be.n_ctx) {
        srv_errorf(&e, 400, "invalid_request_error", kind == SRV_CHAT ? "messages" : "prompt", "context_length_exceeded",
                   "this model's context holds %d tokens; the prompt is %d tokens (and at least one must be generated)",
                   s->be.n_ctx, n_prompt);
        free(ids);
        srv_request_free(&r);
        return send_error(s, c, &e);
    }
    int max_tokens = r.max_tokens > 0 ? r.max_tokens : s->default_max_tokens;
    struct stream *st = calloc(1, sizeof *st);
    if (!st) {
        free(ids);
        srv_request_free(&r);
        return send_text(c, 500, "application/json", NULL);
    }
    st->s = s;
    snprintf(st->id, sizeof st->id, "%s-%lu", kind == SRV_CHAT ? "chatcmpl" : "cmpl", atomic_fetch_add(&s->next_id, 1));
    st->meta = (struct srv_resp_meta){kind, st->id, (long long)time(NULL), r.model ? r.model : s->model_id};
    st->include_usage = r.include_usage;
    int rc = srv_gen_start(&st->gen, &s->be, s->tok, ids, n_prompt, max_tokens, &r.sp, (const char *const *)r.stop,
                           r.n_stop, &e);
    free(ids);
    if (rc) {
        free(st);
        srv_request_free(&r);
        return send_error(s, c, &e);
    }
    srv_gen_track(&st->gen, s->obs, st->id, kind, max_tokens, r.stream);
    if (s->log) fprintf(s->log, "hive serve: %s %d prompt tokens, max %d%s\n", st->id, n_prompt, max_tokens, r.stream ? ", streamed" : "");
    /* meta.model must outlive r: point it at the server's copy */
    st->meta.model = !r.model || !strcmp(r.model, s->model_id) ? s->model_id : "hive";

    if (r.stream) {
        srv_request_free(&r);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
        if (!resp) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result ret = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    srv_request_free(&r);
    struct srv_buf text = {0};
    while (!srv_gen_step(&st->gen, &text, STEP_MS)) {
        if (atomic_load(&s->stopping)) {
            srv_errorf(&e, 503, "server_error", NULL, NULL, "the server is shutting down");
            srv_buf_free(&text);
            stream_free(st);
            return send_error(s, c, &e);
        }
    }
    char *body;
    int status = 200;
    if (st->gen.finish == SRV_FINISH_ERROR) {
        srv_errorf(&e, 500, "server_error", NULL, NULL, "generation failed: %s", st->gen.error);
        body = srv_json_error(&e);
        status = 500;
    } else {
        body = srv_json_completion(&st->meta, text.p ? text.p : "", text.n, st->gen.finish, st->gen.n_prompt, st->gen.n_gen);
    }
    srv_buf_free(&text);
    stream_free(st);
    return send_text(c, status, "application/json", body);
}

static enum MHD_Result handle_jobs(struct hive_server *s, struct MHD_Connection *c, struct conn *cn) {
    struct srv_error e;
    if (!s->jobs) {
        srv_errorf(&e, 404, "invalid_request_error", NULL, "not_found", "this server runs no jobs");
        return send_error(s, c, &e);
    }
    if (cn->route == R_JOB_EVENTS) {
        struct MHD_Response *r = srv_jobs_events(s->jobs, cn->job_id, &e);
        if (!r) return send_error(s, c, &e);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    char *b = cn->route == R_JOBS ? srv_jobs_post(s->jobs, cn->body.p, cn->body.n, &e) : srv_jobs_get(s->jobs, cn->job_id, &e);
    if (!b) return send_error(s, c, &e);
    return send_text(c, cn->route == R_JOBS ? 202 : 200, "application/json", b);
}

static enum MHD_Result handle(struct hive_server *s, struct MHD_Connection *c, struct conn *cn) {
    switch (cn->route) {
    case R_HEALTH: {
        char *b = strdup("{\"status\":\"ok\"}");
        return send_text(c, 200, "application/json", b);
    }
    case R_MODELS: return send_text(c, 200, "application/json", srv_json_models(s->model_id, s->started));
    case R_STATS: {
        struct hive_sched_stats st;
        memset(&st, 0, sizeof st);
        s->be.stats(s->be.ctx, &st);
        return send_text(c, 200, "application/json", srv_json_stats(&st));
    }
    case R_CLUSTER: {
        char *b = s->obs ? srv_json_cluster(s->obs, s->model_id, s->started) : NULL;
        return send_text(c, 200, "application/json", b);
    }
    case R_METRICS: {
        char *b = s->obs ? srv_metrics_text(s->obs, s->model_id) : NULL;
        if (!b) return send_text(c, 500, "application/json", NULL);
        return send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    }
    case R_JOBS:
    case R_JOB:
    case R_JOB_EVENTS: return handle_jobs(s, c, cn);
    default: return handle_generate(s, c, cn);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls) {
    (void)version;
    struct hive_server *s = cls;
    struct conn *cn = *con_cls;
    struct srv_error e;
    if (!cn) { /* headers are in: decide what can be decided before the body */
        int method_ok;
        enum route r = route_of(url, method, &method_ok);
        if (r == R_NONE) {
            srv_errorf(&e, 404, "invalid_request_error", NULL, "not_found", "no such endpoint: %s %s", method, url);
            return send_error(s, c, &e);
        }
        if (!method_ok) {
            srv_errorf(&e, 405, "invalid_request_error", NULL, "method_not_allowed", "%s is not allowed on %s", method, url);
            return send_error(s, c, &e);
        }
        if (r == R_ASSET) return send_asset(c, url);
        if (r != R_HEALTH && !key_ok(s, c)) {
            srv_errorf(&e, 401, "invalid_request_error", NULL, "invalid_api_key",
                       "missing or wrong API key (send Authorization: Bearer KEY)");
            return send_error(s, c, &e);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body) {
            srv_errorf(&e, 413, "invalid_request_error", NULL, "request_too_large",
                       "the body is %s bytes; the limit is %zu", cl, s->max_body);
            return send_error(s, c, &e);
        }
        cn = calloc(1, sizeof *cn);
        if (!cn) return MHD_NO;
        cn->route = r;
        cn->body.max = s->max_body;
        if (r == R_JOB || r == R_JOB_EVENTS) { /* the id: the path's segment after JOBS_PATH/ */
            const char *id = url + strlen(JOBS_PATH "/");
            snprintf(cn->job_id, sizeof cn->job_id, "%.*s", (int)strcspn(id, "/"), id);
        }
        *con_cls = cn;
        return MHD_YES;
    }
    if (*upload_size) { /* a piece of the body; past the limit it is read and dropped */
        srv_buf_put(&cn->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (cn->body.full) {
        srv_errorf(&e, 413, "invalid_request_error", NULL, "request_too_large", "the body is over the limit of %zu bytes",
                   s->max_body);
        return send_error(s, c, &e);
    }
    return handle(s, c, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    struct conn *cn = *con_cls;
    if (!cn) return;
    srv_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

/* ---- start / stop ---- */

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a);
    }
    return 0;
}

int srv_start(hive_server **out, const struct srv_backend *be, const hive_tokenizer *tok, int chat_template,
              const struct hive_server_opts *o, char *err) {
    return srv_start_ex(out, be, NULL, tok, chat_template, o, err);
}

int srv_start_ex(hive_server **out, const struct srv_backend *be, const struct srv_backend_more *more,
                 const hive_tokenizer *tok, int chat_template, const struct hive_server_opts *o, char *err) {
    *out = NULL;
    const char *host = o->host && *o->host ? o->host : "127.0.0.1";
    if (o->port < 0 || o->port > 65535) return hive_errf(err, HIVE_ERR_INVAL, "bad port %d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai || !ai) return hive_errf(err, HIVE_ERR_INVAL, "cannot resolve %s: %s", host, gai_strerror(gai));
    struct hive_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    s->be = *be;
    s->tok = tok;
    s->tmpl = chat_template;
    s->max_body = o->max_body ? o->max_body : HIVE_SERVER_DEFAULT_MAX_BODY;
    s->default_max_tokens = o->default_max_tokens > 0 ? o->default_max_tokens : HIVE_SERVER_DEFAULT_MAX_TOKENS;
    s->log = o->log;
    s->started = (long long)time(NULL);
    atomic_init(&s->stopping, 0);
    atomic_init(&s->next_id, 1);
    snprintf(s->model_id, sizeof s->model_id, "%s", o->model_id && *o->model_id ? o->model_id : "hive");
    if (o->api_key && *o->api_key && !(s->api_key = strdup(o->api_key))) {
        freeaddrinfo(ai);
        free(s);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    if (!s->api_key && !is_loopback(ai->ai_addr))
        fprintf(stderr, "hive serve: WARNING: listening on %s without --api-key: anyone who can reach it can use it\n", host);
    s->obs = srv_obs_start(&s->be, more); /* NULL (no memory, no thread): no dashboard data, the API still works */
    if (o->jobs && !(s->jobs = srv_jobs_new(o->jobs))) {
        srv_obs_stop(s->obs);
        freeaddrinfo(ai);
        free(s->api_key);
        free(s);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT, 512u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        srv_jobs_free(s->jobs);
        srv_obs_stop(s->obs);
        free(s->api_key);
        free(s);
        return hive_errf(err, HIVE_ERR_IO, "cannot listen on %s:%d (in use?)", host, o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    *out = s;
    return HIVE_OK;
}

int hive_server_port(const hive_server *s) { return s->port; }

void hive_server_stop(hive_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, 1);
    srv_jobs_stop(s->jobs); /* event streams end, jobs are cancelled */
    MHD_stop_daemon(s->d); /* joins every connection thread; each sees stopping within STEP_MS */
    srv_jobs_free(s->jobs);
    srv_obs_stop(s->obs);
    free(s->api_key);
    free(s);
}

void hive_server_model_id(const char *path, char *buf, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
    snprintf(buf, cap, "%.*s", (int)n, base);
}
