/* test_cluster.c - clusters of real `hive node` processes on 127.0.0.1 run
 * stories260K and synthetic models; the token log of every run must equal
 * the single-node reference computed in-process with the model API.
 * Also: a second run sends no weight bytes (node caches), a corrupted cache
 * entry is detected and re-fetched, sampled output (temperature + seed) is
 * identical too (the sampler travels to the last stage), and f16 on the wire
 * runs. HIVE_TEST_SCALE=small runs fewer configurations. */
#include "test_cluster_util.h"

#include "hive/cluster.h"

#define PROMPT "Once upon a time"

static struct tc_env env;
static struct tc_node nodes[4];

/* Flips one byte in the tensor data of the stage file for layers
 * [first, last) in a node's cache. */
static int corrupt_cache(const struct tc_node *n, int first, int last) {
    char dir[300], path[600];
    snprintf(dir, sizeof dir, "%s/stages", n->cache);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s/*-%d-%d.gguf 2>/dev/null | head -1", dir, first, last);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    if (!fgets(path, sizeof path, p)) {
        pclose(p);
        return -1;
    }
    pclose(p);
    path[strcspn(path, "\n")] = '\0';
    int fd = open(path, O_RDWR);
    if (fd < 0) return -1;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t at = size - 100; /* inside the last tensor's data */
    uint8_t b = 0;
    int ok = pread(fd, &b, 1, at) == 1;
    b ^= 0x5a;
    ok = ok && pwrite(fd, &b, 1, at) == 1;
    close(fd);
    return ok ? 0 : -1;
}

static void test_stories(const char *model) {
    int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, 40, &greedy, ref, TC_MAX_TOK);
    CHECK(n_ref > 5);
    if (n_ref <= 5) return;
    char peers[512], stats_path[300];
    snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
    struct tc_stats st;
    const char *spread[] = {"--spread", NULL};
    int sizes_full[] = {2, 3, 4}, sizes_small[] = {3};
    int *sizes = tc_small() ? sizes_small : sizes_full;
    int n_sizes = tc_small() ? 1 : 3;
    for (int k = 0; k < n_sizes; k++) {
        int n = sizes[k];
        tc_peers(nodes, n, peers, sizeof peers);
        int rc = tc_head_run(&env, model, peers, PROMPT, 40, stats_path, spread);
        CHECKF(rc == 0, "%d-node run exited %d", n, rc);
        if (rc) tc_head_log_print(&env);
        CHECK(tc_read_stats(stats_path, &st) == 0);
        CHECKF(st.n_stages == n, "%d nodes gave %d stages", n, st.n_stages);
        char what[64];
        snprintf(what, sizeof what, "stories260K on %d nodes", n);
        TC_CHECK_TOKENS(&st, ref, n_ref, what);
        CHECK(st.weight_bytes_sent > 0 || n == 3); /* 3 may reuse ranges cached by an earlier size */
    }

    /* Same plan again: every stage comes from the nodes' caches. */
    tc_peers(nodes, 3, peers, sizeof peers);
    CHECK(tc_head_run(&env, model, peers, PROMPT, 40, stats_path, spread) == 0);
    CHECK(tc_read_stats(stats_path, &st) == 0);
    CHECKF(st.weight_bytes_sent == 0, "second run sent %llu weight bytes", (unsigned long long)st.weight_bytes_sent);
    for (int i = 0; i < st.n_stages; i++) CHECK(!strcmp(st.weights[i], "cache"));
    TC_CHECK_TOKENS(&st, ref, n_ref, "cached run");

    /* Corrupt node 1's stage file: detected by hash, re-sent, same output. */
    CHECK(st.n_stages == 3 && st.node[1] == 1);
    CHECK(corrupt_cache(&nodes[1], st.first[1], st.last[1]) == 0);
    CHECK(tc_head_run(&env, model, peers, PROMPT, 40, stats_path, spread) == 0);
    CHECK(tc_read_stats(stats_path, &st) == 0);
    CHECK(st.weight_bytes_sent > 0);
    int resent = 0;
    for (int i = 0; i < st.n_stages; i++) resent += !strcmp(st.weights[i], "sent");
    CHECKF(resent == 1, "%d stages re-sent after corrupting one cache file", resent);
    TC_CHECK_TOKENS(&st, ref, n_ref, "run after cache corruption");

    /* Sampling with a temperature and seed: the sampler state travels with
     * the request, so the distributed run draws the same tokens. */
    struct hive_sampler_params sp = hive_sampler_default_params();
    sp.temperature = 0.9f;
    sp.top_k = 40;
    sp.top_p = 0.95f;
    sp.repeat_penalty = 1.1f;
    sp.seed = 1234;
    n_ref = tc_reference(model, PROMPT, 40, &sp, ref, TC_MAX_TOK);
    const char *sampled[] = {"--spread", "--temp", "0.9", "--top-k", "40", "--top-p", "0.95", "--repeat-penalty",
                             "1.1", "--seed", "1234", NULL};
    tc_peers(nodes, 2, peers, sizeof peers);
    CHECK(tc_head_run(&env, model, peers, PROMPT, 40, stats_path, sampled) == 0);
    CHECK(tc_read_stats(stats_path, &st) == 0);
    TC_CHECK_TOKENS(&st, ref, n_ref, "sampled run");

    /* f16 on the wire: runs and generates (values may differ slightly). */
    const char *f16[] = {"--spread", "--wire-f16", "--trace", "", NULL};
    char trace[300];
    snprintf(trace, sizeof trace, "%s/trace.json", env.dir);
    f16[3] = trace;
    tc_peers(nodes, 3, peers, sizeof peers);
    CHECK(tc_head_run(&env, model, peers, PROMPT, 20, stats_path, f16) == 0);
    CHECK(tc_read_stats(stats_path, &st) == 0);
    CHECK(st.n_tokens > st.n_prompt);
    CHECK(access(trace, R_OK) == 0);
}

