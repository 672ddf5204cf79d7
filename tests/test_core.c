/* test_core.c - errors, range splitting, the thread pool, and the memory
 * budget read from fake /proc and cgroup trees (v1, v2, nested limits,
 * a container that mounts only its own sub-tree). */
#include <dirent.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "hive/core.h"

struct sum_job {
    const int *v;
    int64_t n;
    long long partial[16];
    atomic_int calls;
};

static void sum_task(void *arg, int ith, int nth) {
    struct sum_job *j = arg;
    int64_t b, e;
    hive_split_range(j->n, ith, nth, &b, &e);
    long long s = 0;
    for (int64_t i = b; i < e; i++) s += j->v[i];
    j->partial[ith] = s;
    atomic_fetch_add(&j->calls, 1);
}

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

static char g_root[512];

/* Writes text to g_root/rel, creating the directories on the way. */
static void put(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_root, rel);
    for (char *s = path + strlen(g_root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        hive_mkdir(path);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    CHECKF(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* rm -r (nftw is not on every system) */
static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        remove(path);
    }
}

static void fresh_root(void) {
    if (g_root[0]) rm_tree(g_root);
    if (!check_temp_dir(g_root, sizeof g_root, "hive-mem-")) exit(1);
    put("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000000 kB\n"
                        "MemAvailable:    8388608 kB\nBuffers:           1000 kB\n");
}

static const char *MOUNTS_V2 =
    "31 23 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
static const char *MOUNTS_V1 =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static void test_mem_budget(void) {
    /* No cgroup at all: MemAvailable, half of it as the budget. */
    fresh_root();
    CHECK(hive_mem_available_at(g_root) == 8 * GiB);
    CHECK(hive_mem_budget_default_at(g_root) == 4 * GiB);

    /* cgroup v2, 300 MiB limit, 100 MiB charged of which 20 MiB is inactive page cache. */
    fresh_root();
    put("proc/self/mountinfo", MOUNTS_V2);
    put("proc/self/cgroup", "0::/user.slice/app.scope\n");
    put("sys/fs/cgroup/user.slice/memory.max", "max\n");
    put("sys/fs/cgroup/user.slice/memory.current", "2000000000\n");
    put("sys/fs/cgroup/user.slice/app.scope/memory.max", "314572800\n");
    put("sys/fs/cgroup/user.slice/app.scope/memory.current", "104857600\n");
    put("sys/fs/cgroup/user.slice/app.scope/memory.stat", "anon 83886080\nfile 20971520\ninactive_file 20971520\n");
    CHECKF(hive_mem_available_at(g_root) == 220 * MiB, "v2: %llu", (unsigned long long)hive_mem_available_at(g_root));
    CHECK(hive_mem_budget_default_at(g_root) == 110 * MiB);

    /* A parent's tighter limit binds the child. */
    put("sys/fs/cgroup/user.slice/memory.max", "209715200\n");
    put("sys/fs/cgroup/user.slice/memory.current", "157286400\n");
    CHECKF(hive_mem_available_at(g_root) == 50 * MiB, "v2 parent: %llu",
           (unsigned long long)hive_mem_available_at(g_root));

    /* A full cgroup leaves nothing (and the budget is 0, not a guess). */
    put("sys/fs/cgroup/user.slice/memory.max", "max\n");
    put("sys/fs/cgroup/user.slice/app.scope/memory.current", "400000000\n");
    CHECK(hive_mem_available_at(g_root) == 0);
    CHECK(hive_mem_budget_default_at(g_root) == 0);

    /* A limit above MemAvailable: MemAvailable wins. */
    put("sys/fs/cgroup/user.slice/app.scope/memory.max", "68719476736\n");
    put("sys/fs/cgroup/user.slice/app.scope/memory.current", "0\n");
    CHECK(hive_mem_available_at(g_root) == 8 * GiB);

    /* cgroup v1 (hybrid layout): memory.limit_in_bytes; "unlimited" ancestors ignored. */
    fresh_root();
    put("proc/self/mountinfo", MOUNTS_V1);
    put("proc/self/cgroup", "9:name=systemd:/\n5:cpu,cpuacct:/\n4:memory:/process_api/abc\n0::/\n");
    put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/fs/cgroup/memory/memory.usage_in_bytes", "9000000000\n");
    put("sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "314572800\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", "20971520\n");
    put("sys/fs/cgroup/memory/process_api/abc/memory.stat",
        "cache 10485760\ninactive_file 10485760\ntotal_inactive_file 10485760\n");
    CHECKF(hive_mem_available_at(g_root) == 290 * MiB, "v1: %llu", (unsigned long long)hive_mem_available_at(g_root));
    CHECK(hive_mem_budget_default_at(g_root) == 145 * MiB);

    /* A container that mounts only its own sub-tree: the mount root is stripped. */
    fresh_root();
    put("proc/self/mountinfo", "50 40 0:30 /docker/xyz /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n");
    put("proc/self/cgroup", "0::/docker/xyz\n");
    put("sys/fs/cgroup/memory.max", "536870912\n");
    put("sys/fs/cgroup/memory.current", "0\n");
    CHECKF(hive_mem_available_at(g_root) == 512 * MiB, "sub-tree mount: %llu",
           (unsigned long long)hive_mem_available_at(g_root));

    /* Garbage files change nothing; nothing readable at all: the 1 GiB guess. */
    fresh_root();
    put("proc/self/mountinfo", "garbage\n\n - \n");
    put("proc/self/cgroup", "::\n0\nno colons\n");
    CHECK(hive_mem_available_at(g_root) == 8 * GiB);
    put("proc/meminfo", "nothing here\n");
    CHECK(hive_mem_available_at(g_root) == 0);
    CHECK(hive_mem_budget_default_at(g_root) == 1 * GiB);
    rm_tree(g_root);

    /* This machine: within MemAvailable. Other tests run beside this one
     * and free memory between the two readings, so allow some drift. */
    g_root[0] = '\0';
    uint64_t budget = hive_mem_budget_default(), real = hive_mem_available();
    CHECK(real > 0);
    CHECKF(budget <= real / 2 + real / 4, "default budget %llu above half of the %llu available",
           (unsigned long long)budget, (unsigned long long)real);
}

int main(void) {
    test_mem_budget();
    char err[HIVE_ERR_LEN];
    CHECK(hive_errf(err, HIVE_ERR_IO, "open %s", "x") == HIVE_ERR_IO);
    CHECK(!strcmp(err, "open x"));
    CHECK(!strcmp(hive_status_name(HIVE_ERR_AUTH), "authentication failed"));

    /* split covers [0,n) exactly once, sizes differ by at most one */
    for (int nth = 1; nth <= 7; nth++) {
        for (int64_t n = 0; n < 30; n++) {
            int64_t prev_end = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                hive_split_range(n, i, nth, &b, &e);
                CHECK(b == prev_end);
                CHECK(e - b == n / nth || e - b == n / nth + 1);
                prev_end = e;
            }
            CHECK(prev_end == n);
        }
    }

    enum { N = 100003 };
    static int v[N];
    long long want = 0;
    for (int i = 0; i < N; i++) {
        v[i] = (i * 7919) % 1000 - 500;
        want += v[i];
    }
    for (int nt = 1; nt <= 4; nt++) {
        hive_pool *pool = hive_pool_create(nt);
        CHECK(pool != NULL);
        CHECK(hive_pool_size(pool) == nt);
        /* many back-to-back jobs exercise the spin/sleep hand-off */
        for (int rep = 0; rep < 300; rep++) {
            struct sum_job j = {.v = v, .n = N};
            atomic_init(&j.calls, 0);
            hive_pool_run(pool, sum_task, &j);
            long long got = 0;
            for (int i = 0; i < nt; i++) got += j.partial[i];
            if (got != want || atomic_load(&j.calls) != nt) {
                CHECKF(0, "nt=%d rep=%d got %lld want %lld calls %d", nt, rep, got, want, atomic_load(&j.calls));
                break;
            }
        }
        hive_pool_free(pool);
    }
    hive_pool_run(NULL, sum_task, &(struct sum_job){.v = v, .n = 10});
    CHECK(hive_cpu_count() >= 1);
    return check_result("test_core");
}
