/* bench_recovery.c - time from a stage's death to the next token (issue 7).
 *
 *   build/bench_recovery [--model PATH] [--kills N] [--signal kill|stop] [--tokens N] [--json FILE]
 *
 * Three `hive node` processes on 127.0.0.1 (-t 1 each) and a head
 * (`hive run --peers`, every node holding layers) generating a long answer.
 * Once text streams, the last stage's node is killed (SIGKILL, or frozen
 * with SIGSTOP so that the heartbeats must notice it); the longest silence
 * on the head's stdout from the signal on is the recovery as a user sees
 * it (from the kill to the next token; a token already on its way when the
 * node died does not hide it). The head's --stats-json gives its parts: detection,
 * re-plan, weights + setup, replay. One warm-up kill first, so that the
 * stage files of the two-node plan are in the nodes' caches (the figure
 * asked for is with weights already cached). Prints each run, the medians
 * and a JSON line. Default model: ../shared/models/stories260K.gguf. */
#include <cjson/cJSON.h>

#include "bench_common.h"
#include "test_cluster_util.h"

#define PROMPT "Once upon a time"

struct sample {
    double to_next_token_ms, detect_ms, plan_ms, deploy_ms, replay_ms;
};

static double now_ms(void) { return hive_now_ms(); }

/* Reads the head's stdout until `after` bytes came; returns 0, -1 on EOF. */
static int read_until(int fd, long *have, long after, int timeout_ms) {
    char buf[4096];
    double end = now_ms() + timeout_ms;
    while (*have < after) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(end - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) return -1;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return -1;
        *have += n;
    }
    return 0;
}

static int one_run(struct tc_env *env, const char *model, struct tc_node *nodes, int sig, int n_tokens,
                   struct sample *out) {
    char peers[512], stats[300], n[16], log[300];
    tc_peers(nodes, 3, peers, sizeof peers);
    snprintf(stats, sizeof stats, "%s/stats.json", env->dir);
    snprintf(log, sizeof log, "%s/head.log", env->dir);
    snprintf(n, sizeof n, "%d", n_tokens);
    char *argv[48];
    const char *extra[] = {"--spread", "--timeout", "120000", NULL};
    tc_head_argv(env, argv, 48, model, peers, PROMPT, n, stats, extra);
    int pfd[2];
    if (pipe(pfd)) return -1;
    int efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t head = tc_spawn(argv, pfd[1], efd);
    close(pfd[1]);
    close(efd);
    long have = 0;
    int rc = read_until(pfd[0], &have, (long)strlen(PROMPT) + 40, 300000);
    if (!rc) {
        /* A token or two may already be on their way when the node dies:
         * the recovery is the longest silence on stdout after the signal
         * (counting from the signal), over the next 60 bytes of text. */
        double t_prev = now_ms(), gap = 0;
        kill(nodes[2].pid, sig);
        for (long until = have + 60; have < until;) {
            if (read_until(pfd[0], &have, have + 1, 120000)) break;
            double t = now_ms();
            if (t - t_prev > gap) gap = t - t_prev;
            t_prev = t;
        }
        out->to_next_token_ms = gap;
    }
    char buf[4096];
    while (read(pfd[0], buf, sizeof buf) > 0) {}
    close(pfd[0]);
    int st = tc_wait(head, 300000);
    if (rc || st) {
        fprintf(stderr, "bench_recovery: run failed (head %d); its log:\n", st);
        tc_head_log_print(env);
        return -1;
    }
    FILE *f = fopen(stats, "rb");
    char *text = malloc(1 << 20);
    size_t len = f && text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    if (f) fclose(f);
    if (!text) return -1;
    text[len] = '\0';
    cJSON *doc = cJSON_Parse(text), *rec = cJSON_GetObjectItem(doc, "recovery");
    free(text);
    out->detect_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "detect_ms"));
    out->plan_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "plan_ms"));
    out->deploy_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "deploy_ms"));
    out->replay_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "replay_ms"));
    cJSON_Delete(doc);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const struct sample *s, int n, size_t off) {
    double v[64];
    for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)&s[i] + off);
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

int main(int argc, char **argv) {
    char model[512];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    int kills = 10, n_tokens = 200, sig = SIGKILL;
    const char *json = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) snprintf(model, sizeof model, "%s", argv[i + 1]);
        else if (!strcmp(argv[i], "--kills")) kills = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) n_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json = argv[i + 1];
        else if (!strcmp(argv[i], "--signal")) sig = !strcmp(argv[i + 1], "stop") ? SIGSTOP : SIGKILL;
        else {
            fprintf(stderr, "usage: bench_recovery [--model PATH] [--kills N] [--signal kill|stop] [--tokens N] [--json FILE]\n");
            return 2;
        }
    }
    if (kills < 1 || kills > 64) kills = 10;
    struct tc_env env;
    tc_setup(&env);
    struct tc_node nodes[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        if (tc_node_start(&env, &nodes[i], name, NULL, NULL)) return 1;
    }
    struct sample s[64];
    int ok = 0;
    for (int k = -1; k < kills; k++) { /* k = -1: the warm-up that fills the caches */
        struct sample x = {0};
        int rc = one_run(&env, model, nodes, sig, n_tokens, &x);
        kill(nodes[2].pid, SIGCONT);
        kill(nodes[2].pid, SIGKILL);
        waitpid(nodes[2].pid, NULL, 0);
        nodes[2].pid = 0;
        if (tc_node_start(&env, &nodes[2], "k2", NULL, NULL)) return 1; /* same name: same cache dir */
        if (rc) continue;
        printf("%s kill %2d: next token after %7.1f ms (detection %6.1f, re-plan %5.1f, weights + setup %7.1f, replay %7.1f)\n",
               k < 0 ? "warm-up" : "       ", k, x.to_next_token_ms, x.detect_ms, x.plan_ms, x.deploy_ms, x.replay_ms);
        if (k >= 0) s[ok++] = x;
    }
    double med = median_of(s, ok, offsetof(struct sample, to_next_token_ms));
    double det = median_of(s, ok, offsetof(struct sample, detect_ms)), pl = median_of(s, ok, offsetof(struct sample, plan_ms));
    double dep = median_of(s, ok, offsetof(struct sample, deploy_ms)), rep = median_of(s, ok, offsetof(struct sample, replay_ms));
    printf("median of %d: %.1f ms from %s to the next token (detection %.1f, re-plan %.1f, weights + setup %.1f, replay %.1f)\n",
           ok, med, sig == SIGKILL ? "SIGKILL" : "SIGSTOP", det, pl, dep, rep);
    char line[1024];
    snprintf(line, sizeof line,
             "{\"bench\":\"recovery\",\"model\":\"%s\",\"signal\":\"%s\",\"kills\":%d,\"median_ms\":%.1f,\"detect_ms\":%.1f,"
             "\"plan_ms\":%.1f,\"deploy_ms\":%.1f,\"replay_ms\":%.1f}",
             model, sig == SIGKILL ? "kill" : "stop", ok, med, det, pl, dep, rep);
    printf("%s\n", line);
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "%s\n", line);
            fclose(f);
        }
    }
    for (int i = 0; i < 3; i++) tc_node_stop(&nodes[i]);
    tc_cleanup(&env);
    return ok == kills ? 0 : 1;
}
