/* test_fleet.c - replicas (issue 10): three `hive node`s that each hold
 * stories260K whole become three replicas; requests spread over them and
 * each answer is the single-node one. When a replica's node is killed
 * (SIGKILL) or frozen (SIGSTOP) mid-answer, the replica leaves the rotation
 * and its answers go on on the others, greedy and seeded-sampled alike,
 * token for token as if nothing happened. */
#include "hive/fleet.h"
#include "test_cluster_util.h"

#define N_NODES 3

static struct tc_env env;

struct answer {
    const char *prompt;
    struct hive_sampler_params sp;
    int max_tokens;
    int32_t ref[TC_MAX_TOK];
    int n_ref, n_prompt;
    hive_fleet_seq *q;
    int n_got, same;
};

static void answer_start(hive_fleet *f, const hive_tokenizer *tok, const char *model, struct answer *a) {
    int32_t p[256];
    char err[HIVE_ERR_LEN];
    a->n_prompt = hive_tokenize(tok, a->prompt, strlen(a->prompt), 1, 0, p, 256);
    a->n_ref = tc_reference(model, a->prompt, a->max_tokens, &a->sp, a->ref, TC_MAX_TOK);
    struct hive_seq_params sp = {.prompt = p, .n_prompt = a->n_prompt, .max_tokens = a->max_tokens, .sampling = a->sp,
                                 .penalize_prompt = 1};
    a->same = 1;
    a->n_got = a->n_prompt;
    int rc = hive_fleet_seq_submit(f, &sp, &a->q, err);
    CHECKF(rc == 0, "submit: %s", err);
}

/* Reads up to n tokens (all when n < 0), checking them against the reference. */
static void answer_read(struct answer *a, int n) {
    int32_t t;
    for (int k = 0; (n < 0 || k < n) && hive_fleet_seq_next(a->q, &t, 60000) == 1; k++) {
        if (a->n_got < a->n_ref) a->same &= t == a->ref[a->n_got];
        a->n_got++;
    }
}

static void answer_check(struct answer *a, const char *what) {
    /* The reference stops at an end-of-text token; the scheduler does not. */
    CHECKF(a->same && a->n_got >= a->n_ref, "%s (%s): the answer differs from the single-node one", what, a->prompt);
    CHECKF(hive_fleet_seq_finish(a->q) == HIVE_FINISH_LENGTH, "%s: finish %d (%s)", what, hive_fleet_seq_finish(a->q),
           hive_fleet_seq_error(a->q));
}

static int replica_of_node(hive_fleet *f, const struct tc_node *n) {
    for (int r = 0; r < hive_fleet_n_replicas(f); r++) {
        const char *addrs[8];
        int k = hive_fleet_replica_nodes(f, r, addrs, 8);
        for (int i = 0; i < k && i < 8; i++)
            if (!strcmp(addrs[i], n->addr)) return r;
    }
    return -1;
}

