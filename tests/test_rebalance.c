/* test_rebalance.c - adaptive balance (issue 7): a node slowed down in the
 * middle of a long answer loses its layers, with the reason in the log, and
 * the answer stays the undisturbed single-node one.
 *
 * Two `hive node` processes on 127.0.0.1 run a synthetic llama model large
 * enough that compute, not the loopback hops, sets the pace. After the
 * answer has started, one node is moved into a CPU cgroup with a quota of a
 * twentieth of a core (cgroup v1 cpu.cfs_quota_us, or v2 cpu.max): well below
 * what its share of the ring needs here, where the loopback hops leave each
 * node idle most of the time (a quarter of a core does not slow it). Needs root
 * and a writable cpu controller; skips (77) with a message otherwise. */
#include "test_cluster_util.h"

#include "hive/mkmodel.h"

#define PROMPT "Once upon a time"
#define N_GEN 1000

static struct tc_env env;
static char cg_dir[256], cg_procs[300];

/* Makes a cgroup limited to a twentieth of a core; 0 on success. */
static int cgroup_make(void) {
    char path[300];
    const char *v1 = "/sys/fs/cgroup/cpu", *v2 = "/sys/fs/cgroup";
    snprintf(cg_dir, sizeof cg_dir, "%s/hive-rebalance-%d", v1, (int)getpid());
    if (access(v1, W_OK) == 0 && mkdir(cg_dir, 0755) == 0) {
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", cg_dir);
        FILE *f = fopen(path, "w");
        int ok = f && fprintf(f, "5000\n") > 0;
        if (f) ok &= fclose(f) == 0;
        snprintf(cg_procs, sizeof cg_procs, "%s/cgroup.procs", cg_dir);
        if (ok) return 0;
        rmdir(cg_dir);
    }
    snprintf(cg_dir, sizeof cg_dir, "%s/hive-rebalance-%d", v2, (int)getpid());
    snprintf(path, sizeof path, "%s/cgroup.controllers", v2);
    if (access(path, R_OK) == 0 && mkdir(cg_dir, 0755) == 0) {
        snprintf(path, sizeof path, "%s/cpu.max", cg_dir);
        FILE *f = fopen(path, "w");
        int ok = f && fprintf(f, "5000 100000\n") > 0;
        if (f) ok &= fclose(f) == 0;
        snprintf(cg_procs, sizeof cg_procs, "%s/cgroup.procs", cg_dir);
        if (ok) return 0;
        rmdir(cg_dir);
    }
    cg_dir[0] = '\0';
    return -1;
}

static int cgroup_add(pid_t pid) {
    FILE *f = fopen(cg_procs, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%d\n", (int)pid) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(void) {
    if (geteuid() != 0 || cgroup_make() != 0) {
        printf("test_rebalance: skipped (needs root and a writable cgroup cpu controller)\n");
        return 77;
    }
    tc_setup(&env);
    char model[300], err[HIVE_ERR_LEN];
    snprintf(model, sizeof model, "%s/synth-wide.gguf", env.dir);
    struct hive_mkmodel_opts o = {0};
    o.arch = "llama";
    o.type = "q8_0";
    o.dim = 384;
    o.n_layers = 8;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.ff = 1024;
    o.vocab = 320;
    o.ctx = 1100;
    o.seed = 5;
    o.n_threads = 1;
    CHECKF(hive_mkmodel(&o, model, err) == HIVE_OK, "mkmodel: %s", err);
    static int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, PROMPT, N_GEN, &greedy, ref, TC_MAX_TOK);
    CHECK(n_ref > 100);

    struct tc_node nodes[2];
    int started = 0;
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        started += tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0;
    }
    CHECK(started == 2);
    char peers[512], stats[300], log[300], out[300];
    tc_peers(nodes, 2, peers, sizeof peers);
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    snprintf(log, sizeof log, "%s/head.log", env.dir);
    snprintf(out, sizeof out, "%s/out.txt", env.dir);
    char n[16];
    snprintf(n, sizeof n, "%d", N_GEN);
    char *argv[48];
    const char *extra[] = {"--spread", NULL};
    tc_head_argv(&env, argv, 48, model, peers, PROMPT, n, stats, extra);
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t head = tc_spawn(argv, ofd, efd);
    close(ofd);
    close(efd);
    struct stat sb;
    for (int i = 0; i < 4000 && !(stat(out, &sb) == 0 && sb.st_size > 40); i++) tc_sleep_ms(5);
    CHECKF(cgroup_add(nodes[1].pid) == 0, "cannot move node 1 into %s", cg_procs);
    int rc = tc_wait(head, 180000);
    CHECKF(rc == 0, "head exited %d", rc);
    struct tc_stats st;
    CHECK(tc_read_stats(stats, &st) == 0);
    TC_CHECK_TOKENS(&st, ref, n_ref, "run with a throttled node");
    CHECKF(tc_head_log_has(&env, "rebalancing") && tc_head_log_has(&env, "slower per byte"),
           "the head did not move layers off the throttled node (or did not say why)");
    tc_head_log_print(&env);
    for (int i = 0; i < 2; i++) tc_node_stop(&nodes[i]);
    rmdir(cg_dir);
    tc_cleanup(&env);
    return check_result("test_rebalance");
}
