/* bench_serve.c - a load client for any OpenAI-compatible completions server
 * (`hive serve`, llama.cpp's `llama-server`, ...): aggregate decode tok/s and
 * time to first token with N concurrent streams.
 *
 * Every stream POSTs BASE/v1/completions with stream: true, temperature 0,
 * ignore_eos: true and cache_prompt: false (servers ignore fields they do not
 * know), all streams started at once through one curl multi handle. The
 * server-sent events are parsed as they arrive; per stream it records:
 *   t_start  - when the request was handed to curl,
 *   t_first  - the first chunk that carries text (TTFT = t_first - t_start),
 *   t_end    - the last byte ("data: [DONE]" or the connection's end),
 *   tokens   - the final chunk's usage.completion_tokens, else its
 *              timings.predicted_n (llama-server), else the chunks with text.
 * Each stream's prompt starts with its own number ("[r1 s05] ...") so no
 * server can answer one stream from another's prompt cache.
 *
 * Per run:
 *   agg_decode_tps = sum(tokens - 1) / (max t_end - min t_first)
 *                    the generation after the first token, over the window in
 *                    which the server was streaming;
 *   overall_tps    = sum(tokens) / (max t_end - min t_start), prefill included;
 *   ttft median and max over the streams; per-stream decode tok/s median.
 * Each figure is the median over --runs runs (one warm-up request first).
 * Prints a line per run on stderr and one JSON line per stream count on stdout.
 *
 * usage: bench_serve --url http://127.0.0.1:8080 [--streams 1,4,8,16]
 *          [--max-tokens 64] [--runs 3] [--prompt TEXT] [--model NAME]
 *          [--label NAME] [--timeout S] [--no-warmup] [--ban-tokens FIRST-LAST]
 *
 * Without --model the first id of GET /v1/models is sent (hive checks it).
 *
 * --ban-tokens sends logit_bias -100 (OpenAI's "ban") for a range of token
 * ids. With the random weights of `hive mkmodel` models, greedy decoding
 * emits lone UTF-8 bytes (<0x80>..<0xFF> are ids 131-258 of the built-in
 * vocab); llama-server (b10573) then fails the stream ("output that does not
 * match the expected Content-only format"), so its runs need --ban-tokens
 * 131-258. The same request goes to every server. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STREAMS 256
#define MAX_RUNS 32
#define MAX_COUNTS 16

static const char *DEFAULT_PROMPT =
    "Once upon a time, in a small village at the edge of a great forest, there lived an old "
    "clockmaker and his curious granddaughter. Every morning they opened the shop together, and "
    "every evening she asked him the same question about the tall clock in the corner.";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct stream {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    char *line; /* partial SSE line */
    size_t line_len, line_cap;
    double t_start, t_first, t_end;
    int chunks_text;   /* chunks whose choices[0].text was non-empty */
    int chunks_any;    /* chunks with a choices entry */
    int usage_tokens;  /* usage.completion_tokens, -1 if none */
    int timing_tokens; /* timings.predicted_n, -1 if none */
    int prompt_tokens; /* usage.prompt_tokens or timings.prompt_n, -1 if none */
    int done;          /* saw [DONE] */
    int failed;
    char err[256];
    char head[200]; /* the body's first bytes, for error messages */
    size_t head_len;
};

