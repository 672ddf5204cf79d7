/* test_metrics.c - GET /metrics of `hive serve` on a 2-stage cluster (one
 * `hive node` named with a quote and a backslash, and the head holding
 * layers), read by an independent parser (tests/prom_check.py, written from
 * the text format's description):
 *   - the whole page parses: HELP/TYPE, _total counters, cumulative
 *     histograms ending with +Inf == _count, label escaping;
 *   - hive_completion_tokens_total rises by exactly usage.completion_tokens
 *     of a known request (and the prompt tokens, the request counter and the
 *     time-to-first-token histogram by what that request adds);
 *   - per-node, per-hop and slot gauges are there, the odd node name comes
 *     back unchanged through the escaping;
 *   - /metrics needs the API key. */
#include "http_util.h"
#include "serve_util.h"
#include "server/srv.h"

#define KEY "metrics-key"
#define ODD_NAME "odd \"node\"\\x"

/* Fetches /metrics into <dir>/mN.txt, runs the checker, returns its JSON (or NULL). */
static cJSON *scrape(const struct tc_env *e, const char *base, int n) {
    struct hu_resp r;
    if (hu_request(base, "GET", "/metrics", NULL, KEY, &r) != 0 || r.status != 200) {
        fprintf(stderr, "GET /metrics: %ld\n", r.status);
        hu_free(&r);
        return NULL;
    }
    CHECK(r.headers.p && strstr(r.headers.p, "text/plain; version=0.0.4"));
    char path[256], out[256], cmd[1024];
    snprintf(path, sizeof path, "%s/m%d.txt", e->dir, n);
    snprintf(out, sizeof out, "%s/m%d.json", e->dir, n);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(r.body.p, 1, r.body.n, f);
        fclose(f);
    }
    hu_free(&r);
    snprintf(cmd, sizeof cmd, "python3 %s/tests/prom_check.py %s > %s", HIVE_SOURCE_DIR, path, out);
    int rc = system(cmd);
    CHECKF(rc == 0, "prom_check.py refused %s", path);
    if (rc) return NULL;
    char *text = check_read_file(out, NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    free(text);
    return doc;
}

static double get(const cJSON *doc, const char *series) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, series);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "no series %s\n", series);
        return -1;
    }
    return v->valuedouble;
}

static int has_prefix(const cJSON *doc, const char *prefix) {
    const cJSON *it;
    cJSON_ArrayForEach(it, doc) if (!strncmp(it->string, prefix, strlen(prefix))) return 1;
    return 0;
}

