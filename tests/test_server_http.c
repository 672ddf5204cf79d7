/* test_server_http.c - the HTTP layer (src/server/http.c) over real
 * sockets, with a fake scheduler behind it so that it runs without a
 * cluster: every error status and body, streamed == non-streamed, stop
 * strings, EOS, 429 from a full queue, and clients that hang up mid-stream
 * releasing their sequences. The real scheduler end to end: test_serve.c. */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "check.h"
#include "hive/gguf.h"
#include "http_util.h"
#include "server/srv.h"

/* ---- the fake scheduler: each sequence replays a fixed story ---- */

#define STORY " Once upon a time, there was a little girl named Lily. She liked to play."

struct fake {
    pthread_mutex_t mu;
    int live;        /* submitted and not released */
    int busy;        /* submit answers HIVE_ERR_BUSY */
    int delay_ms;    /* per token */
    int32_t story[128];
    int n_story;
    int32_t eos;
};

struct fake_seq {
    struct fake *f;
    int max_tokens, pos, eos_at; /* eos_at: emit EOS after this many story tokens (-1: never) */
};

static struct fake F = {.mu = PTHREAD_MUTEX_INITIALIZER, .delay_ms = 2};

static int fake_submit(void *ctx, const struct hive_seq_params *p, void **seq, char *err) {
    struct fake *f = ctx;
    if (f->busy) return hive_errf(err, HIVE_ERR_BUSY, "queue full");
    struct fake_seq *q = calloc(1, sizeof *q);
    q->f = f;
    q->max_tokens = p->max_tokens;
    q->eos_at = p->sampling.seed == 7 ? 5 : -1; /* seed 7: the model "ends its answer" after 5 tokens */
    pthread_mutex_lock(&f->mu);
    f->live++;
    pthread_mutex_unlock(&f->mu);
    *seq = q;
    return 0;
}

static int fake_next(void *seq, int32_t *tok, int timeout_ms) {
    (void)timeout_ms;
    struct fake_seq *q = seq;
    struct timespec ts = {0, (long)q->f->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    if (q->pos >= q->max_tokens) return 0;
    if (q->eos_at >= 0 && q->pos == q->eos_at) *tok = q->f->eos;
    else *tok = q->f->story[q->pos % q->f->n_story];
    q->pos++;
    return 1;
}

static int fake_finish(void *seq) { (void)seq; return HIVE_FINISH_LENGTH; }
static const char *fake_error(void *seq) { (void)seq; return ""; }

static void fake_release(void *seq) {
    struct fake_seq *q = seq;
    pthread_mutex_lock(&q->f->mu);
    q->f->live--;
    pthread_mutex_unlock(&q->f->mu);
    free(q);
}

static void fake_stats(void *ctx, struct hive_sched_stats *st) {
    struct fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    st->running = f->live;
    pthread_mutex_unlock(&f->mu);
}

static int live(void) {
    pthread_mutex_lock(&F.mu);
    int n = F.live;
    pthread_mutex_unlock(&F.mu);
    return n;
}

/* ---- checks ---- */

static char base[128];
static const char *KEY = "sk-test-123";

static void expect_error(const char *method, const char *path, const char *body, const char *key, long status,
                         const char *code, const char *param) {
    struct hu_resp r;
    int rc = hu_request(base, method, path, body, key, &r);
    char p[128] = "";
    const char *c = hu_error_code(r.body.p, p, sizeof p);
    CHECKF(rc == 0 && r.status == status, "%s %s: status %ld, want %ld: %s", method, path, r.status, status, r.body.p);
    CHECKF(c != NULL, "%s %s: not an OpenAI error body: %s", method, path, r.body.p);
    if (c && code) CHECKF(!strcmp(c, code), "%s %s: code '%s', want '%s'", method, path, c, code);
    if (c && param) CHECKF(!strcmp(p, param), "%s %s: param '%s', want '%s'", method, path, p, param);
    if (status == 429) CHECKF(r.headers.p && strstr(r.headers.p, "Retry-After:"), "429 without Retry-After");
    hu_free(&r);
}

/* The story's text for n tokens. */
static void story_text(const hive_tokenizer *t, int n, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        char piece[64];
        int l = hive_token_to_piece(t, F.story[i % F.n_story], 0, piece, sizeof piece);
        if (l > 0 && len + (size_t)l < cap) memcpy(out + len, piece, (size_t)l), len += (size_t)l, out[len] = 0;
    }
}

