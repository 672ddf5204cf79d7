/* response.c - the JSON the server sends, in OpenAI's shapes:
 *   chat:        {"id","object":"chat.completion","created","model",
 *                 "choices":[{"index":0,"message":{"role":"assistant","content"},
 *                             "logprobs":null,"finish_reason"}],
 *                 "usage":{"prompt_tokens","completion_tokens","total_tokens"}}
 *   completion:  "object":"text_completion", choices [{"index","text","logprobs","finish_reason"}]
 *   chunks:      "object":"chat.completion.chunk" with "delta" / "text_completion" with "text",
 *                framed as one SSE event "data: {...}\n\n"
 *   errors:      {"error":{"message","type","param","code"}} */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

const char *srv_finish_name(int finish) {
    switch (finish) {
    case SRV_FINISH_STOP: return "stop";
    case SRV_FINISH_LENGTH: return "length";
    default: return NULL;
    }
}

/* cJSON strings are NUL-terminated; generated text has no NUL (the stop
 * filter passes bytes through, and U+0000 would end the text early), so
 * copy it into a terminated string first. */
static cJSON *text_item(const char *text, size_t len) {
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, text, len);
    s[len] = '\0';
    cJSON *it = cJSON_CreateString(s);
    free(s);
    return it;
}

static char *print_free(cJSON *root) {
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static cJSON *base(const struct srv_resp_meta *m, const char *object) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", m->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)m->created);
    cJSON_AddStringToObject(root, "model", m->model);
    cJSON_AddStringToObject(root, "system_fingerprint", "hive");
    return root;
}

static cJSON *usage(int n_prompt, int n_gen) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", n_prompt + n_gen);
    return u;
}

static void add_finish(cJSON *choice, int finish) {
    const char *f = srv_finish_name(finish);
    if (f) cJSON_AddStringToObject(choice, "finish_reason", f);
    else cJSON_AddNullToObject(choice, "finish_reason");
}

