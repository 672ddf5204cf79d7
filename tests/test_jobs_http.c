/* test_jobs_http.c - the job routes of the HTTP server, in process: a fleet
 * of one local replica (stories260K), hive_server_start with opts.jobs, and
 * a libcurl client:
 *  - POST /v1/hive/jobs with subtasks -> 202 and an id; its events stream
 *    ends with "event: done"; GET /v1/hive/jobs/ID gives every answer, each
 *    equal to that prompt run alone (greedy);
 *  - POST with a task: the model's reply is no list, so one subtask (the
 *    task) plus the merge; the job completes;
 *  - 40 subtasks whose answers together do not fit the context: the merge
 *    prompt is cut to fit (each answer an equal share) and the job completes;
 *  - bad bodies -> 400, an unknown id -> 404. */
#include "http_util.h"
#include "test_cluster_util.h"

#include "hive/fleet.h"
#include "hive/gguf.h"
#include "hive/job.h"
#include "hive/server.h"

static char model[512];

static const char *prompts[] = {"Once upon a time, there was a dog", "The sun was shining and",
                                "Lily wanted to play with her"};
#define N_PROMPTS 3
#define N_TOKENS 16

/* The generated text of prompt run alone, greedy, up to an end token. */
static void reference(const hive_tokenizer *tok, const char *prompt, char *out, size_t cap) {
    int32_t ids[TC_MAX_TOK];
    struct hive_sampler_params sp = hive_sampler_default_params();
    int n_prompt = hive_tokenize(tok, prompt, strlen(prompt), 1, 0, ids, TC_MAX_TOK);
    int n = tc_reference(model, prompt, N_TOKENS, &sp, ids, TC_MAX_TOK);
    size_t len = 0;
    out[0] = 0;
    for (int i = n_prompt; i < n && !hive_tokenizer_is_eog(tok, ids[i]); i++) {
        char piece[64];
        int k = hive_token_to_piece(tok, ids[i], 0, piece, sizeof piece);
        if (k > 0 && k < (int)sizeof piece && len + (size_t)k < cap) {
            memcpy(out + len, piece, (size_t)k);
            len += (size_t)k;
            out[len] = 0;
        }
    }
}

/* POSTs body; the new job's id into id (status returned). */
static long post_job(const char *base, const char *body, char *id, size_t cap) {
    struct hu_resp r;
    id[0] = 0;
    hu_request(base, "POST", "/v1/hive/jobs", body, NULL, &r);
    cJSON *doc = cJSON_Parse(r.body.p);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "id"));
    if (s) snprintf(id, cap, "%s", s);
    long status = r.status;
    if (status != 202) fprintf(stderr, "POST %s -> %ld %s\n", body, status, r.body.p);
    cJSON_Delete(doc);
    hu_free(&r);
    return status;
}

/* Reads the job's event stream to its end; 1 when it ended with "event: done"
 * after at least one event before it. */
static int follow_events(const char *base, const char *id) {
    char path[256];
    snprintf(path, sizeof path, "/v1/hive/jobs/%s/events", id);
    struct hu_resp r;
    hu_request(base, "GET", path, NULL, NULL, &r);
    const char *done = r.body.p ? strstr(r.body.p, "event: done\ndata: {") : NULL;
    int ok = r.status == 200 && done && strstr(r.body.p, "event: ") < done &&
             strstr(r.headers.p ? r.headers.p : "", "text/event-stream");
    if (!ok) fprintf(stderr, "events: %ld %s\n", r.status, r.body.p ? r.body.p : "");
    hu_free(&r);
    return ok;
}

static cJSON *get_job(const char *base, const char *id, long *status) {
    char path[256];
    snprintf(path, sizeof path, "/v1/hive/jobs/%s", id);
    struct hu_resp r;
    hu_request(base, "GET", path, NULL, NULL, &r);
    *status = r.status;
    cJSON *doc = cJSON_Parse(r.body.p);
    hu_free(&r);
    return doc;
}

