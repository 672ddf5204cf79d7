/* test_spec.c - speculative decoding keeps greedy output exact.
 *
 * For stories260K and for synthetic llama and qwen2 models (with the
 * stories260K vocabulary), greedy `hive run` with drafts gives the single-
 * node reference token for token: on one node (in-process), on a 2-stage
 * and on a 3-stage ring, with prompt lookup and with a draft model, for k
 * from 1 to 8 (a fixed k, so that every k is really used). Also:
 *   - a draft that is the model itself is accepted 100% and gives k+1
 *     tokens per ring pass;
 *   - a draft model with other weights (it disagrees often) still gives
 *     the exact output;
 *   - a draft whose vocabulary differs is refused with a clear error;
 *   - a sampled run with drafts finishes and keeps its length.
 * Needs ../shared (stories260K, whose vocabulary the synthetic models copy). */
#include "hive/sched.h"
#include "test_cluster_util.h"

#define PROMPT "Once upon a time"
#define N_GEN 46 /* 1 + 45: 45 is a multiple of k+1 for k = 2, 4, 8 */

static struct tc_env env;

/* Runs `hive run` (one node when peers is NULL) with extra args; its
 * stats go to stats. Returns the exit status. */
static int run_head(const char *model, const char *peers, int n_gen, const char *stats, const char *const *extra) {
    char n[16], log[256];
    snprintf(n, sizeof n, "%d", n_gen);
    snprintf(log, sizeof log, "%s/head.log", env.dir);
    unlink(stats);
    if (peers) return tc_head_run(&env, model, peers, PROMPT, n_gen, stats, extra);
    char *argv[48];
    int k = 0;
    const char *fixed[] = {env.bin, "run", "-m", model, "-p", PROMPT, "-n", n, "-t", "1", "--stats-json", stats};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[k++] = (char *)fixed[i];
    for (int i = 0; extra && extra[i] && k < 47; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, -1, fd);
    if (fd >= 0) close(fd);
    return tc_wait(pid, 180000);
}

struct spec_stats {
    double drafted, accepted, passes, pass_tokens;
};

static int read_spec(const char *path, struct spec_stats *o) {
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *doc = cJSON_Parse(buf);
    if (!doc) return -1;
    cJSON *sp = cJSON_GetObjectItem(doc, "speculative");
    o->drafted = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "draft_tokens"));
    o->accepted = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "accepted"));
    o->passes = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "decode_passes"));
    o->pass_tokens = cJSON_GetNumberValue(cJSON_GetObjectItem(sp, "pass_tokens"));
    cJSON_Delete(doc);
    return sp ? 0 : -1;
}

static int make_model(const char *out, const char *vocab_from, const char *arch, const char *layers, const char *seed) {
    char *argv[] = {env.bin, "mkmodel", "-o", (char *)out, "--arch", (char *)arch, "--layers", (char *)layers,
                    "--seed", (char *)seed, "--vocab-from", (char *)vocab_from, "--ctx", "256", "-q", NULL};
    return tc_wait(tc_spawn(argv, -1, -1), 60000);
}

/* Every draft source and k on one topology; peers NULL = one node. */
/* ks: the k to try, 0-terminated (NULL: 1 to 8). The draft model with other
 * weights is tried at the largest k and at 3 when listed. */
static void check_topology(const char *model, const char *other, const char *peers, const char *what, const int *ks) {
    char stats[256], label[256], kbuf[8];
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int32_t ref[TC_MAX_TOK];
    int n_ref = tc_reference(model, PROMPT, N_GEN, &greedy, ref, TC_MAX_TOK);
    CHECKF(n_ref > 10, "%s: no reference", what);
    if (n_ref <= 10) return;
    struct tc_stats st;
    const char *spread = peers ? "--spread" : "--quiet";
    static const int all_k[] = {1, 2, 3, 4, 5, 6, 7, 8, 0};
    if (!ks) ks = all_k;
    int k_max = 0;
    for (int i = 0; ks[i]; i++) k_max = ks[i] > k_max ? ks[i] : k_max;
    for (int ki = 0; ks[ki]; ki++) {
        int k = ks[ki];
        snprintf(kbuf, sizeof kbuf, "%d", k);
        const char *sources[3][3] = {{"--draft-ngram", NULL, NULL}, {"--draft", model, NULL}, {"--draft", other, NULL}};
        const char *names[] = {"prompt lookup", "the model itself", "another model"};
        for (int src = 0; src < 3; src++) {
            if (src == 2 && k != 3 && k != k_max) continue;
            const char *extra[8];
            int e = 0;
            extra[e++] = spread;
            for (int j = 0; sources[src][j]; j++) extra[e++] = sources[src][j];
            extra[e++] = "--draft-fixed";
            extra[e++] = "--draft-max";
            extra[e++] = kbuf;
            extra[e] = NULL;
            snprintf(label, sizeof label, "%s, %s, k=%d", what, names[src], k);
            int rc = run_head(model, peers, N_GEN, stats, extra);
            CHECKF(rc == 0, "%s: hive run exited %d", label, rc);
            if (rc != 0) {
                tc_head_log_print(&env);
                continue;
            }
            CHECK(tc_read_stats(stats, &st) == 0);
            TC_CHECK_TOKENS(&st, ref, n_ref, label);
            struct spec_stats sp;
            CHECK(read_spec(stats, &sp) == 0);
            CHECKF(sp.drafted > 0 || src == 0, "%s: nothing was drafted", label);
            if (src == 1 && n_ref == st.n_prompt + N_GEN) { /* (not cut short by an end-of-text token) */
                /* The model drafting for itself: every draft is right. The
                 * first token comes from the prefill; the other N_GEN - 1
                 * come k+1 per pass while k fits the tokens left. */
                CHECKF(sp.accepted == sp.drafted, "%s: %.0f of %.0f drafted tokens accepted", label, sp.accepted,
                       sp.drafted);
                if ((N_GEN - 1) % (k + 1) == 0)
                    CHECKF(sp.pass_tokens == (k + 1) * sp.passes, "%s: %.0f tokens in %.0f passes, expected %d per pass",
                           label, sp.pass_tokens, sp.passes, k + 1);
            }
        }
    }
}

