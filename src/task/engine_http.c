/* engine_http.c - a worker's tasks on any OpenAI-compatible server (see
 * engine.h): POST {url}/v1/completions with the prompt, or
 * {url}/v1/chat/completions with the prompt as one user message, not
 * streamed; the answer is choices[0].text (or .message.content) and the
 * counts come from "usage". References: the OpenAI API reference
 * (completions, chat completions), llama.cpp's server README.
 * Non-goals: streaming, API keys (a local server needs none; put one in
 * front with a proxy). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "hive/core.h"

/* A reply larger than this is refused: an answer is text, not a file. */
#define HTTP_REPLY_CAP (WIRE_TEXT_CAP * 2)

struct engine_http {
    engine e;
    char *url, *model;
    int chat;
};

static char *request_body(const struct engine_http *h, const struct wire_task *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", h->model);
    if (h->chat) {
        cJSON *msgs = cJSON_AddArrayToObject(o, "messages"), *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", t->prompt);
        cJSON_AddItemToArray(msgs, m);
    } else {
        cJSON_AddStringToObject(o, "prompt", t->prompt);
    }
    cJSON_AddNumberToObject(o, "max_tokens", t->max_tokens);
    cJSON_AddNumberToObject(o, "temperature", t->sp.temperature);
    cJSON_AddNumberToObject(o, "top_p", t->sp.top_p);
    cJSON_AddNumberToObject(o, "seed", (double)t->sp.seed);
    cJSON_AddBoolToObject(o, "stream", 0);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int parse_reply(const struct engine_http *h, const char *body, struct engine_answer *a, char *err) {
    cJSON *doc = cJSON_Parse(body);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "choices"), 0);
    const char *text = h->chat ? cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content"))
                               : cJSON_GetStringValue(cJSON_GetObjectItem(c0, "text"));
    if (!text) {
        cJSON_Delete(doc);
        return hive_errf(err, HIVE_ERR_FORMAT, "the server's reply has no %s",
                         h->chat ? "choices[0].message.content" : "choices[0].text");
    }
    cJSON *usage = cJSON_GetObjectItem(doc, "usage");
    cJSON *pt = cJSON_GetObjectItem(usage, "prompt_tokens"), *ct = cJSON_GetObjectItem(usage, "completion_tokens");
    /* Servers that give no usage are credited with nothing countable. */
    a->n_prompt = cJSON_IsNumber(pt) && pt->valuedouble >= 0 && pt->valuedouble < 1e9 ? (int)pt->valuedouble : 0;
    a->n_gen = cJSON_IsNumber(ct) && ct->valuedouble >= 0 && ct->valuedouble < 1e9 ? (int)ct->valuedouble : 0;
    a->layer_passes = 0;
    a->text = strdup(text);
    cJSON_Delete(doc);
    return a->text ? 0 : hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
}

/* One request (body NULL: GET) to h->url + path; the reply's body in *r
 * when the status is 200. */
static int perform(const struct engine_http *h, const char *path, const char *body, struct hive_membuf *r, char *err) {
    char url[2048], curl_err[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", h->url, path);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (!c || !hdrs) {
        curl_slist_free_all(hdrs);
        if (c) curl_easy_cleanup(c);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hive_membuf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK)
        rc = hive_errf(err, HIVE_ERR_IO, "%s: %s", url,
                       r->too_big ? "reply too large" : curl_err[0] ? curl_err : curl_easy_strerror(cc));
    else if (status != 200)
        rc = hive_errf(err, HIVE_ERR_IO, "%s: HTTP %ld: %.120s", url, status, r->p ? r->p : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

static int http_run(engine *e, const struct wire_task *t, struct engine_answer *a, char *err) {
    struct engine_http *h = (struct engine_http *)e;
    memset(a, 0, sizeof *a);
    char *body = request_body(h, t);
    struct hive_membuf r = {.max = HTTP_REPLY_CAP};
    int rc = body ? perform(h, h->chat ? "/v1/chat/completions" : "/v1/completions", body, &r, err)
                  : hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    if (!rc) rc = parse_reply(h, r.p ? r.p : "", a, err);
    free(r.p);
    cJSON_free(body);
    return rc;
}

/* The server's first model (GET /v1/models: data[0].id), for servers that
 * want a "model" (Ollama does; llama.cpp's server takes any); NULL when it
 * lists none. */
static char *first_model(const struct engine_http *h) {
    struct hive_membuf r = {.max = HTTP_REPLY_CAP};
    char err[HIVE_ERR_LEN];
    char *id = NULL;
    if (!perform(h, "/v1/models", NULL, &r, err)) {
        cJSON *doc = cJSON_Parse(r.p ? r.p : "");
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "data"), 0), "id"));
        if (s) id = strdup(s);
        cJSON_Delete(doc);
    }
    free(r.p);
    return id;
}

static void http_close(engine *e) {
    struct engine_http *h = (struct engine_http *)e;
    if (!h) return;
    free(h->url);
    free(h->model);
    free(h);
}

int engine_http_open(engine **out, const char *url, const char *model, int chat, char *err) {
    *out = NULL;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return hive_errf(err, HIVE_ERR_INVAL, "--backend %s: an http:// or https:// URL", url);
    struct engine_http *h = hive_calloc(1, sizeof *h);
    if (!h) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    h->e = (engine){http_run, http_close};
    h->url = strdup(url);
    h->chat = chat;
    size_t n = h->url ? strlen(h->url) : 0; /* "http://h:p/" and "http://h:p" alike */
    while (n > 0 && h->url[n - 1] == '/') h->url[--n] = 0;
    h->model = model ? strdup(model) : h->url ? first_model(h) : NULL;
    if (!h->model && !model) h->model = strdup("default");
    if (!h->url || !h->model) {
        http_close(&h->e);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    *out = &h->e;
    return 0;
}