static void handle_event(struct stream *s, const char *data, double t) {
    if (!strcmp(data, "[DONE]")) {
        s->done = 1;
        return;
    }
    cJSON *j = cJSON_Parse(data);
    if (!j) return;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e) {
        cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
        snprintf(s->err, sizeof s->err, "server error: %s", cJSON_IsString(m) ? m->valuestring : "(no message)");
        s->failed = 1;
    }
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    if (c0) {
        s->chunks_any++;
        cJSON *text = cJSON_GetObjectItemCaseSensitive(c0, "text");
        if (cJSON_IsString(text) && text->valuestring[0]) {
            s->chunks_text++;
            if (s->t_first == 0) s->t_first = t;
        }
    }
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(usage)) {
        cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
        cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
        if (cJSON_IsNumber(ct)) s->usage_tokens = ct->valueint;
        if (cJSON_IsNumber(pt)) s->prompt_tokens = pt->valueint;
    }
    cJSON *timings = cJSON_GetObjectItemCaseSensitive(j, "timings");
    if (cJSON_IsObject(timings)) {
        cJSON *pn = cJSON_GetObjectItemCaseSensitive(timings, "predicted_n");
        cJSON *qn = cJSON_GetObjectItemCaseSensitive(timings, "prompt_n");
        if (cJSON_IsNumber(pn)) s->timing_tokens = pn->valueint;
        if (cJSON_IsNumber(qn) && s->prompt_tokens < 0) s->prompt_tokens = qn->valueint;
    }
    cJSON_Delete(j);
}

/* Splits the body into lines; "data: X" lines are events. */
static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    struct stream *s = ud;
    size_t len = sz * n;
    double t = now_s();
    s->t_end = t;
    for (size_t i = 0; i < len && s->head_len + 1 < sizeof s->head; i++)
        s->head[s->head_len++] = p[i] == '\n' ? ' ' : p[i];
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '\n') {
            if (s->line_len && s->line[s->line_len - 1] == '\r') s->line_len--;
            s->line[s->line_len] = 0;
            const char *l = s->line;
            if (!strncmp(l, "data:", 5)) {
                l += 5;
                while (*l == ' ') l++;
                handle_event(s, l, t);
            } else if (l[0] == '{') {
                handle_event(s, l, t); /* a non-streamed error body */
            }
            s->line_len = 0;
            continue;
        }
        if (s->line_len + 2 > s->line_cap) {
            size_t cap = s->line_cap ? s->line_cap * 2 : 4096;
            char *nl = realloc(s->line, cap);
            if (!nl) return 0;
            s->line = nl;
            s->line_cap = cap;
        }
        s->line[s->line_len++] = ch;
    }
    return len;
}

static int stream_tokens(const struct stream *s) {
    if (s->usage_tokens > 0) return s->usage_tokens;
    if (s->timing_tokens > 0) return s->timing_tokens;
    return s->chunks_text;
}

struct opts {
    const char *url, *prompt, *model, *label;
    int max_tokens, runs, warmup;
    int ban_lo, ban_hi; /* token ids sent with logit_bias -100 (ban_lo > ban_hi: none) */
    long timeout_s;
};

