/* bench_spec.c - decode speed with and without speculative decoding (issue 8).
 *
 *   build/bench_spec [--model PATH] [--draft PATH] [--tokens N] [--reps R] [--max K] [--json FILE]
 *
 * Drafts come from --draft (a small model with the same vocabulary), or
 * from prompt lookup (--draft-ngram) when none is given. Three setups, each
 * run plain and with drafts, interleaved, R times (the median counts):
 *   - one node (`hive run` alone, 1 thread);
 *   - a 2-stage ring of two `hive node`s (1 thread each) on 127.0.0.1
 *     behind the LAN emulator at 2 ms round trip (1 ms each way);
 *   - the same at 10 ms round trip.
 * Greedy, so both runs give the same text (checked). Prints decode tok/s,
 * the speed-up of drafts on each setup, drafts over the 10 ms ring against
 * one node without them, the acceptance and tokens per pass, and a JSON
 * line. Default model: ../shared/models/stories260K.gguf. */
#include <cjson/cJSON.h>

#include "bench_common.h"
#include "test_cluster_util.h"

#define PROMPT "Once upon a time"
#define MAX_REPS 15

static struct tc_env env;

struct result {
    double tps, acc, per_pass;
    int n_tokens;
    int32_t tokens[TC_MAX_TOK];
};

static int read_result(const char *path, struct result *r) {
    struct tc_stats st;
    if (tc_read_stats(path, &st)) return -1;
    r->tps = st.tok_per_s;
    r->n_tokens = st.n_tokens;
    memcpy(r->tokens, st.tokens, sizeof r->tokens);
    size_t len;
    char *buf = check_read_file(path, &len);
    cJSON *doc = buf ? cJSON_Parse(buf) : NULL;
    free(buf);
    cJSON *sp = cJSON_GetObjectItem(doc, "speculative");
    double drafted = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "draft_tokens"));
    double acc = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "accepted"));
    double passes = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "decode_passes"));
    double toks = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "pass_tokens"));
    r->acc = drafted > 0 ? acc / drafted : 0;
    r->per_pass = passes > 0 ? toks / passes : 0;
    cJSON_Delete(doc);
    return 0;
}

