/* request.c - an OpenAI request body -> struct srv_request, validated.
 *
 * Every field the server understands is type- and range-checked; a wrong
 * one is a 400 whose `param` names it. Unknown fields are ignored (clients
 * send many: user, logit_bias=null, ...), except those that would change
 * the answer in a way hive cannot honour (n > 1, logprobs, tools...).
 *
 * Sampling defaults follow OpenAI where it has one (temperature 1,
 * top_p 1) and hive's elsewhere (top_k 40, min_p 0.05). A missing seed is
 * drawn at random (OpenAI is not deterministic without one).
 *
 * presence_penalty and frequency_penalty (-2..2) go to the sampler, which
 * applies them over its recent-token window as llama.cpp does. */
#include <cjson/cJSON.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

int srv_errorf(struct srv_error *e, int status, const char *type, const char *param, const char *code,
               const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

static int bad_type(struct srv_error *e, const char *param, const char *what) {
    return srv_errorf(e, 400, "invalid_request_error", param, "invalid_type", "'%s' must be %s", param, what);
}

static int bad_value(struct srv_error *e, const char *param, const char *what) {
    return srv_errorf(e, 400, "invalid_request_error", param, "invalid_value", "'%s' must be %s", param, what);
}

/* Present and not JSON null. */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A number field in [lo, hi]; 0 when absent (out untouched), else the status. */
static int get_num(const cJSON *o, const char *name, double lo, double hi, double *out, struct srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return bad_type(e, name, "a number");
    if (!(v->valuedouble >= lo && v->valuedouble <= hi)) {
        char what[96];
        snprintf(what, sizeof what, "between %g and %g", lo, hi);
        return bad_value(e, name, what);
    }
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *o, const char *name, double lo, double hi, double *out, struct srv_error *e) {
    const cJSON *v = field(o, name);
    if (v && cJSON_IsNumber(v) && v->valuedouble != floor(v->valuedouble)) return bad_type(e, name, "an integer");
    return get_num(o, name, lo, hi, out, e);
}

static int get_bool(const cJSON *o, const char *name, int *out, struct srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return bad_type(e, name, "a boolean");
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A message's content: a string, or an array of {"type":"text","text":...}
 * parts (joined). NULL content is "" for assistant turns only. */
static int get_content(const cJSON *m, int assistant, char **out, const char *param, struct srv_error *e) {
    const cJSON *c = field(m, "content");
    if (!c) {
        if (assistant) {
            *out = strdup("");
            return *out ? 0 : srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        }
        return srv_errorf(e, 400, "invalid_request_error", param, "missing_field", "'%s' is required", param);
    }
    if (cJSON_IsString(c)) {
        *out = strdup(c->valuestring);
        return *out ? 0 : srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    if (!cJSON_IsArray(c)) return bad_type(e, param, "a string or an array of text parts");
    struct srv_buf b = {0};
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text)) {
            srv_buf_free(&b);
            return bad_value(e, param, "text parts ({\"type\":\"text\",\"text\":...}); other parts are not supported");
        }
        srv_buf_puts(&b, text->valuestring);
    }
    if (srv_buf_put(&b, "", 0)) {
        srv_buf_free(&b);
        return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    *out = b.p;
    return 0;
}

static int parse_messages(const cJSON *root, struct srv_request *r, struct srv_error *e) {
    const cJSON *msgs = field(root, "messages");
    if (!msgs) return srv_errorf(e, 400, "invalid_request_error", "messages", "missing_field", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return bad_type(e, "messages", "an array");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) return srv_errorf(e, 400, "invalid_request_error", "messages", "empty_array", "'messages' must not be empty");
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", r->n_msgs);
        if (!cJSON_IsObject(m)) return bad_type(e, param, "an object");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        snprintf(param, sizeof param, "messages[%d].role", r->n_msgs);
        if (!cJSON_IsString(role)) return bad_type(e, param, "a string");
        /* The role is written into the template text, so only known names pass. */
        const char *rn = role->valuestring;
        const char *canon = !strcmp(rn, "system") || !strcmp(rn, "developer") ? "system"
                            : !strcmp(rn, "user")                             ? "user"
                            : !strcmp(rn, "assistant")                        ? "assistant"
                                                                              : NULL;
        if (!canon) return bad_value(e, param, "one of system, developer, user, assistant");
        snprintf(param, sizeof param, "messages[%d].content", r->n_msgs);
        struct srv_msg *out = &r->msgs[r->n_msgs];
        int rc = get_content(m, !strcmp(rn, "assistant"), &out->content, param, e);
        if (rc) return rc;
        out->role = canon;
        r->n_msgs++;
    }
    return 0;
}

static int parse_prompt(const cJSON *root, struct srv_request *r, struct srv_error *e) {
    const cJSON *p = field(root, "prompt");
    if (!p) return srv_errorf(e, 400, "invalid_request_error", "prompt", "missing_field", "'prompt' is required");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        p = cJSON_GetArrayItem(p, 0); /* ["text"] is one prompt */
    if (!cJSON_IsString(p)) return bad_type(e, "prompt", "a string");
    r->prompt = strdup(p->valuestring);
    return r->prompt ? 0 : srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
}