static char *make_body(const struct opts *o, const char *prompt, int max_tokens) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "prompt", prompt);
    cJSON_AddNumberToObject(j, "max_tokens", max_tokens);
    cJSON_AddNumberToObject(j, "temperature", 0);
    cJSON_AddBoolToObject(j, "stream", 1);
    cJSON_AddBoolToObject(j, "ignore_eos", 1);
    cJSON_AddBoolToObject(j, "cache_prompt", 0);
    cJSON *so = cJSON_AddObjectToObject(j, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
    if (o->ban_lo <= o->ban_hi) {
        cJSON *lb = cJSON_AddObjectToObject(j, "logit_bias");
        for (int t = o->ban_lo; t <= o->ban_hi; t++) {
            char id[16];
            snprintf(id, sizeof id, "%d", t);
            cJSON_AddNumberToObject(lb, id, -100);
        }
    }
    char *b = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return b;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct run_result {
    int ok;
    int tokens, prompt_tokens;
    double agg_decode_tps, overall_tps, ttft_med_ms, ttft_max_ms, stream_decode_med_tps, wall_s;
};

/* One run: n streams at once. Returns 0 when every stream finished cleanly. */
static int run_once(const struct opts *o, int n, int run_no, struct run_result *r) {
    static struct stream ss[MAX_STREAMS];
    char url[2048], prompt[8192];
    snprintf(url, sizeof url, "%s/v1/completions", o->url);
    memset(ss, 0, sizeof ss);
    memset(r, 0, sizeof *r);
    CURLM *m = curl_multi_init();
    if (!m) return -1;
    for (int i = 0; i < n; i++) {
        struct stream *s = &ss[i];
        s->usage_tokens = s->timing_tokens = s->prompt_tokens = -1;
        snprintf(prompt, sizeof prompt, "[r%d s%02d] %s", run_no, i, o->prompt);
        s->body = make_body(o, prompt, o->max_tokens);
        s->h = curl_easy_init();
        s->hdr = curl_slist_append(NULL, "Content-Type: application/json");
        s->hdr = curl_slist_append(s->hdr, "Accept: text/event-stream");
        s->hdr = curl_slist_append(s->hdr, "Expect:");
        if (!s->body || !s->h || !s->hdr) return -1;
        curl_easy_setopt(s->h, CURLOPT_URL, url);
        curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
        curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
        curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->h, CURLOPT_TIMEOUT, o->timeout_s);
        curl_easy_setopt(s->h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->h, CURLOPT_FORBID_REUSE, 1L);
    }
    /* Add them all, then start the clock for each as curl gets it. */
    for (int i = 0; i < n; i++) {
        ss[i].t_start = now_s();
        curl_multi_add_handle(m, ss[i].h);
    }
    int running = n;
    while (running) {
        if (curl_multi_perform(m, &running) != CURLM_OK) break;
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct stream *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK) {
                s->failed = 1;
                snprintf(s->err, sizeof s->err, "curl: %s", curl_easy_strerror(msg->data.result));
            } else if (code != 200) {
                s->failed = 1;
                if (!s->err[0]) snprintf(s->err, sizeof s->err, "HTTP %ld: %s", code, s->head);
            }
            if (s->t_end == 0) s->t_end = now_s();
        }
    }
    double min_start = 1e300, min_first = 1e300, max_end = 0;
    double ttft[MAX_STREAMS], sdec[MAX_STREAMS];
    int n_dec = 0, bad = 0, dec_tokens = 0;
    for (int i = 0; i < n; i++) {
        struct stream *s = &ss[i];
        int tok = stream_tokens(s);
        if (!s->failed && (tok <= 0 || s->t_first == 0)) {
            s->failed = 1;
            snprintf(s->err, sizeof s->err, "no tokens received");
        }
        if (s->failed) {
            fprintf(stderr, "bench_serve: stream %d: %s\n", i, s->err);
            bad++;
        } else {
            r->tokens += tok;
            dec_tokens += tok - 1;
            if (s->prompt_tokens > r->prompt_tokens) r->prompt_tokens = s->prompt_tokens;
            ttft[i] = (s->t_first - s->t_start) * 1e3;
            if (s->t_first < min_first) min_first = s->t_first;
            if (tok > 1 && s->t_end > s->t_first) sdec[n_dec++] = (tok - 1) / (s->t_end - s->t_first);
        }
        if (s->t_start < min_start) min_start = s->t_start;
        if (s->t_end > max_end) max_end = s->t_end;
        curl_multi_remove_handle(m, s->h);
        curl_easy_cleanup(s->h);
        curl_slist_free_all(s->hdr);
        cJSON_free(s->body);
        free(s->line);
    }
    curl_multi_cleanup(m);
    if (bad) return -1;
    r->ok = 1;
    r->wall_s = max_end - min_start;
    r->agg_decode_tps = max_end > min_first ? dec_tokens / (max_end - min_first) : 0;
    r->overall_tps = r->wall_s > 0 ? r->tokens / r->wall_s : 0;
    r->ttft_max_ms = 0;
    for (int i = 0; i < n; i++)
        if (ttft[i] > r->ttft_max_ms) r->ttft_max_ms = ttft[i];
    r->ttft_med_ms = median(ttft, n);
    r->stream_decode_med_tps = median(sdec, n_dec);
    return 0;
}

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
    char **buf = ud;
    size_t old = *buf ? strlen(*buf) : 0, len = sz * n;
    if (old + len > (1u << 20)) return 0;
    char *nb = realloc(*buf, old + len + 1);
    if (!nb) return 0;
    memcpy(nb + old, p, len);
    nb[old + len] = 0;
    *buf = nb;
    return len;
}