int main(void) {
    char model[1024];
    snprintf(model, sizeof model, "%s/models/stories260K.gguf", HIVE_SHARED_DIR);
    if (access(model, R_OK) != 0) {
        printf("SKIP: %s not found\n", model);
        return SKIP_CODE;
    }
    tc_setup(&env);
    setenv("HIVE_TEST_STEP_DELAY_MS", "4", 1); /* answers long enough to lose a node in the middle */
    struct tc_node nodes[N_NODES];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < N_NODES; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        CHECK(tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0);
    }
    unsetenv("HIVE_TEST_STEP_DELAY_MS");
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    CHECK(hive_gguf_open(&g, model, err) == 0 && hive_tokenizer_load(&tok, g, err) == 0);

    const char *addrs[N_NODES];
    for (int i = 0; i < N_NODES; i++) addrs[i] = nodes[i].addr;
    struct hive_fleet_opts fo;
    memset(&fo, 0, sizeof fo);
    fo.sched.model_path = model;
    fo.sched.peers = addrs;
    fo.sched.n_peers = N_NODES;
    fo.sched.max_seqs = 4;
    fo.sched.n_threads = 1;
    fo.sched.dead_after_ms = 600;
    CHECK(hive_key_load(env.key, fo.sched.key, err) == 0);
    FILE *log = fopen("/dev/null", "w");
    fo.sched.log = log;
    hive_fleet *f = NULL;
    int rc = hive_fleet_open(&f, &fo, err);
    CHECKF(rc == 0, "fleet: %s", err);
    if (rc) return check_result("test_fleet");
    CHECKF(hive_fleet_n_replicas(f) == N_NODES, "%d replicas, expected one per node", hive_fleet_n_replicas(f));

    /* Six answers at once: spread over the replicas, each the reference. */
    static struct answer a[6];
    static const char *prompts[] = {"Once upon a time", "The little dog", "Lily and Tom", "One day, a big",
                                    "There was a cat", "Tim had a red ball"};
    for (int i = 0; i < 6; i++) {
        a[i] = (struct answer){.prompt = prompts[i], .sp = hive_sampler_default_params(), .max_tokens = 40};
        answer_start(f, tok, model, &a[i]);
    }
    for (int i = 0; i < 6; i++) {
        answer_read(&a[i], -1);
        answer_check(&a[i], "six at once");
        hive_fleet_seq_release(a[i].q);
    }
    struct hive_sched_node nd[16];
    int n_nd = hive_fleet_get_nodes(f, nd, 16);
    CHECK(n_nd == N_NODES);
    for (int i = 0; i < n_nd && i < 16; i++) CHECKF(nd[i].tokens > 0, "node %s computed nothing", nd[i].name);

    /* Three long answers, one per replica (least loaded), one of them
     * sampled with a seed; the node of the first answer's replica is
     * killed in the middle, then the node of the second's is frozen. */
    struct hive_sampler_params sampled = hive_sampler_default_params();
    sampled.temperature = 0.8f;
    sampled.seed = 42;
    a[0] = (struct answer){.prompt = "Once upon a time", .sp = sampled, .max_tokens = 300};
    a[1] = (struct answer){.prompt = "The little dog", .sp = hive_sampler_default_params(), .max_tokens = 300};
    a[2] = (struct answer){.prompt = "Lily and Tom", .sp = hive_sampler_default_params(), .max_tokens = 300};
    for (int i = 0; i < 3; i++) answer_start(f, tok, model, &a[i]);
    for (int i = 0; i < 3; i++) answer_read(&a[i], 20);
    int victim[2] = {-1, -1};
    for (int v = 0; v < 2; v++) {
        /* The node that holds replica v's ring. */
        for (int i = 0; i < N_NODES; i++)
            if (replica_of_node(f, &nodes[i]) == v) victim[v] = i;
    }
    CHECK(victim[0] >= 0 && victim[1] >= 0);
    if (victim[0] >= 0 && victim[1] >= 0) {
        kill(nodes[victim[0]].pid, SIGKILL);
        answer_read(&a[0], 40);
        kill(nodes[victim[1]].pid, SIGSTOP);
        for (int i = 0; i < 3; i++) {
            answer_read(&a[i], -1);
            answer_check(&a[i], i == 0 ? "killed under it" : i == 1 ? "frozen under it" : "untouched");
        }
        /* The first answer went on on the least-loaded replica left, which
         * may be the one frozen next: then it moved twice. */
        CHECKF(hive_fleet_seq_moves(a[0].q) >= 1 && hive_fleet_seq_moves(a[1].q) == 1 && hive_fleet_seq_moves(a[2].q) == 0,
               "moves %d %d %d", hive_fleet_seq_moves(a[0].q), hive_fleet_seq_moves(a[1].q), hive_fleet_seq_moves(a[2].q));
        CHECK(!hive_fleet_replica_ok(f, 0) && !hive_fleet_replica_ok(f, 1) && hive_fleet_replica_ok(f, 2));
        for (int i = 0; i < 3; i++) hive_fleet_seq_release(a[i].q);
        /* New answers go to the replica left. */
        a[3] = (struct answer){.prompt = "There was a cat", .sp = hive_sampler_default_params(), .max_tokens = 30};
        answer_start(f, tok, model, &a[3]);
        answer_read(&a[3], -1);
        answer_check(&a[3], "after two replicas failed");
        hive_fleet_seq_release(a[3].q);
        kill(nodes[victim[1]].pid, SIGCONT);
    }
    hive_fleet_close(f);
    fclose(log);
    for (int i = 0; i < N_NODES; i++) {
        if (i == victim[0]) {
            waitpid(nodes[i].pid, NULL, 0);
            continue;
        }
        tc_node_stop(&nodes[i]);
    }
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    tc_cleanup(&env);
    return check_result("test_fleet");
}