/* Several sequences at once through one scheduler (as `hive serve` runs
 * them): each one's drafts are verified in the same batched passes, and
 * each answer is its single-node reference. */
static void check_concurrent(const char *model, const char *draft, int expect_accepted) {
    static const char *prompts[] = {"Once upon a time", "The little dog", "Lily and Tom went to the park",
                                    "One day, a big"};
    enum { N_SEQ = 4, N_TOK = 48 };
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    CHECK(hive_gguf_open(&g, model, err) == 0 && hive_tokenizer_load(&tok, g, err) == 0);
    struct hive_sched_opts so;
    memset(&so, 0, sizeof so);
    so.model_path = model;
    so.max_seqs = N_SEQ;
    so.n_threads = 1;
    so.draft_path = draft;
    so.draft_ngram = !draft;
    so.draft_max = 6;
    hive_key_generate(so.key);
    FILE *devnull = fopen("/dev/null", "w");
    so.log = devnull;
    hive_sched *sched = NULL;
    int rc = hive_sched_open(&sched, &so, err);
    CHECKF(rc == 0, "sched: %s", err);
    if (rc) goto out;
    hive_seq *seqs[N_SEQ] = {0};
    int32_t refs[N_SEQ][TC_MAX_TOK];
    int n_refs[N_SEQ], n_prompt[N_SEQ];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    for (int i = 0; i < N_SEQ; i++) {
        int32_t p[256];
        n_prompt[i] = hive_tokenize(tok, prompts[i], strlen(prompts[i]), 1, 0, p, 256);
        n_refs[i] = tc_reference(model, prompts[i], N_TOK, &greedy, refs[i], TC_MAX_TOK);
        struct hive_seq_params sp = {.prompt = p, .n_prompt = n_prompt[i], .max_tokens = N_TOK, .sampling = greedy,
                                     .penalize_prompt = 1};
        CHECK(n_prompt[i] > 0 && hive_sched_submit(sched, &sp, &seqs[i], err) == 0);
    }
    for (int i = 0; i < N_SEQ; i++) {
        if (!seqs[i]) continue;
        int n = n_prompt[i], same = 1;
        int32_t t;
        while (hive_seq_next(seqs[i], &t, 60000) == 1) {
            if (n < n_refs[i]) same &= t == refs[i][n];
            n++;
        }
        CHECKF(same && n >= n_refs[i], "concurrent sequence %d (%s): differs from its reference", i, prompts[i]);
        CHECK(hive_seq_finish(seqs[i]) == HIVE_FINISH_LENGTH);
        hive_seq_release(seqs[i]);
    }
    struct hive_sched_stats st;
    hive_sched_get_stats(sched, &st);
    CHECKF(st.draft_tokens > 0 && (!expect_accepted || st.decode_pass_tokens > st.decode_passes),
           "concurrent: %llu drafted, %llu tokens in %llu passes", (unsigned long long)st.draft_tokens,
           (unsigned long long)st.decode_pass_tokens, (unsigned long long)st.decode_passes);
    hive_sched_close(sched);
out:
    if (devnull) fclose(devnull);
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
}