/* The first model id of GET BASE/v1/models, into out; 0 on success. */
static int first_model(const char *base, char *out, size_t cap) {
    char url[2048];
    char *body = NULL;
    snprintf(url, sizeof url, "%s/v1/models", base);
    CURL *h = curl_easy_init();
    if (!h) return -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    int ret = -1;
    cJSON *j = rc == CURLE_OK && body ? cJSON_Parse(body) : NULL;
    cJSON *data = j ? cJSON_GetObjectItemCaseSensitive(j, "data") : NULL;
    cJSON *m0 = cJSON_IsArray(data) ? cJSON_GetArrayItem(data, 0) : NULL;
    cJSON *id = m0 ? cJSON_GetObjectItemCaseSensitive(m0, "id") : NULL;
    if (cJSON_IsString(id)) {
        snprintf(out, cap, "%s", id->valuestring);
        ret = 0;
    }
    cJSON_Delete(j);
    free(body);
    return ret;
}

static int parse_counts(const char *s, int *out, int cap) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_STREAMS || n == cap) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --url http://HOST:PORT [--streams 1,4,8,16] [--max-tokens 64] [--runs 3]\n"
            "          [--prompt TEXT] [--model NAME] [--label NAME] [--timeout S] [--no-warmup]\n"
            "          [--ban-tokens FIRST-LAST]   logit_bias -100 for these token ids\n",
            argv0);
}