static void test_synthetic(void) {
    struct {
        const char *arch, *type;
    } cases[] = {{"llama", "q4_0"}, {"qwen2", "q8_0"}, {"llama", "q8_0"}, {"qwen2", "q4_0"}};
    int n_cases = tc_small() ? 2 : 4;
    for (int c = 0; c < n_cases; c++) {
        char path[300], err[HIVE_ERR_LEN], what[64], peers[512], stats_path[300];
        snprintf(path, sizeof path, "%s/synth-%s-%s.gguf", env.dir, cases[c].arch, cases[c].type);
        snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
        int rc = tc_mkmodel_small(path, cases[c].arch, cases[c].type, 7 + (uint64_t)c, err);
        CHECKF(rc == HIVE_OK, "mkmodel %s %s: %s", cases[c].arch, cases[c].type, err);
        if (rc) continue;
        int32_t ref[TC_MAX_TOK];
        struct hive_sampler_params greedy = hive_sampler_default_params();
        int n_ref = tc_reference(path, PROMPT, 24, &greedy, ref, TC_MAX_TOK);
        CHECK(n_ref > 1);
        int n = 2 + c % 3; /* 2, 3, 4, 2 nodes */
        tc_peers(nodes, n, peers, sizeof peers);
        const char *spread[] = {"--spread", NULL};
        rc = tc_head_run(&env, path, peers, PROMPT, 24, stats_path, spread);
        CHECKF(rc == 0, "%s %s on %d nodes exited %d", cases[c].arch, cases[c].type, n, rc);
        if (rc) tc_head_log_print(&env);
        struct tc_stats st;
        CHECK(tc_read_stats(stats_path, &st) == 0);
        CHECK(st.n_stages == n);
        snprintf(what, sizeof what, "%s %s on %d nodes", cases[c].arch, cases[c].type, n);
        TC_CHECK_TOKENS(&st, ref, n_ref, what);
    }
}

/* Nodes with --mem caps below the whole model: the plan keeps every stage
 * within its node's cap and the output stays identical; caps too small for
 * the model in total are refused with a clear message. */
