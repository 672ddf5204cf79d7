/* test_node_mem.c - `hive node` started inside a 300 MiB memory cgroup
 * reports a default memory budget within that limit (it used to claim half
 * of the machine's RAM and was OOM-killed). Needs root and a writable
 * memory cgroup (v1 memory controller or v2 with memory delegated); skips
 * (77) with a message otherwise. */
#include "hive/cluster.h"
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
    tc_cleanup(&e);
    return check_result("test_node_mem");
}