/* One `hive run`; peers NULL = one node. */
static int run_once(const char *model, const char *peers, int n_tokens, const char *const *draft_args,
                    struct result *out) {
    char stats[300], n[16], log[300];
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    snprintf(log, sizeof log, "%s/head.log", env.dir);
    snprintf(n, sizeof n, "%d", n_tokens);
    unlink(stats);
    char *argv[48];
    int k = 0;
    const char *fixed[] = {env.bin, "run", "-m", model, "-p", PROMPT, "-n", n, "-t", "1", "--stats-json", stats,
                           "--quiet"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[k++] = (char *)fixed[i];
    if (peers) {
        const char *ring[] = {"--peers", peers, "--key", env.key, "--spread", "--timeout", "120000"};
        for (size_t i = 0; i < sizeof ring / sizeof ring[0]; i++) argv[k++] = (char *)ring[i];
    }
    for (int i = 0; draft_args && draft_args[i] && k < 46; i++) argv[k++] = (char *)draft_args[i];
    argv[k] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int st = tc_wait(tc_spawn(argv, -1, fd), 600000);
    if (fd >= 0) close(fd);
    if (st != 0 || read_result(stats, out)) {
        fprintf(stderr, "bench_spec: hive run failed (%d); its log:\n", st);
        tc_head_log_print(&env);
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    const char *model = NULL, *draft = NULL, *json = NULL, *max = "8";
    int n_tokens = 128, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "usage: bench_spec [--model PATH] [--draft PATH] [--tokens N] [--reps R] [--max K] [--json FILE]\n");
            return 2;
        }
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--draft")) draft = v;
        else if (!strcmp(a, "--json")) json = v;
        else if (!strcmp(a, "--max")) max = v;
        else if (!strcmp(a, "--tokens")) n_tokens = atoi(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else {
            fprintf(stderr, "bench_spec: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (reps < 1 || reps > MAX_REPS || n_tokens < 8 || n_tokens > TC_MAX_TOK - 64) {
        fprintf(stderr, "bench_spec: --reps 1..%d, --tokens 8..%d\n", MAX_REPS, TC_MAX_TOK - 64);
        return 2;
    }
    char def[1024];
    snprintf(def, sizeof def, "%s/models/stories260K.gguf", HIVE_SHARED_DIR);
    if (!model) model = def;
    if (access(model, R_OK)) {
        fprintf(stderr, "bench_spec: %s not found\n", model);
        return 1;
    }
    tc_setup(&env);
    const char *spec_args[6];
    int n_spec = 0;
    if (draft) spec_args[n_spec++] = "--draft", spec_args[n_spec++] = draft;
    else spec_args[n_spec++] = "--draft-ngram";
    spec_args[n_spec++] = "--draft-max";
    spec_args[n_spec++] = max;
    spec_args[n_spec] = NULL;

    struct tc_node nodes[2];
    memset(nodes, 0, sizeof nodes);
    struct tc_proxies px[2];
    memset(px, 0, sizeof px);
    const double one_way[2] = {1.0, 5.0};
    char peers[2][512];
    int ok = 1;
    for (int i = 0; i < 2 && ok; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        ok = tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0;
    }
    for (int d = 0; d < 2 && ok; d++) {
        ok = tc_proxies_start(&px[d], nodes, 2, one_way[d], 0) == 0;
        if (ok) tc_proxies_peers(&px[d], peers[d], sizeof peers[d]);
    }
    const char *setup_name[3] = {"one node", "2-stage ring, 2 ms RTT", "2-stage ring, 10 ms RTT"};
    const char *setup_peers[3] = {NULL, peers[0], peers[1]};
    double tps[3][2][MAX_REPS], acc[3][MAX_REPS], per_pass[3][MAX_REPS];
    /* Warm-up: the nodes' caches get their stages. */
    struct result r0, r;
    for (int s = 1; s < 3 && ok; s++) ok = run_once(model, setup_peers[s], 8, NULL, &r0) == 0;
    for (int rep = 0; rep < reps && ok; rep++) {
        for (int s = 0; s < 3 && ok; s++) {
            for (int spec = 0; spec < 2 && ok; spec++) {
                ok = run_once(model, setup_peers[s], n_tokens, spec ? spec_args : NULL, spec ? &r : &r0) == 0;
                if (!ok) break;
                struct result *x = spec ? &r : &r0;
                tps[s][spec][rep] = x->tps;
                if (spec) {
                    acc[s][rep] = x->acc;
                    per_pass[s][rep] = x->per_pass;
                    int same = r.n_tokens == r0.n_tokens;
                    for (int i = 0; same && i < r.n_tokens; i++) same = r.tokens[i] == r0.tokens[i];
                    if (!same) {
                        fprintf(stderr, "bench_spec: %s: the output with drafts differs from the plain output\n",
                                setup_name[s]);
                        ok = 0;
                    }
                }
                fprintf(stderr, "  rep %d, %s, %s: %.1f tok/s\n", rep + 1, setup_name[s], spec ? "drafts" : "plain",
                        x->tps);
            }
        }
    }
    for (int d = 0; d < 2; d++) tc_proxies_stop(&px[d]);
    for (int i = 0; i < 2; i++) tc_node_stop(&nodes[i]);
    tc_cleanup(&env);
    if (!ok) return 1;

    double m[3][2], ma[3], mp[3];
    for (int s = 0; s < 3; s++) {
        for (int spec = 0; spec < 2; spec++) m[s][spec] = median(tps[s][spec], reps);
        ma[s] = median(acc[s], reps);
        mp[s] = median(per_pass[s], reps);
    }
    printf("model %s, drafts from %s (at most %s per pass), %d tokens, median of %d\n", model,
           draft ? draft : "prompt lookup", max, n_tokens, reps);
    printf("%-26s %12s %12s %9s %10s %14s\n", "setup", "plain tok/s", "drafts tok/s", "speed-up", "accepted",
           "tokens/pass");
    for (int s = 0; s < 3; s++)
        printf("%-26s %12.1f %12.1f %8.2fx %9.0f%% %14.2f\n", setup_name[s], m[s][0], m[s][1], m[s][1] / m[s][0],
               100 * ma[s], mp[s]);
    printf("drafts over the 10 ms ring / one node plain: %.2fx\n", m[2][1] / m[0][0]);
    char line[4096];
    snprintf(line, sizeof line,
             "{\"model\":\"%s\",\"draft\":\"%s\",\"tokens\":%d,\"reps\":%d,\"one_node\":[%.2f,%.2f],\"ring_2ms\":[%.2f,%.2f],"
             "\"ring_10ms\":[%.2f,%.2f],\"accepted\":[%.3f,%.3f,%.3f],\"tokens_per_pass\":[%.2f,%.2f,%.2f],"
             "\"ring_10ms_drafts_over_one_node\":%.3f}",
             model, draft ? draft : "ngram", n_tokens, reps, m[0][0], m[0][1], m[1][0], m[1][1], m[2][0], m[2][1], ma[0],
             ma[1], ma[2], mp[0], mp[1], mp[2], m[2][1] / m[0][0]);
    printf("%s\n", line);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) fprintf(f, "%s\n", line), fclose(f);
    }
    return 0;
}