static void good_request(const hive_tokenizer *t, const char *path, int stream, int max_tokens, const char *extra,
                         const char *want_finish, int want_tokens) {
    char body[1024], want[2048], got[2048], finish[32];
    const char *in = !strcmp(path, "/v1/chat/completions") ? "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]"
                                                          : "\"prompt\":\"Once\"";
    snprintf(body, sizeof body, "{\"model\":\"stories260K\",%s,\"max_tokens\":%d,\"stream\":%s%s}", in, max_tokens,
             stream ? "true" : "false", extra ? extra : "");
    struct hu_resp r;
    CHECK(hu_request(base, "POST", path, body, KEY, &r) == 0);
    CHECKF(r.status == 200, "%s: %ld %s", body, r.status, r.body.p);
    int n_prompt = 0, n_gen = 0;
    int rc = stream ? hu_stream_text(r.body.p, got, sizeof got, finish, sizeof finish)
                    : hu_answer(r.body.p, got, sizeof got, finish, sizeof finish, &n_prompt, &n_gen);
    CHECKF(rc == 0, "bad answer shape: %s", r.body.p);
    story_text(t, want_tokens, want, sizeof want);
    CHECKF(!strcmp(got, want), "%s: got '%s' want '%s'", body, got, want);
    CHECKF(!strcmp(finish, want_finish), "%s: finish %s want %s", body, finish, want_finish);
    if (!stream && rc == 0) CHECK(n_prompt > 0 && n_gen > 0);
    if (stream) CHECKF(r.headers.p && strstr(r.headers.p, "text/event-stream"), "content type: %s", r.headers.p);
    hu_free(&r);
}

/* Streams and hangs up after the first bytes of content. */
static size_t hang_up(char *ptr, size_t size, size_t nmemb, void *ud) {
    (void)ptr;
    int *calls = ud;
    return ++*calls >= 3 ? 0 : size * nmemb; /* returning less aborts the transfer */
}

static void *hang_up_client(void *arg) {
    (void)arg;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s/v1/completions", base);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer sk-test-123");
    int calls = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"prompt\":\"x\",\"max_tokens\":100000,\"stream\":true}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hang_up);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &calls);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