char *srv_json_error(const struct srv_error *e) {
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", e->message);
    cJSON_AddStringToObject(err, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(err, "param", e->param);
    else cJSON_AddNullToObject(err, "param");
    if (e->code) cJSON_AddStringToObject(err, "code", e->code);
    else cJSON_AddNullToObject(err, "code");
    return print_free(root);
}

char *srv_json_completion(const struct srv_resp_meta *m, const char *text, size_t len, int finish, int n_prompt,
                          int n_gen) {
    cJSON *root = base(m, m->kind == SRV_CHAT ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (m->kind == SRV_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", text_item(text, len));
    } else {
        cJSON_AddItemToObject(c, "text", text_item(text, len));
    }
    cJSON_AddNullToObject(c, "logprobs");
    add_finish(c, finish);
    cJSON_AddItemToObject(root, "usage", usage(n_prompt, n_gen));
    return print_free(root);
}

/* "data: " + json + "\n\n", freeing json. */
static char *sse(char *json) {
    if (!json) return NULL;
    size_t n = strlen(json);
    char *s = malloc(n + 9);
    if (s) {
        memcpy(s, "data: ", 6);
        memcpy(s + 6, json, n);
        memcpy(s + 6 + n, "\n\n", 3);
    }
    free(json);
    return s;
}

char *srv_sse_chunk(const struct srv_resp_meta *m, int first, const char *text, size_t len, int finish) {
    int chat = m->kind == SRV_CHAT;
    cJSON *root = base(m, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (text) cJSON_AddItemToObject(d, "content", text_item(text, len));
        else if (first) cJSON_AddStringToObject(d, "content", "");
    } else {
        cJSON_AddItemToObject(c, "text", text ? text_item(text, len) : cJSON_CreateString(""));
    }
    cJSON_AddNullToObject(c, "logprobs");
    add_finish(c, finish);
    return sse(print_free(root));
}

char *srv_sse_usage(const struct srv_resp_meta *m, int n_prompt, int n_gen) {
    cJSON *root = base(m, m->kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(root, "choices");
    cJSON_AddItemToObject(root, "usage", usage(n_prompt, n_gen));
    return sse(print_free(root));
}

char *srv_sse_error(const struct srv_error *e) { return sse(srv_json_error(e)); }

char *srv_json_models(const char *model_id, long long created) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "hive");
    return print_free(root);
}

void srv_json_sched_fields(struct cJSON *o, const struct hive_sched_stats *st) {
    cJSON_AddNumberToObject(o, "n_ctx", st->n_ctx);
    cJSON_AddNumberToObject(o, "max_seqs", st->max_seqs);
    cJSON_AddNumberToObject(o, "max_queue", st->max_queue);
    cJSON_AddNumberToObject(o, "running", st->running);
    cJSON_AddNumberToObject(o, "queued", st->queued);
    cJSON_AddNumberToObject(o, "submitted", (double)st->submitted);
    cJSON_AddNumberToObject(o, "rejected", (double)st->rejected);
    cJSON_AddNumberToObject(o, "finished", (double)st->finished);
    cJSON_AddNumberToObject(o, "cancelled", (double)st->cancelled);
    cJSON_AddNumberToObject(o, "failed", (double)st->failed);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)st->prompt_tokens);
    cJSON_AddNumberToObject(o, "generated_tokens", (double)st->generated_tokens);
    cJSON_AddNumberToObject(o, "steps", (double)st->steps);
    cJSON_AddNumberToObject(o, "in_flight", st->in_flight);
    cJSON_AddNumberToObject(o, "recoveries", st->recoveries);
    cJSON_AddNumberToObject(o, "rebalances", st->rebalances);
    cJSON_AddNumberToObject(o, "last_recovery_ms", st->last_recovery_ms);
    cJSON_AddNumberToObject(o, "last_detect_ms", st->last_detect_ms);
    cJSON_AddNumberToObject(o, "last_plan_ms", st->last_plan_ms);
    cJSON_AddNumberToObject(o, "last_deploy_ms", st->last_deploy_ms);
    cJSON_AddNumberToObject(o, "last_replay_ms", st->last_replay_ms);
    cJSON_AddNumberToObject(o, "decode_passes", (double)st->decode_passes);
    cJSON_AddNumberToObject(o, "decode_pass_tokens", (double)st->decode_pass_tokens);
    cJSON_AddNumberToObject(o, "draft_tokens", (double)st->draft_tokens);
    cJSON_AddNumberToObject(o, "draft_accepted", (double)st->draft_accepted);
}

char *srv_json_stats(const struct hive_sched_stats *st) {
    cJSON *root = cJSON_CreateObject();
    srv_json_sched_fields(root, st);
    cJSON_AddNumberToObject(root, "hop_out_ms_avg", st->hop_out_ms_avg);
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    int n = st->n_stages < 0 ? 0 : st->n_stages > HIVE_SCHED_MAX_STAGES ? HIVE_SCHED_MAX_STAGES : st->n_stages;
    for (int i = 0; i < n; i++) {
        const struct hive_sched_stage_stats *s = &st->st[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(stages, o);
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "addr", s->addr);
        cJSON_AddNumberToObject(o, "first", s->first);
        cJSON_AddNumberToObject(o, "last", s->last);
        cJSON_AddNumberToObject(o, "live_seqs", s->live_seqs);
        cJSON_AddNumberToObject(o, "compute_ms_avg", s->compute_ms_avg);
        cJSON_AddNumberToObject(o, "hop_in_ms_avg", s->hop_in_ms_avg);
        cJSON_AddNumberToObject(o, "weight_bytes_sent", (double)s->weight_bytes_sent);
        cJSON_AddStringToObject(o, "weights", s->from_cache == 0 ? "sent" : s->from_cache == 1 ? "cache" : "model-dir");
    }
    return print_free(root);
}