int main(void) {
    char stories[1024];
    snprintf(stories, sizeof stories, "%s/models/stories260K.gguf", HIVE_SHARED_DIR);
    if (access(stories, R_OK) != 0) {
        printf("SKIP: %s not found\n", stories);
        return SKIP_CODE;
    }
    tc_setup(&env);
    int small = tc_small();
    char llama[256], qwen[256], other[256], vocab_other[256];
    snprintf(llama, sizeof llama, "%s/llama.gguf", env.dir);
    snprintf(qwen, sizeof qwen, "%s/qwen.gguf", env.dir);
    snprintf(other, sizeof other, "%s/other.gguf", env.dir);
    snprintf(vocab_other, sizeof vocab_other, "%s/vocab-other.gguf", env.dir);
    CHECK(make_model(llama, stories, "llama", "4", "11") == 0);
    CHECK(make_model(qwen, stories, "qwen2", "4", "12") == 0);
    CHECK(make_model(other, stories, "llama", "2", "13") == 0);

    struct tc_node nodes[3];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        CHECK(tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0);
    }
    char peers2[256], peers3[256];
    tc_peers(nodes, 2, peers2, sizeof peers2);
    tc_peers(nodes, 3, peers3, sizeof peers3);

    check_concurrent(stories, NULL, 1);
    check_concurrent(stories, stories, 1);
    check_concurrent(llama, other, 0); /* a draft that is mostly wrong */

    const char *models[] = {stories, llama, qwen};
    const char *names[] = {"stories260K", "synthetic llama", "synthetic qwen2"};
    /* Every k on one node and on 2 stages, and for stories260K on 3; the
     * small scale (the sanitizer build) tries fewer. */
    static const int some_k[] = {1, 3, 8, 0}, two_k[] = {2, 8, 0}, one_k[] = {4, 0};
    for (int m = 0; m < 3; m++) {
        char what[128];
        snprintf(what, sizeof what, "%s, one node", names[m]);
        check_topology(models[m], other, NULL, what, m == 0 || !small ? NULL : two_k);
        snprintf(what, sizeof what, "%s, 2 stages", names[m]);
        check_topology(models[m], other, peers2, what, !small ? NULL : m == 0 ? two_k : one_k);
        snprintf(what, sizeof what, "%s, 3 stages", names[m]);
        if (!small || m == 0) check_topology(models[m], other, peers3, what, !small && m == 0 ? NULL : small ? one_k : some_k);
    }

    /* A draft with another vocabulary: refused, naming the sizes. */
    char stats[256];
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    {
        char *argv[] = {env.bin, "mkmodel", "-o", vocab_other, "--vocab", "300", "--layers", "1", "-q", NULL};
        CHECK(tc_wait(tc_spawn(argv, -1, -1), 60000) == 0);
        const char *extra[] = {"--draft", vocab_other, NULL};
        CHECK(run_head(stories, NULL, 8, stats, extra) != 0);
        CHECK(tc_head_log_has(&env, "vocabulary has 300 tokens, the model's 512"));
        CHECK(run_head(stories, peers2, 8, stats, extra) != 0);
        CHECK(tc_head_log_has(&env, "a draft must share the model's vocabulary"));
    }
    /* The trace names the acceptance and the tokens per pass. */
    {
        char trace[300];
        snprintf(trace, sizeof trace, "%s/trace.json", env.dir);
        const char *extra[] = {"--draft", stories, "--draft-fixed", "--draft-max", "4", "--trace", trace, NULL};
        CHECK(run_head(stories, NULL, 41, stats, extra) == 0);
        char *t = check_read_file(trace, NULL);
        CHECKF(t && strstr(t, "head (drafts 100% of ") && strstr(t, "accepted, 5.00 tok/pass)"), "trace: %.200s",
               t ? t : "(none)");
        CHECK(t && strstr(t, "decode + verify (1 sequences, 4 drafted, 5 tokens out)"));
        free(t);
    }
    /* Bad options are named. */
    {
        const char *extra[] = {"--draft-max", "17", "--draft-ngram", NULL};
        CHECK(run_head(stories, NULL, 8, stats, extra) != 0);
        CHECK(tc_head_log_has(&env, "--draft-max"));
        const char *both[] = {"--draft-ngram", "--draft", stories, NULL};
        CHECK(run_head(stories, NULL, 8, stats, both) != 0);
        CHECK(tc_head_log_has(&env, "pick one"));
    }
    /* Sampling with drafts: the run completes with every token asked for
     * (the accept/reject rule itself is tested in test_sample). */
    {
        const char *extra[] = {"--spread", "--draft", stories, "--temp", "0.8", "--seed", "5", NULL};
        CHECK(run_head(stories, peers2, 40, stats, extra) == 0);
        struct tc_stats st;
        CHECK(tc_read_stats(stats, &st) == 0);
        CHECK(st.n_tokens == st.n_prompt + 40 || st.n_tokens > st.n_prompt); /* may end at an end-of-text token */
        struct spec_stats sp;
        CHECK(read_spec(stats, &sp) == 0 && sp.drafted > 0 && sp.accepted > 0 && sp.accepted <= sp.drafted);
    }
    for (int i = 0; i < 3; i++) CHECK(tc_node_stop(&nodes[i]) == 0);
    tc_cleanup(&env);
    return check_result("test_spec");
}
