/* bench_jobs.c - jobs per minute and aggregate tokens/s of a --map job on
 * 1, 2 and 4 local nodes, and the extra wall time one killed node costs.
 *
 *   build/bench_jobs [--model PATH] [--prompts N] [--tokens N] [--reps N] [--per-replica N] [--json FILE]
 *
 * Four `hive node` processes on 127.0.0.1, one thread each (-t 1). Each run
 * is `hive job --map FILE --peers <first k nodes> --no-merge --json`; the
 * planner forms one replica per node when the model fits on each. Runs are
 * interleaved (1, 2, 4, 1, 2, 4, ...) and each figure is the median. The
 * kill run: the job on 4 nodes, one node SIGKILLed once a third of the
 * median 4-node wall time has passed; its subtask goes to another replica.
 * Default model: a TinyLlama-1.1B-shaped Q4_0 (hive mkmodel --preset
 * tinyllama-1.1b --type q4_0), made once under /tmp. Prints each run, the
 * medians, the 2-node / 1-node ratio (target >= 1.6) and a JSON line. */
#include <cjson/cJSON.h>

#include "bench_common.h"
#include "hive/job.h"
#include "test_cluster_util.h"

#define MAX_REPS 16

static struct tc_env env;
static char map_path[300];
static char per_replica[16]; /* hive job's default unless --per-replica */

struct run {
    double wall_ms;
    double tokens;
    int retries;
};

/* Runs the job over peers; 0 with *r filled. kill_pid > 0: SIGKILL it
 * after kill_after_ms. */
static int run_job(const char *model, const char *peers, int n_tokens, pid_t kill_pid, double kill_after_ms,
                   struct run *r) {
    char out[300], log[300], n[16];
    snprintf(out, sizeof out, "%s/job.json", env.dir);
    snprintf(log, sizeof log, "%s/job.log", env.dir);
    snprintf(n, sizeof n, "%d", n_tokens);
    char *argv[] = {env.bin, "job", "--map", map_path, "-m", (char *)model, "--peers", (char *)peers, "--key", env.key,
                    "-n", n, "--no-merge", "--json", "--no-ledger", "--deadline", "600000", "--per-replica", per_replica,
                    NULL};
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, ofd, efd);
    close(ofd);
    close(efd);
    if (kill_pid > 0) {
        tc_sleep_ms((int)kill_after_ms);
        kill(kill_pid, SIGKILL);
    }
    int st = tc_wait(pid, 3600000);
    char *buf = check_read_file(out, NULL);
    cJSON *doc = buf ? cJSON_Parse(buf) : NULL;
    free(buf);
    cJSON *sum = cJSON_GetObjectItem(doc, "summary");
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "state"));
    int ok = st == 0 && state && !strcmp(state, "done") && sum;
    if (ok) {
        r->wall_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(sum, "wall_ms"));
        r->tokens = cJSON_GetNumberValue(cJSON_GetObjectItem(sum, "completion_tokens"));
        r->retries = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(sum, "retries"));
    } else {
        fprintf(stderr, "bench_jobs: the job failed (exit %d); its log is %s\n", st, log);
    }
    cJSON_Delete(doc);
    return ok ? 0 : -1;
}

static double median_of(const struct run *r, int n, int tokens_per_s) {
    double v[MAX_REPS];
    for (int i = 0; i < n; i++) v[i] = tokens_per_s ? r[i].tokens * 1000.0 / r[i].wall_ms : r[i].wall_ms;
    return hive_median(v, n);
}