static void test_mem_caps(const char *model) {
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    struct hive_model_profile prof;
    CHECK(hive_gguf_open(&g, model, err) == HIVE_OK);
    if (!g) return;
    CHECK(hive_model_profile_from_gguf(&prof, g, 256, err) == HIVE_OK);
    hive_gguf_close(g);
    uint64_t whole = hive_plan_stage_mem(&prof, 0, prof.n_layer);
    /* Cap: 5% above the largest third of an even three-way split. */
    uint64_t cap_bytes = 0;
    int L = prof.n_layer;
    for (int k = 0; k < 3; k++) {
        uint64_t m = hive_plan_stage_mem(&prof, k * L / 3, (k + 1) * L / 3);
        if (m > cap_bytes) cap_bytes = m;
    }
    cap_bytes = cap_bytes * 21 / 20;
    CHECKF(cap_bytes < whole, "the cap (%llu) must be below the whole model (%llu)", (unsigned long long)cap_bytes,
           (unsigned long long)whole);
    char cap[32], tiny[32];
    snprintf(cap, sizeof cap, "%llu", (unsigned long long)cap_bytes);
    snprintf(tiny, sizeof tiny, "%llu", (unsigned long long)(whole / 5));
    struct tc_node capped[4];
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "cap%d", i);
        ok += tc_node_start(&env, &capped[i], name, i < 3 ? cap : tiny, NULL) == 0;
    }
    CHECK(ok == 4);
    int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, 40, &greedy, ref, TC_MAX_TOK);
    char peers[512], stats_path[300];
    snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
    const char *ctx[] = {"--ctx", "256", NULL};
    if (ok == 4) {
        /* No node can hold the model alone; the capped ones together can. */
        tc_peers(capped, 4, peers, sizeof peers);
        int rc = tc_head_run(&env, model, peers, PROMPT, 40, stats_path, ctx);
        CHECKF(rc == 0, "capped run exited %d", rc);
        if (rc) tc_head_log_print(&env);
        struct tc_stats st;
        CHECK(tc_read_stats(stats_path, &st) == 0);
        CHECK(st.n_stages >= 2);
        for (int s = 0; s < st.n_stages; s++) {
            uint64_t need = hive_plan_stage_mem(&prof, st.first[s], st.last[s]);
            uint64_t budget = st.node[s] < 3 ? cap_bytes : whole / 5;
            CHECKF(need <= budget, "stage %d needs %llu over its node's cap %llu", s, (unsigned long long)need,
                   (unsigned long long)budget);
        }
        TC_CHECK_TOKENS(&st, ref, n_ref, "run under memory caps");
        /* Two tiny ones cannot hold it. */
        struct tc_node tiny2;
        CHECK(tc_node_start(&env, &tiny2, "cap4", tiny, NULL) == 0);
        struct tc_node pair[2] = {capped[3], tiny2};
        tc_peers(pair, 2, peers, sizeof peers);
        rc = tc_head_run(&env, model, peers, PROMPT, 40, stats_path, ctx);
        CHECK(rc != 0 && rc != -1);
        CHECKF(tc_head_log_has(&env, "does not fit"), "refusal does not say why");
        CHECK(tc_node_stop(&tiny2) == 0);
        /* The same node named twice is one node, and the head says so. */
        struct tc_node same[2] = {capped[3], capped[3]};
        tc_peers(same, 2, peers, sizeof peers);
        rc = tc_head_run(&env, model, peers, PROMPT, 40, stats_path, ctx);
        CHECK(rc != 0 && rc != -1);
        CHECKF(tc_head_log_has(&env, "already known as"), "a node named twice is not recognised");
    }
    for (int i = 0; i < 4; i++) CHECK(tc_node_stop(&capped[i]) == 0);
    hive_model_profile_free(&prof);
}

/* A node whose --model-dir holds the same file loads it instead of
 * receiving weights. */
static void test_model_dir(const char *model) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", model);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = '\0';
    const char *extra[] = {"--model-dir", dir, NULL};
    struct tc_node local;
    CHECK(tc_node_start_ex(&env, &local, "local", NULL, NULL, extra) == 0);
    int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, 30, &greedy, ref, TC_MAX_TOK);
    struct tc_node pair[2] = {nodes[0], local};
    char peers[512], stats_path[300];
    tc_peers(pair, 2, peers, sizeof peers);
    snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
    const char *spread[] = {"--spread", NULL};
    CHECK(tc_head_run(&env, model, peers, PROMPT, 30, stats_path, spread) == 0);
    struct tc_stats st;
    CHECK(tc_read_stats(stats_path, &st) == 0);
    CHECK(st.n_stages == 2 && !strcmp(st.weights[1], "model-dir"));
    TC_CHECK_TOKENS(&st, ref, n_ref, "run with a --model-dir node");
    CHECK(tc_node_stop(&local) == 0);
}

/* --head-layers: the head process serves stage 0 itself, one node holds
 * the rest; output identical to single node. */
static void test_head_layers(const char *model) {
    int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, 30, &greedy, ref, TC_MAX_TOK);
    char cache[300], stats_path[300];
    snprintf(cache, sizeof cache, "%s/head-cache", env.dir);
    snprintf(stats_path, sizeof stats_path, "%s/stats.json", env.dir);
    const char *extra[] = {"--head-layers", "--spread", "--cache-dir", cache, NULL};
    CHECK(tc_head_run(&env, model, nodes[0].addr, PROMPT, 30, stats_path, extra) == 0);
    struct tc_stats st;
    CHECK(tc_read_stats(stats_path, &st) == 0);
    CHECKF(st.n_stages == 2, "head + 1 node gave %d stages", st.n_stages);
    CHECK(st.first[0] == 0 && st.last[0] == st.first[1]);
    TC_CHECK_TOKENS(&st, ref, n_ref, "run with --head-layers");
}

int main(void) {
    tc_setup(&env);
    char model[512];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    int started = 0;
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        started += tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0;
    }
    CHECK(started == 4);
    if (started == 4) {
        test_stories(model);
        test_synthetic();
        test_mem_caps(model);
        test_model_dir(model);
        test_head_layers(model);
    }
    for (int i = 0; i < 4; i++) {
        int alive = tc_node_alive(&nodes[i]);
        CHECKF(alive, "node %d died", i);
        CHECKF(tc_node_stop(&nodes[i]) == 0, "node %d did not exit cleanly", i);
    }
    tc_cleanup(&env);
    return check_result("test_cluster");
}
