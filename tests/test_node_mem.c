/* test_node_mem.c - `hive node` started inside a 300 MiB memory cgroup
 * reports a default memory budget within that limit (it used to claim half
 * of the machine's RAM and was OOM-killed); then two such nodes, each in a
 * cgroup of its own, run a model that fits in neither alone, give the
 * single-node answer, and neither is killed. Needs root and a writable
 * memory cgroup (v1 memory controller or v2 with memory delegated); skips
 * (77) with a message otherwise. */
#include "hive/cluster.h"
#include "hive/mkmodel.h"
#include "test_cluster_util.h"

#define LIMIT (300ull << 20)

/* The directory of this process's memory cgroup; 1 = v2, 0 = v1, -1 = none. */
static int own_memory_cgroup(char *dir, size_t cap) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return -1;
    char line[1024], v1[1024] = "", v2[1024] = "";
    int has_v1 = 0, has_v2 = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        if (!strcmp(line, "0:")) {
            snprintf(v2, sizeof v2, "%s", c2 + 1);
            has_v2 = 1;
        } else if (strstr(c1 + 1, "memory")) {
            snprintf(v1, sizeof v1, "%s", c2 + 1);
            has_v1 = 1;
        }
    }
    fclose(f);
    struct stat st;
    if (has_v1) {
        snprintf(dir, cap, "/sys/fs/cgroup/memory%s", v1);
        if (stat(dir, &st) == 0) return 0;
    }
    if (has_v2) {
        snprintf(dir, cap, "/sys/fs/cgroup%s", v2);
        char ctl[1300];
        snprintf(ctl, sizeof ctl, "%s/cgroup.controllers", dir);
        char *text = check_read_file(ctl, NULL);
        int ok = text && strstr(text, "memory");
        free(text);
        if (ok) return 1;
    }
    return -1;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? -1 : 0;
}

/* Starts `hive node` inside a new memory cgroup dir (LIMIT) and reads its
 * address; returns its pid or -1. */
static pid_t node_in_cgroup(struct tc_env *e, const char *parent, int v2, const char *name, char *dir, size_t dir_cap,
                            char *addr, size_t addr_cap) {
    char path[1400], limit[32], procs[1400], script[4096], log[256], cache[256];
    snprintf(dir, dir_cap, "%s/hive-test-%d-%s", parent, (int)getpid(), name);
    if (mkdir(dir, 0755) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    snprintf(limit, sizeof limit, "%llu", LIMIT);
    if (write_text(path, limit) != 0) return -1;
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(log, sizeof log, "%s/%s.log", e->dir, name);
    snprintf(cache, sizeof cache, "%s/cache-%s", e->dir, name);
    int pfd[2];
    if (pipe(pfd)) return -1;
    snprintf(script, sizeof script,
             "echo $$ > '%s' || exit 3; exec '%s' node --listen 127.0.0.1:0 --key '%s' --cache-dir '%s' "
             "--no-probe --no-announce -t 1 --name %s",
             procs, e->bin, e->key, cache, name);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, pfd[1], fd);
    close(pfd[1]);
    if (fd >= 0) close(fd);
    tc_read_listening(pfd[0], addr, addr_cap, 30000);
    close(pfd[0]);
    return addr[0] ? pid : -1;
}