int main(int argc, char **argv) {
    struct opts o = {.url = NULL, .prompt = DEFAULT_PROMPT, .model = NULL, .label = "",
                     .max_tokens = 64, .runs = 3, .warmup = 1, .ban_lo = 1, .ban_hi = 0, .timeout_s = 600};
    int counts[MAX_COUNTS] = {1, 4, 8, 16}, n_counts = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-warmup")) {
            o.warmup = 0;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(argv[0]);
            return 0;
        }
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        i++;
        if (!strcmp(a, "--url")) o.url = v;
        else if (!strcmp(a, "--streams") || !strcmp(a, "-c")) {
            n_counts = parse_counts(v, counts, MAX_COUNTS);
            if (n_counts < 1) {
                fprintf(stderr, "bench_serve: bad --streams '%s' (1..%d, comma-separated)\n", v, MAX_STREAMS);
                return 2;
            }
        } else if (!strcmp(a, "--max-tokens") || !strcmp(a, "-n")) o.max_tokens = atoi(v);
        else if (!strcmp(a, "--runs")) o.runs = atoi(v);
        else if (!strcmp(a, "--prompt")) o.prompt = v;
        else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--label")) o.label = v;
        else if (!strcmp(a, "--timeout")) o.timeout_s = atol(v);
        else if (!strcmp(a, "--ban-tokens")) {
            if (sscanf(v, "%d-%d", &o.ban_lo, &o.ban_hi) != 2 || o.ban_lo < 0 || o.ban_hi < o.ban_lo ||
                o.ban_hi - o.ban_lo > 100000) {
                fprintf(stderr, "bench_serve: bad --ban-tokens '%s' (FIRST-LAST)\n", v);
                return 2;
            }
        }
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!o.url || o.max_tokens < 2 || o.max_tokens > 100000 || o.runs < 1 || o.runs > MAX_RUNS || o.timeout_s < 1) {
        usage(argv[0]);
        return 2;
    }
    size_t ul = strlen(o.url);
    char url[2048];
    snprintf(url, sizeof url, "%.*s", (int)(ul && o.url[ul - 1] == '/' ? ul - 1 : ul), o.url);
    o.url = url;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    char model[512];
    if (!o.model) {
        o.model = first_model(o.url, model, sizeof model) == 0 ? model : "default";
        fprintf(stderr, "bench_serve: model '%s'\n", o.model);
    }

    if (o.warmup) {
        struct opts w = o;
        w.max_tokens = 4;
        struct run_result r;
        if (run_once(&w, 1, 0, &r)) {
            fprintf(stderr, "bench_serve: warm-up request to %s failed\n", o.url);
            return 1;
        }
    }
    int rc = 0;
    for (int c = 0; c < n_counts; c++) {
        int n = counts[c];
        struct run_result rr[MAX_RUNS];
        double agg[MAX_RUNS], ovr[MAX_RUNS], tmed[MAX_RUNS], tmax[MAX_RUNS], sdec[MAX_RUNS];
        int ok = 0, tokens = 0, ptok = -1;
        for (int k = 0; k < o.runs; k++) {
            if (run_once(&o, n, k + 1, &rr[k])) {
                fprintf(stderr, "bench_serve: %s streams=%d run %d failed\n", o.label, n, k + 1);
                continue;
            }
            struct run_result *r = &rr[k];
            fprintf(stderr,
                    "bench_serve: %s streams=%d run %d: %d tokens in %.2f s, agg decode %.2f tok/s, overall %.2f tok/s, "
                    "ttft median %.0f ms max %.0f ms, per-stream decode %.2f tok/s\n",
                    o.label, n, k + 1, r->tokens, r->wall_s, r->agg_decode_tps, r->overall_tps, r->ttft_med_ms,
                    r->ttft_max_ms, r->stream_decode_med_tps);
            agg[ok] = r->agg_decode_tps;
            ovr[ok] = r->overall_tps;
            tmed[ok] = r->ttft_med_ms;
            tmax[ok] = r->ttft_max_ms;
            sdec[ok] = r->stream_decode_med_tps;
            tokens = r->tokens;
            ptok = r->prompt_tokens;
            ok++;
        }
        if (ok < o.runs) rc = 1;
        /* Per-run figures in run order, before median() sorts them. */
        cJSON *j = cJSON_CreateObject(), *pr = cJSON_CreateArray();
        for (int k = 0; k < ok; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "agg_decode_tps", round(agg[k] * 100) / 100);
            cJSON_AddNumberToObject(x, "overall_tps", round(ovr[k] * 100) / 100);
            cJSON_AddNumberToObject(x, "ttft_ms_median", round(tmed[k] * 10) / 10);
            cJSON_AddNumberToObject(x, "ttft_ms_max", round(tmax[k] * 10) / 10);
            cJSON_AddItemToArray(pr, x);
        }
        cJSON_AddStringToObject(j, "bench", "serve");
        cJSON_AddStringToObject(j, "label", o.label);
        cJSON_AddStringToObject(j, "url", o.url);
        cJSON_AddNumberToObject(j, "streams", n);
        cJSON_AddNumberToObject(j, "max_tokens", o.max_tokens);
        cJSON_AddNumberToObject(j, "prompt_tokens", ptok);
        cJSON_AddNumberToObject(j, "tokens_per_run", tokens);
        cJSON_AddNumberToObject(j, "runs", o.runs);
        cJSON_AddNumberToObject(j, "runs_ok", ok);
        cJSON_AddNumberToObject(j, "agg_decode_tps", round(median(agg, ok) * 100) / 100);
        cJSON_AddNumberToObject(j, "overall_tps", round(median(ovr, ok) * 100) / 100);
        cJSON_AddNumberToObject(j, "ttft_ms_median", round(median(tmed, ok) * 10) / 10);
        cJSON_AddNumberToObject(j, "ttft_ms_max", round(median(tmax, ok) * 10) / 10);
        cJSON_AddNumberToObject(j, "stream_decode_tps_median", round(median(sdec, ok) * 100) / 100);
        cJSON_AddItemToObject(j, "per_run", pr);
        char *line = cJSON_PrintUnformatted(j);
        printf("%s\n", line ? line : "{}");
        cJSON_free(line);
        cJSON_Delete(j);
        fflush(stdout);
    }
    curl_global_cleanup();
    return rc;
}