int main(void) {
    /* the escaping itself */
    char esc[64];
    srv_prom_escape("a\"b\\c\nd", esc, sizeof esc);
    CHECK(!strcmp(esc, "a\\\"b\\\\c\\nd"));
    srv_prom_escape("\\\\\\\\", esc, 6); /* never past cap, never half an escape */
    CHECK(!strcmp(esc, "\\\\\\\\"));

    char model[1024];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    if (system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
        printf("SKIP: python3 is not available for the /metrics checker\n");
        return SKIP_CODE;
    }
    struct tc_env e;
    tc_setup(&e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct tc_node node = {0};
    struct ts_serve sv = {0};
    CHECK(tc_node_start(&e, &node, ODD_NAME, NULL, NULL) == 0);
    if (check_failures) goto out;
    const char *args[] = {"-m", model, "--peers", node.addr, "--key", e.key, "--head-layers", "--spread",
                          "--port", "0", "-t", "1", "--api-key", KEY, NULL};
    int rc = ts_serve_start(&e, &sv, args);
    if (rc == 77) {
        tc_node_stop(&node);
        tc_cleanup(&e);
        printf("SKIP: no scheduler\n");
        return SKIP_CODE;
    }
    CHECK(rc == 0);
    if (rc) goto out;

    struct hu_resp r;
    CHECK(hu_request(sv.base, "GET", "/metrics", NULL, NULL, &r) == 0 && r.status == 401);
    hu_free(&r);

    /* one request first, so that every stage and hop has figures */
    CHECK(hu_request(sv.base, "POST", "/v1/completions", "{\"prompt\":\"Hello\",\"max_tokens\":8}", KEY, &r) == 0 &&
          r.status == 200);
    hu_free(&r);
    tc_sleep_ms(1200); /* one sampler tick */

    cJSON *m1 = scrape(&e, sv.base, 1);
    CHECK(m1 != NULL);
    CHECK(hu_request(sv.base, "POST", "/v1/completions",
                     "{\"prompt\":\"Once upon a time\",\"max_tokens\":37,\"temperature\":0}", KEY, &r) == 0 &&
          r.status == 200);
    char text[4096], finish[32];
    int n_prompt = -1, n_gen = -1;
    CHECK(hu_answer(r.body.p, text, sizeof text, finish, sizeof finish, &n_prompt, &n_gen) == 0);
    hu_free(&r);
    printf("request: %d prompt tokens, %d generated, finish %s\n", n_prompt, n_gen, finish);
    CHECK(n_gen > 0);
    cJSON *m2 = scrape(&e, sv.base, 2);
    CHECK(m2 != NULL);
    if (m1 && m2) {
        double d_tok = get(m2, "hive_completion_tokens_total{}") - get(m1, "hive_completion_tokens_total{}");
        CHECKF(d_tok == n_gen, "hive_completion_tokens_total rose by %g, the request generated %d", d_tok, n_gen);
        double d_prompt = get(m2, "hive_prompt_tokens_total{}") - get(m1, "hive_prompt_tokens_total{}");
        CHECKF(d_prompt == n_prompt, "prompt tokens rose by %g, not %d", d_prompt, n_prompt);
        const char *outcome = !strcmp(finish, "length") ? "hive_requests_total{kind=\"completion\",outcome=\"length\"}"
                                                        : "hive_requests_total{kind=\"completion\",outcome=\"stop\"}";
        CHECK(get(m2, outcome) - get(m1, outcome) == 1);
        CHECK(get(m2, "hive_time_to_first_token_seconds_count{}") - get(m1, "hive_time_to_first_token_seconds_count{}") == 1);
        CHECK(get(m2, "hive_time_to_first_token_seconds_sum{}") > get(m1, "hive_time_to_first_token_seconds_sum{}"));
        CHECK(get(m2, "hive_request_duration_seconds_count{}") == 2);
        if (!strcmp(finish, "length")) { /* the scheduler generated exactly as many */
            double d_sched = get(m2, "hive_sched_generated_tokens_total{}") - get(m1, "hive_sched_generated_tokens_total{}");
            CHECKF(d_sched == n_gen, "hive_sched_generated_tokens_total rose by %g, not %d", d_sched, n_gen);
        }
        CHECK(get(m2, "hive_kv_slots{}") == 8);
        CHECK(get(m2, "hive_kv_slots_in_use{}") == 0);
        CHECK(get(m2, "hive_queue_depth{}") == 0);
        CHECK(get(m2, "hive_requests_in_flight{}") == 0);
        CHECK(get(m2, "hive_info{model=\"stories260K\"}") == 1);
        /* the node with the odd name, through the escaping and back */
        char series[512];
        snprintf(series, sizeof series, "hive_node_state{addr=\"%s\",node=\"%s\",state=\"alive\"}", node.addr, ODD_NAME);
        CHECKF(get(m2, series) == 1, "%s", series);
        snprintf(series, sizeof series, "hive_node_tokens_total{addr=\"%s\",node=\"%s\"}", node.addr, ODD_NAME);
        CHECK(get(m2, series) > 0);
        CHECK(has_prefix(m2, "hive_node_memory_used_bytes{"));
        CHECK(has_prefix(m2, "hive_node_memory_budget_bytes{"));
        CHECK(has_prefix(m2, "hive_node_layer_passes_total{"));
        CHECK(has_prefix(m2, "hive_stage_compute_seconds{"));
        CHECK(get(m2, "hive_hop_latency_seconds{from=\"head\",hop=\"0\",to=\"head\"}") >= 0); /* into the head's own stage */
        snprintf(series, sizeof series, "hive_hop_latency_seconds{from=\"%s\",hop=\"2\",to=\"head\"}", ODD_NAME);
        CHECKF(get(m2, series) > 0, "%s", series);
    }
    cJSON_Delete(m1);
    cJSON_Delete(m2);

    /* the checker itself refuses what the format forbids */
    const char *bad[] = {
        "x_total 1\n",                                                         /* no TYPE */
        "# TYPE x counter\nx 1\n",                                             /* counter without _total */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", /* not cumulative */
        "# TYPE g gauge\ng{a=\"\\q\"} 1\n",                                    /* bad escape */
        "# TYPE g gauge\ng 1\n# TYPE f gauge\nf 1\ng{a=\"b\"} 2\n",             /* not together */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256], cmd[512];
        snprintf(path, sizeof path, "%s/bad%zu.txt", e.dir, i);
        FILE *f = fopen(path, "wb");
        if (f) {
            fputs(bad[i], f);
            fclose(f);
        }
        snprintf(cmd, sizeof cmd, "python3 %s/tests/prom_check.py %s >/dev/null 2>&1", HIVE_SOURCE_DIR, path);
        CHECKF(system(cmd) != 0, "the checker took bad input %zu", i);
    }
out:
    CHECK(ts_serve_stop(&sv) == 0);
    CHECK(tc_node_stop(&node) == 0);
    curl_global_cleanup();
    tc_cleanup(&e);
    return check_result("test_metrics");
}