static int parse_stop(const cJSON *root, struct srv_request *r, struct srv_error *e) {
    const cJSON *s = field(root, "stop");
    if (!s) return 0;
    const cJSON *one[1] = {s};
    int n = 1;
    if (cJSON_IsArray(s)) {
        n = cJSON_GetArraySize(s);
        if (n > SRV_MAX_STOP) return bad_value(e, "stop", "a string or an array of at most 4 strings");
    } else if (!cJSON_IsString(s)) {
        return bad_type(e, "stop", "a string or an array of strings");
    }
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_IsArray(s) ? cJSON_GetArrayItem(s, i) : one[0];
        if (!cJSON_IsString(v)) return bad_type(e, "stop", "a string or an array of strings");
        size_t len = strlen(v->valuestring);
        if (len == 0) continue; /* an empty stop string would stop everything: ignore it */
        if (len > SRV_MAX_STOP_LEN) return bad_value(e, "stop", "at most 256 bytes per string");
        r->stop[r->n_stop] = strdup(v->valuestring);
        if (!r->stop[r->n_stop]) return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        r->n_stop++;
    }
    return 0;
}

static int parse_sampling(const cJSON *root, struct srv_request *r, struct srv_error *e) {
    double v;
    int rc;
    r->sp = hive_sampler_default_params();
    r->sp.temperature = 1.0f;
    r->sp.top_p = 1.0f;
    v = 1.0;
    if ((rc = get_num(root, "temperature", 0, 2, &v, e))) return rc;
    r->sp.temperature = (float)v;
    v = 1.0;
    if ((rc = get_num(root, "top_p", 0, 1, &v, e))) return rc;
    r->sp.top_p = (float)v;
    v = r->sp.top_k;
    if ((rc = get_int(root, "top_k", 0, 1e9, &v, e))) return rc;
    r->sp.top_k = (int32_t)v;
    v = r->sp.min_p;
    if ((rc = get_num(root, "min_p", 0, 1, &v, e))) return rc;
    r->sp.min_p = (float)v;
    v = r->sp.repeat_penalty; /* llama.cpp's extension */
    if ((rc = get_num(root, "repeat_penalty", 0, 10, &v, e))) return rc;
    r->sp.repeat_penalty = (float)v;
    v = 0;
    if ((rc = get_num(root, "presence_penalty", -2, 2, &v, e))) return rc;
    r->presence_penalty = (float)v;
    r->sp.presence_penalty = (float)v;
    v = 0;
    if ((rc = get_num(root, "frequency_penalty", -2, 2, &v, e))) return rc;
    r->frequency_penalty = (float)v;
    r->sp.frequency_penalty = (float)v;
    v = -1;
    if ((rc = get_int(root, "seed", -9007199254740991.0, 9007199254740991.0, &v, e))) return rc;
    if (field(root, "seed")) {
        r->has_seed = 1;
        r->sp.seed = (uint64_t)(int64_t)v;
    } else {
        uint64_t seed;
        randombytes_buf(&seed, sizeof seed);
        r->sp.seed = seed;
    }
    return 0;
}

static int parse_root(const cJSON *root, int kind, struct srv_request *r, struct srv_error *e) {
    int rc;
    double v;
    if (!cJSON_IsObject(root)) return srv_errorf(e, 400, "invalid_request_error", NULL, "invalid_json", "the body must be a JSON object");
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) return bad_type(e, "model", "a string");
    if (model && !(r->model = strdup(model->valuestring))) return srv_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    rc = kind == SRV_CHAT ? parse_messages(root, r, e) : parse_prompt(root, r, e);
    if (rc) return rc;
    if ((rc = get_bool(root, "stream", &r->stream, e))) return rc;
    const cJSON *so = field(root, "stream_options");
    if (so && !cJSON_IsObject(so)) return bad_type(e, "stream_options", "an object");
    if (so && (rc = get_bool(so, "include_usage", &r->include_usage, e))) {
        snprintf(e->param, sizeof e->param, "stream_options.include_usage");
        return rc;
    }
    r->max_tokens = -1;
    const char *mt = field(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    v = -1;
    if ((rc = get_int(root, mt, 1, 1 << 30, &v, e))) return rc;
    r->max_tokens = (int)v;
    v = 1;
    if ((rc = get_int(root, "n", 1, 1e9, &v, e))) return rc;
    if (v != 1) return bad_value(e, "n", "1 (hive returns one choice)");
    const cJSON *lp = field(root, "logprobs");
    if (lp && !(cJSON_IsFalse(lp))) return srv_errorf(e, 400, "invalid_request_error", "logprobs", "unsupported_parameter", "'logprobs' is not supported");
    const cJSON *tools = field(root, "tools");
    if (tools && cJSON_GetArraySize(tools) > 0)
        return srv_errorf(e, 400, "invalid_request_error", "tools", "unsupported_parameter", "'tools' is not supported");
    if ((rc = parse_stop(root, r, e))) return rc;
    return parse_sampling(root, r, e);
}

int srv_request_parse(const char *body, size_t len, int kind, struct srv_request *r, struct srv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= body && at <= body + len ? (long)(at - body) : -1;
        return srv_errorf(e, 400, "invalid_request_error", NULL, "invalid_json",
                          "the body is not valid JSON (near byte %ld)", off);
    }
    int rc = parse_root(root, kind, r, e);
    cJSON_Delete(root);
    if (rc) srv_request_free(r);
    return rc;
}

void srv_request_free(struct srv_request *r) {
    for (int i = 0; i < r->n_msgs; i++) free(r->msgs[i].content);
    free(r->msgs);
    free(r->model);
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    int kind = r->kind;
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
}