int main(void) {
    shared_path(model, sizeof model, "models/stories260K.gguf");
    signal(SIGPIPE, SIG_IGN);
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    if (hive_gguf_open(&g, model, err) || hive_tokenizer_load(&tok, g, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char refs[N_PROMPTS][1024];
    for (int i = 0; i < N_PROMPTS; i++) reference(tok, prompts[i], refs[i], sizeof refs[i]);

    struct hive_fleet_opts fo;
    memset(&fo, 0, sizeof fo);
    fo.sched.model_path = model;
    fo.sched.n_threads = 1;
    hive_key_generate(fo.sched.key);
    FILE *devnull = fopen("/dev/null", "w");
    fo.sched.log = devnull;
    hive_fleet *fleet = NULL;
    if (hive_fleet_open(&fleet, &fo, err)) {
        fprintf(stderr, "fleet: %s\n", err);
        return 1;
    }
    struct hive_job_opts jo = {.fleet = fleet, .tok = tok, .chat_template = hive_chat_template_detect(g),
                               .max_tokens = N_TOKENS, .sampling = hive_sampler_default_params(),
                               .decompose_tokens = 32};
    struct hive_server_opts so = {.port = 0, .model_id = "stories260K", .jobs = &jo};
    hive_server *srv = NULL;
    if (hive_server_start(&srv, hive_fleet_replica(fleet, 0), tok, jo.chat_template, &so, err)) {
        fprintf(stderr, "server: %s\n", err);
        return 1;
    }
    char base[64], id[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", hive_server_port(srv));

    /* Given subtasks. */
    char body[1024];
    snprintf(body, sizeof body, "{\"subtasks\": [\"%s\", \"%s\", \"%s\"], \"no_merge\": true}", prompts[0], prompts[1],
             prompts[2]);
    CHECK(post_job(base, body, id, sizeof id) == 202);
    CHECK(id[0] != 0);
    CHECK(follow_events(base, id));
    long status = 0;
    cJSON *doc = get_job(base, id, &status);
    CHECK(status == 200);
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status"));
    CHECKF(state && !strcmp(state, "done"), "status %s", state ? state : "(none)");
    cJSON *results = cJSON_GetObjectItem(doc, "results"), *r;
    CHECK(cJSON_GetArraySize(results) == N_PROMPTS);
    CHECK(cJSON_GetObjectItem(doc, "merge") == NULL);
    cJSON_ArrayForEach(r, results) {
        int i = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(r, "index"));
        const char *ans = cJSON_GetStringValue(cJSON_GetObjectItem(r, "answer"));
        CHECKF(i >= 0 && i < N_PROMPTS && ans && !strcmp(ans, refs[i]), "answer %d '%s' vs '%s'", i, ans ? ans : "",
               i >= 0 && i < N_PROMPTS ? refs[i] : "");
    }
    cJSON_Delete(doc);

    /* A task: decomposed by the model (stories260K gives no list: one subtask) and merged. */
    CHECK(post_job(base, "{\"task\": \"Write two short stories about a cat.\", \"reduce\": \"Join them.\"}", id,
                   sizeof id) == 202);
    CHECK(follow_events(base, id));
    doc = get_job(base, id, &status);
    state = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status"));
    CHECKF(state && !strcmp(state, "done"), "task job: status %s", state ? state : "(none)");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "results")) >= 1);
    CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "merge"), "answer")) != NULL);
    cJSON_Delete(doc);

    /* Answers too long to merge whole: 40 x 64 tokens in a 2048-token context. */
    {
        char big[8192] = "{\"max_tokens\": 64, \"subtasks\": [";
        for (int i = 0; i < 40; i++) {
            size_t l = strlen(big);
            snprintf(big + l, sizeof big - l, "%s\"Once upon a time, story %d\"", i ? ", " : "", i);
        }
        strcat(big, "]}");
        CHECK(post_job(base, big, id, sizeof id) == 202);
        CHECK(follow_events(base, id));
        doc = get_job(base, id, &status);
        state = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "status"));
        CHECKF(state && !strcmp(state, "done"), "long merge: status %s", state ? state : "(none)");
        cJSON *merge = cJSON_GetObjectItem(doc, "merge");
        const char *mp = cJSON_GetStringValue(cJSON_GetObjectItem(merge, "prompt"));
        CHECKF(mp && strstr(mp, "[...]") && strstr(mp, "Answer 40: "), "the merge prompt holds every answer, cut");
        CHECK(cJSON_GetStringValue(cJSON_GetObjectItem(merge, "answer")) != NULL);
        cJSON_Delete(doc);
    }

    /* Bad requests. */
    const char *bad[] = {"not json", "{}", "{\"task\": 5}", "{\"subtasks\": []}", "{\"subtasks\": [\"a\", 3]}",
                         "{\"task\": \"x\", \"subtasks\": [\"a\"]}", "{\"subtasks\": [\"a\"], \"no_merge\": 1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hu_resp rr;
        hu_request(base, "POST", "/v1/hive/jobs", bad[i], NULL, &rr);
        CHECKF(rr.status == 400, "%s -> %ld", bad[i], rr.status);
        hu_free(&rr);
    }
    doc = get_job(base, "job-nope", &status);
    CHECK(status == 404);
    cJSON_Delete(doc);
    struct hu_resp rr;
    hu_request(base, "GET", "/v1/hive/jobs/job-nope/events", NULL, NULL, &rr);
    CHECK(rr.status == 404);
    hu_free(&rr);

    hive_server_stop(srv);
    hive_fleet_close(fleet);
    fclose(devnull);
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    return check_result("test_jobs_http");
}
