/* http_util.h - a small libcurl client for the server tests: one request
 * with its status, body and headers; SSE streams split into their events. */
#ifndef HIVE_TEST_HTTP_UTIL_H
#define HIVE_TEST_HTTP_UTIL_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hu_buf {
    char *p;
    size_t n;
};

struct hu_resp {
    long status;
    struct hu_buf body, headers;
};

static size_t hu_collect(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct hu_buf *b = ud;
    size_t n = size * nmemb;
    char *p = realloc(b->p, b->n + n + 1);
    if (!p) return 0;
    memcpy(p + b->n, ptr, n);
    b->p = p;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

static inline void hu_free(struct hu_resp *r) {
    free(r->body.p);
    free(r->headers.p);
    memset(r, 0, sizeof *r);
}

/* method "GET"/"POST"/...; body NULL for none; key NULL for no Authorization.
 * Returns the CURLcode. */
static inline int hu_request(const char *base, const char *method, const char *path, const char *body, const char *key,
                             struct hu_resp *r) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[512], auth[512];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hu_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hu_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body.p) hu_collect("", 1, 0, &r->body);
    return (int)rc;
}

/* The error object of an OpenAI error body has message, type, param and
 * code; returns its code ("" when null) or NULL when the shape is wrong.
 * *param gets the param ("" when null). Static storage. */
static inline const char *hu_error_code(const char *body, char *param, size_t cap) {
    static char code[128];
    cJSON *j = cJSON_Parse(body);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    const char *res = NULL;
    if (e && cJSON_IsString(cJSON_GetObjectItem(e, "message")) && cJSON_IsString(cJSON_GetObjectItem(e, "type")) &&
        cJSON_HasObjectItem(e, "param") && cJSON_HasObjectItem(e, "code")) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(e, "code"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(e, "param"));
        snprintf(code, sizeof code, "%s", c ? c : "");
        if (param) snprintf(param, cap, "%s", p ? p : "");
        res = code;
    }
    cJSON_Delete(j);
    return res;
}

/* The text of a non-streamed answer (chat content or completion text) into
 * out; finish reason into finish. 0, or -1 when the shape is wrong. */
static inline int hu_answer(const char *body, char *out, size_t cap, char *finish, size_t fcap, int *n_prompt, int *n_gen) {
    cJSON *j = cJSON_Parse(body);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    cJSON *msg = cJSON_GetObjectItem(c0, "message");
    const char *t = msg ? cJSON_GetStringValue(cJSON_GetObjectItem(msg, "content")) : cJSON_GetStringValue(cJSON_GetObjectItem(c0, "text"));
    const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason"));
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    int rc = t && f && u ? 0 : -1;
    if (!rc) {
        snprintf(out, cap, "%s", t);
        snprintf(finish, fcap, "%s", f);
        if (n_prompt) *n_prompt = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(u, "prompt_tokens"));
        if (n_gen) *n_gen = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(u, "completion_tokens"));
        if ((int)cJSON_GetNumberValue(cJSON_GetObjectItem(u, "total_tokens")) !=
            (int)cJSON_GetNumberValue(cJSON_GetObjectItem(u, "prompt_tokens")) +
                (int)cJSON_GetNumberValue(cJSON_GetObjectItem(u, "completion_tokens")))
            rc = -1;
    }
    cJSON_Delete(j);
    return rc;
}

/* Joins the text of an SSE stream's chunks into out; finish reason into
 * finish. Checks the framing: every event is "data: {json}\n\n" (comments
 * ": ...\n\n" allowed), the last is "data: [DONE]", and no chunk follows the
 * one with the finish reason except a usage chunk. 0, or -1. */
static inline int hu_stream_text(const char *body, char *out, size_t cap, char *finish, size_t fcap) {
    size_t len = 0;
    int done = 0, finished = 0;
    out[0] = finish[0] = '\0';
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end || done) return -1;
        if (*p == ':') {
            p = end + 2;
            continue;
        }
        if (strncmp(p, "data: ", 6)) return -1;
        p += 6;
        if (!strncmp(p, "[DONE]\n\n", 8)) {
            done = 1;
            p += 8;
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(p, (size_t)(end - p));
        if (!j) return -1;
        if (cJSON_GetObjectItem(j, "error")) {
            cJSON_Delete(j);
            return -1;
        }
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        if (c0) {
            if (finished) {
                cJSON_Delete(j);
                return -1;
            }
            cJSON *d = cJSON_GetObjectItem(c0, "delta");
            const char *t = d ? cJSON_GetStringValue(cJSON_GetObjectItem(d, "content")) : cJSON_GetStringValue(cJSON_GetObjectItem(c0, "text"));
            if (t) {
                size_t n = strlen(t);
                if (len + n < cap) memcpy(out + len, t, n + 1), len += n;
            }
            const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason"));
            if (f) snprintf(finish, fcap, "%s", f), finished = 1;
        }
        cJSON_Delete(j);
        p = end + 2;
    }
    return done && finished ? 0 : -1;
}

#endif