int main(int argc, char **argv) {
    const char *model_arg = NULL, *json_path = NULL;
    int n_prompts = 24, n_tokens = 16, reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--prompts")) n_prompts = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) n_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json_path = argv[i + 1];
        else if (!strcmp(argv[i], "--per-replica")) snprintf(per_replica, sizeof per_replica, "%d", atoi(argv[i + 1]));
        else {
            fprintf(stderr, "usage: bench_jobs [--model PATH] [--prompts N] [--tokens N] [--reps N] [--per-replica N] [--json FILE]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > MAX_REPS || n_prompts < 1 || n_tokens < 1) return 1;
    if (!per_replica[0]) snprintf(per_replica, sizeof per_replica, "%d", HIVE_JOB_PER_REPLICA);
    char model[1024];
    if (model_arg) snprintf(model, sizeof model, "%s", model_arg);
    else if (bench_synth_model("/tmp", "jobs-tl.gguf", "--preset tinyllama-1.1b --type q4_0", model, sizeof model))
        return 1;
    tc_setup(&env);
    snprintf(map_path, sizeof map_path, "%s/map.txt", env.dir);
    FILE *f = fopen(map_path, "w");
    for (int i = 0; f && i < n_prompts; i++) fprintf(f, "Summarise document number %d in one line.\n", i + 1);
    if (f) fclose(f);

    struct tc_node nodes[4];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        if (tc_node_start(&env, &nodes[i], name, NULL, NULL)) return 1;
    }
    const int ks[3] = {1, 2, 4};
    char peers[3][512];
    for (int c = 0; c < 3; c++) tc_peers(nodes, ks[c], peers[c], sizeof peers[c]);
    /* Warm-up: every node gets the weights once (cached afterwards), untimed. */
    struct run warm;
    fprintf(stderr, "bench_jobs: warming up (weights to every node)\n");
    if (run_job(model, peers[2], 1, 0, 0, &warm)) return 1;

    struct run runs[3][MAX_REPS];
    for (int rep = 0; rep < reps; rep++)
        for (int c = 0; c < 3; c++) {
            if (run_job(model, peers[c], n_tokens, 0, 0, &runs[c][rep])) return 1;
            printf("run %d: %d node(s): %.1f s, %.0f tokens, %.2f tok/s\n", rep + 1, ks[c], runs[c][rep].wall_ms / 1000,
                   runs[c][rep].tokens, runs[c][rep].tokens * 1000 / runs[c][rep].wall_ms);
            fflush(stdout);
        }
    double wall[3], tps[3];
    for (int c = 0; c < 3; c++) wall[c] = median_of(runs[c], reps, 0), tps[c] = median_of(runs[c], reps, 1);
    struct run killed;
    int kill_ok = run_job(model, peers[2], n_tokens, nodes[3].pid, wall[2] / 3, &killed) == 0;
    waitpid(nodes[3].pid, NULL, 0);
    nodes[3].pid = 0;

    printf("\n%d prompts x %d tokens, 1 thread per node, medians of %d interleaved runs:\n", n_prompts, n_tokens, reps);
    for (int c = 0; c < 3; c++)
        printf("  %d node(s): %6.1f s  %6.2f jobs/min  %7.2f tok/s aggregate\n", ks[c], wall[c] / 1000,
               60000.0 / wall[c], tps[c]);
    printf("  2 nodes / 1 node: %.2fx aggregate tok/s (target >= 1.6)\n", tps[1] / tps[0]);
    printf("  4 nodes / 1 node: %.2fx\n", tps[2] / tps[0]);
    if (kill_ok)
        printf("  one of 4 nodes killed at %.1f s: %.1f s (+%.1f s, %d subtask(s) retried)\n", wall[2] / 3000,
               killed.wall_ms / 1000, (killed.wall_ms - wall[2]) / 1000, killed.retries);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompts", n_prompts);
    cJSON_AddNumberToObject(o, "tokens", n_tokens);
    cJSON_AddNumberToObject(o, "reps", reps);
    for (int c = 0; c < 3; c++) {
        char k[32];
        snprintf(k, sizeof k, "wall_ms_%d", ks[c]);
        cJSON_AddNumberToObject(o, k, wall[c]);
        snprintf(k, sizeof k, "tok_s_%d", ks[c]);
        cJSON_AddNumberToObject(o, k, tps[c]);
    }
    cJSON_AddNumberToObject(o, "ratio_2_1", tps[1] / tps[0]);
    if (kill_ok) cJSON_AddNumberToObject(o, "killed_extra_ms", killed.wall_ms - wall[2]);
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    if (json_path) {
        FILE *jf = fopen(json_path, "w");
        if (jf) fprintf(jf, "%s\n", s), fclose(jf);
    }
    free(s);
    cJSON_Delete(o);
    for (int i = 0; i < 4; i++) tc_node_stop(&nodes[i]);
    tc_cleanup(&env);
    return 0;
}