/* A model bigger than one node's budget runs on two capped nodes. */
static void run_split_model(struct tc_env *e, const char *parent, int v2, uint64_t budget) {
    char model[300], err[HIVE_ERR_LEN];
    snprintf(model, sizeof model, "%s/big.gguf", e->dir);
    struct hive_mkmodel_opts o = {0};
    o.arch = "llama";
    o.type = "q8_0";
    o.dim = 1024;
    o.n_layers = 15;
    o.n_heads = 8;
    o.n_kv_heads = 4;
    o.ff = 2816;
    o.vocab = 320;
    o.ctx = 256;
    o.seed = 3;
    o.n_threads = 2;
    if (hive_mkmodel(&o, model, err) != HIVE_OK) {
        CHECKF(0, "mkmodel: %s", err);
        return;
    }
    struct stat st;
    CHECK(stat(model, &st) == 0);
    char a[32], b[32];
    printf("model of %s; each node's budget %s\n", hive_format_size((uint64_t)st.st_size, a, sizeof a),
           hive_format_size(budget, b, sizeof b));
    CHECKF((uint64_t)st.st_size > budget, "the model (%llu bytes) fits one node's budget (%llu)",
           (unsigned long long)st.st_size, (unsigned long long)budget);
    static int32_t ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_ref = tc_reference(model, "Once upon a time", 12, &greedy, ref, TC_MAX_TOK);
    char dirs[2][1300], addrs[2][64];
    pid_t pids[2];
    pids[0] = node_in_cgroup(e, parent, v2, "capped0", dirs[0], sizeof dirs[0], addrs[0], sizeof addrs[0]);
    pids[1] = node_in_cgroup(e, parent, v2, "capped1", dirs[1], sizeof dirs[1], addrs[1], sizeof addrs[1]);
    CHECKF(pids[0] > 0 && pids[1] > 0, "capped nodes did not start");
    if (pids[0] > 0 && pids[1] > 0) {
        char peers[160], stats[300];
        snprintf(peers, sizeof peers, "%s,%s", addrs[0], addrs[1]);
        snprintf(stats, sizeof stats, "%s/stats.json", e->dir);
        const char *extra[] = {"--ctx", "256", NULL};
        int rc = tc_head_run(e, model, peers, "Once upon a time", 12, stats, extra);
        CHECKF(rc == 0, "the run on two capped nodes exited %d", rc);
        struct tc_stats s;
        CHECK(tc_read_stats(stats, &s) == 0);
        CHECKF(s.n_stages == 2, "%d stages, expected the model split over both nodes", s.n_stages);
        TC_CHECK_TOKENS(&s, ref, n_ref, "run on two memory-capped nodes");
        if (rc) tc_head_log_print(e);
        for (int i = 0; i < 2; i++)
            CHECKF(kill(pids[i], 0) == 0 && waitpid(pids[i], NULL, WNOHANG) == 0, "capped node %d was killed", i);
    }
    for (int i = 0; i < 2; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            CHECK(tc_wait(pids[i], 20000) == 0);
        }
        for (int k = 0; k < 50 && rmdir(dirs[i]) != 0; k++) tc_sleep_ms(100);
    }
}

int main(void) {
    if (geteuid() != 0) {
        printf("SKIP: needs root to make a memory cgroup\n");
        return SKIP_CODE;
    }
    char parent[1200], dir[1300], path[1400], limit[32];
    int v2 = own_memory_cgroup(parent, sizeof parent);
    if (v2 < 0) {
        printf("SKIP: no memory cgroup controller found\n");
        return SKIP_CODE;
    }
    snprintf(dir, sizeof dir, "%s/hive-test-%d", parent, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        printf("SKIP: cannot create %s: %s\n", dir, strerror(errno));
        return SKIP_CODE;
    }
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
    snprintf(limit, sizeof limit, "%llu", LIMIT);
    if (write_text(path, limit) != 0) {
        printf("SKIP: cannot set %s\n", path);
        rmdir(dir);
        return SKIP_CODE;
    }
    struct tc_env e;
    tc_setup(&e);
    char procs[1400], script[4096], log[256], cache[256];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    snprintf(log, sizeof log, "%s/node.log", e.dir);
    snprintf(cache, sizeof cache, "%s/cache", e.dir);
    /* The shell joins the cgroup, then becomes the node (same pid). */
    snprintf(script, sizeof script,
             "echo $$ > '%s' || exit 3; exec '%s' node --listen 127.0.0.1:0 --key '%s' --cache-dir '%s' "
             "--no-probe -t 1",
             procs, e.bin, e.key, cache);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, -1, fd);
    if (fd >= 0) close(fd);
    uint64_t budget = 0;
    int found = 0;
    for (int waited = 0; waited < 30000 && !found; waited += 50) {
        tc_sleep_ms(50);
        char *text = check_read_file(log, NULL);
        const char *m = text ? strstr(text, "memory budget ") : NULL;
        if (m) {
            double v = 0;
            char unit[8] = "";
            if (sscanf(m + 14, "%lf %7[A-Za-z]", &v, unit) == 2) {
                char s[64];
                snprintf(s, sizeof s, "%f%s", v, unit);
                found = hive_parse_size(s, &budget) == 0 ? 1 : -1;
            } else {
                found = -1;
            }
        }
        free(text);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = 0;
            break;
        }
    }
    CHECKF(found == 1, "the node printed no memory budget (log %s)", log);
    if (found == 1) {
        char a[32], b[32], c[32];
        printf("node in a %s cgroup (%s) reports a budget of %s (outside it: %s)\n",
               hive_format_size(LIMIT, a, sizeof a), v2 ? "v2" : "v1", hive_format_size(budget, b, sizeof b),
               hive_format_size(hive_mem_budget_default(), c, sizeof c));
        CHECKF(budget > 0 && budget <= LIMIT / 2, "budget %llu of a %llu limit", (unsigned long long)budget,
               (unsigned long long)LIMIT);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        CHECK(tc_wait(pid, 20000) == 0);
    }
    /* The cgroup can go once its last task is gone. */
    for (int i = 0; i < 50 && rmdir(dir) != 0; i++) tc_sleep_ms(100);
    if (found == 1 && !tc_small()) run_split_model(&e, parent, v2, budget);
    tc_cleanup(&e);
    return check_result("test_node_mem");
}