int main(void) {
    char path[512], err[HIVE_ERR_LEN];
    const char *p = shared_path(path, sizeof path, "models/stories260K.gguf");
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hive_gguf *g = NULL;
    hive_tokenizer *t = NULL;
    if (hive_gguf_open(&g, p, err) || hive_tokenizer_load(&t, g, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    F.n_story = hive_tokenize(t, STORY, strlen(STORY), 0, 0, F.story, 128);
    F.eos = hive_tokenizer_eos(t);
    CHECK(F.n_story > 10 && F.eos >= 0);
    struct srv_backend be = {.ctx = &F, .submit = fake_submit, .next = fake_next, .finish = fake_finish,
                             .error = fake_error, .release = fake_release, .stats = fake_stats, .n_ctx = 64};
    struct hive_server_opts o = {.port = 0, .api_key = KEY, .max_body = 4096, .model_id = "stories260K"};
    hive_server *s = NULL;
    CHECK(srv_start(&s, &be, t, HIVE_CHAT_NONE, &o, err) == 0);
    if (!s) return check_result("test_server_http");
    snprintf(base, sizeof base, "http://127.0.0.1:%d", hive_server_port(s));

    struct hu_resp r;
    CHECK(hu_request(base, "GET", "/health", NULL, NULL, &r) == 0 && r.status == 200);
    hu_free(&r);
    CHECK(hu_request(base, "GET", "/v1/models", NULL, KEY, &r) == 0 && r.status == 200 && strstr(r.body.p, "\"stories260K\""));
    hu_free(&r);
    CHECK(hu_request(base, "GET", "/v1/hive/stats", NULL, KEY, &r) == 0 && r.status == 200 && strstr(r.body.p, "\"running\":0"));
    hu_free(&r);

    /* every bad request gets its status and an OpenAI error body */
    const char *chat = "/v1/chat/completions";
    expect_error("POST", chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, 401, "invalid_api_key", NULL);
    expect_error("POST", chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "sk-wrong", 401, "invalid_api_key", NULL);
    expect_error("GET", "/v1/models", NULL, "sk-test-12", 401, "invalid_api_key", NULL);
    expect_error("POST", chat, "{\"messages\":[{\"role\":", KEY, 400, "invalid_json", "");
    expect_error("POST", chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", KEY, 400, NULL, "temperature");
    expect_error("POST", chat, "{\"messages\":[]}", KEY, 400, NULL, "messages");
    expect_error("POST", chat, "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", KEY, 404, "model_not_found", "model");
    expect_error("POST", chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}", KEY, 400, NULL, "n");
    char big[8192];
    snprintf(big, sizeof big, "{\"prompt\":\"");
    for (int i = 0; i < 100; i++) strcat(big, "once upon a time ");
    strcat(big, "\"}");
    expect_error("POST", "/v1/completions", big, KEY, 400, "context_length_exceeded", "prompt");
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "{\"prompt\":\"", 11);
    expect_error("POST", "/v1/completions", big, KEY, 413, "request_too_large", NULL);
    expect_error("GET", "/v1/nothing", NULL, KEY, 404, "not_found", NULL);
    expect_error("GET", chat, NULL, KEY, 405, "method_not_allowed", NULL);
    expect_error("POST", "/v1/models", "{}", KEY, 405, "method_not_allowed", NULL);
    F.busy = 1;
    expect_error("POST", chat, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", KEY, 429, "rate_limit_exceeded", NULL);
    F.busy = 0;

    /* and good requests still work, streamed and not, with the same text */
    good_request(t, chat, 0, 8, NULL, "length", 8);
    good_request(t, chat, 1, 8, NULL, "length", 8);
    good_request(t, "/v1/completions", 0, 12, NULL, "length", 12);
    good_request(t, "/v1/completions", 1, 12, ",\"stream_options\":{\"include_usage\":true}", "length", 12);
    good_request(t, "/v1/completions", 0, 30, ",\"seed\":7", "stop", 5); /* EOS after 5 tokens */
    good_request(t, "/v1/completions", 1, 30, ",\"seed\":7", "stop", 5);
    /* stop strings: "little girl" spans tokens; the text ends before it */
    char want[512];
    story_text(t, F.n_story, want, sizeof want);
    char body[512], got[512], finish[32];
    for (int stream = 0; stream < 2; stream++) {
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"max_tokens\":60,\"stop\":[\"zzz\",\"tle gi\"],\"stream\":%s}", stream ? "true" : "false");
        CHECK(hu_request(base, "POST", "/v1/completions", body, KEY, &r) == 0 && r.status == 200);
        int rc = stream ? hu_stream_text(r.body.p, got, sizeof got, finish, sizeof finish)
                        : hu_answer(r.body.p, got, sizeof got, finish, sizeof finish, NULL, NULL);
        const char *cut = strstr(want, "tle gi");
        CHECKF(rc == 0 && cut && strlen(got) == (size_t)(cut - want) && !strncmp(got, want, strlen(got)) && !strcmp(finish, "stop"),
               "stop: '%s' (%s)", got, finish);
        hu_free(&r);
    }
    CHECK(live() == 0);

    /* clients that hang up mid-stream release their sequences */
    pthread_t th[8];
    for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, hang_up_client, NULL);
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    int waited = 0;
    while (live() > 0 && waited < 5000) {
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
        waited += 20;
    }
    CHECKF(live() == 0, "%d sequences still held %d ms after their clients hung up", live(), waited);
    CHECK(hu_request(base, "GET", "/v1/hive/stats", NULL, KEY, &r) == 0 && r.status == 200 && strstr(r.body.p, "\"running\":0"));
    hu_free(&r);

    /* stopping with a stream in flight ends it and releases it */
    pthread_t one;
    pthread_create(&one, NULL, hang_up_client, NULL); /* hangs up after a few chunks anyway */
    hive_server_stop(s);
    pthread_join(one, NULL);
    CHECK(live() == 0);
    hive_tokenizer_free(t);
    hive_gguf_close(g);
    curl_global_cleanup();
    return check_result("test_server_http");
}
