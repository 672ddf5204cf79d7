/* mem.c - how much memory this process may still use: MemAvailable from
 * /proc/meminfo, capped by the memory limit of the process's cgroup (v2
 * memory.max or v1 memory.limit_in_bytes) minus what the cgroup already
 * holds. A node in a 300 MiB container must not plan with the host's RAM.
 *
 * The cgroup directory comes from /proc/self/cgroup (the v2 "0::" line or
 * the v1 line whose controllers include "memory") joined to the mount point
 * that /proc/self/mountinfo gives for that hierarchy (minus the mount's own
 * root, as in a container that mounts only its sub-tree). Every ancestor up
 * to the mount point is checked, because a parent's limit binds a child too.
 * Used = usage - inactive_file: clean page cache that the kernel drops
 * before it OOM-kills is not counted as taken.
 *
 * Every path is read under a root prefix so tests can feed a fake tree. */
#include "hive/core.h"
#include "hive/os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_CAP 4096

/* Reads the first line of path into buf; 0 on success. */
static int read_line(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *r = fgets(buf, (int)cap, f);
    fclose(f);
    if (!r) return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* A decimal byte count, or "max" (-> UINT64_MAX). 0 on success. */
static int read_u64_file(const char *path, uint64_t *out) {
    char line[128];
    if (read_line(path, line, sizeof line)) return -1;
    if (!strcmp(line, "max")) {
        *out = UINT64_MAX;
        return 0;
    }
    char *end = NULL;
    unsigned long long v = strtoull(line, &end, 10);
    if (end == line || (*end && *end != ' ')) return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Value of "key N" in a memory.stat-style file; 0 when absent. */
static uint64_t stat_value(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t kl = strlen(key);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            v = (uint64_t)strtoull(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static uint64_t meminfo_available(const char *root) {
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/proc/meminfo", root);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024u;
}

/* The process's cgroup path for v2 (v2 = 1) or the v1 memory controller. */
static int own_cgroup(const char *root, int v2, char *out, size_t cap) {
    char path[PATH_CAP], line[PATH_CAP];
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        /* hierarchy-id:controllers:path */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = '\0';
        const char *ctl = c1 + 1, *cg = c2 + 1;
        int match = 0;
        if (v2) {
            match = !strcmp(line, "0") && !*ctl;
        } else {
            char list[256];
            snprintf(list, sizeof list, "%s", ctl);
            for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (!strcmp(t, "memory")) match = 1;
        }
        if (match && strlen(cg) < cap) {
            snprintf(out, cap, "%s", cg);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Mount point and mounted root of the v2 hierarchy or the v1 memory one,
 * from mountinfo: "id parent maj:min root mountpoint opts... - fstype src superopts". */
static int cgroup_mount(const char *root, int v2, char *mnt, size_t mcap, char *mroot, size_t rcap) {
    char path[PATH_CAP], line[PATH_CAP];
    snprintf(path, sizeof path, "%s/proc/self/mountinfo", root);
    FILE *f = fopen(path, "r");
    int found = -1;
    while (f && found && fgets(line, sizeof line, f)) {
        char r[PATH_CAP], m[PATH_CAP];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2) continue;
        const char *dash = strstr(line, " - ");
        if (!dash) continue;
        char fstype[64], super[1024] = "";
        if (sscanf(dash + 3, "%63s %*s %1023s", fstype, super) < 1) continue;
        int match = 0;
        if (v2) {
            match = !strcmp(fstype, "cgroup2");
        } else if (!strcmp(fstype, "cgroup")) {
            for (char *save = NULL, *t = strtok_r(super, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (!strcmp(t, "memory")) match = 1;
        }
        if (match && strlen(m) < mcap && strlen(r) < rcap) {
            snprintf(mnt, mcap, "%s", m);
            snprintf(mroot, rcap, "%s", r);
            found = 0;
        }
    }
    if (f) fclose(f);
    if (found) { /* no mountinfo: the usual places */
        snprintf(mnt, mcap, "%s", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory");
        snprintf(mroot, rcap, "/");
        found = 0;
    }
    return found;
}

/* Smallest (limit - used) over the cgroup and its ancestors in one
 * hierarchy; UINT64_MAX when no limit applies or nothing can be read. */
static uint64_t cgroup_headroom(const char *root, int v2) {
    char cg[PATH_CAP], mnt[PATH_CAP], mroot[PATH_CAP];
    if (own_cgroup(root, v2, cg, sizeof cg) || cgroup_mount(root, v2, mnt, sizeof mnt, mroot, sizeof mroot))
        return UINT64_MAX;
    /* Strip the mount's own root from the cgroup path. */
    const char *rel = cg;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") && !strncmp(cg, mroot, rl) && (cg[rl] == '/' || cg[rl] == '\0')) rel = cg + rl;
    while (*rel == '/') rel++;
    char dir[2 * PATH_CAP + 8];
    snprintf(dir, sizeof dir, "%s%s/%s", root, mnt, rel);
    size_t base_len = strlen(root) + strlen(mnt);
    /* Trailing slashes off, so the walk up strips one component a step. */
    for (size_t n = strlen(dir); n > base_len && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';
    const char *limit_name = v2 ? "memory.max" : "memory.limit_in_bytes";
    const char *usage_name = v2 ? "memory.current" : "memory.usage_in_bytes";
    uint64_t best = UINT64_MAX;
    for (;;) {
        char p[sizeof dir + 32];
        uint64_t limit, usage = 0;
        snprintf(p, sizeof p, "%s/%s", dir, limit_name);
        /* v1 writes "unlimited" as a page-rounded LONG_MAX. */
        if (read_u64_file(p, &limit) == 0 && limit < (1ull << 62)) {
            snprintf(p, sizeof p, "%s/%s", dir, usage_name);
            if (read_u64_file(p, &usage) != 0) usage = 0;
            snprintf(p, sizeof p, "%s/memory.stat", dir);
            uint64_t inactive = stat_value(p, v2 ? "inactive_file" : "total_inactive_file");
            if (!v2 && inactive == 0) inactive = stat_value(p, "inactive_file");
            uint64_t used = usage > inactive ? usage - inactive : 0;
            uint64_t room = limit > used ? limit - used : 0;
            if (room < best) best = room;
        }
        size_t n = strlen(dir);
        if (n <= base_len) break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < base_len) break;
        *slash = '\0';
    }
    return best;
}

/* Available bytes, and whether anything was known at all. */
static uint64_t available(const char *root, int *known) {
    if (!root) root = "";
    /* Systems without /proc say it their own way (Windows: os_win.c) */
    uint64_t avail = *root ? 0 : hive_os_mem_available();
    if (!avail) avail = meminfo_available(root);
    *known = avail > 0;
    uint64_t cg = cgroup_headroom(root, 1);
    uint64_t cg1 = cgroup_headroom(root, 0);
    if (cg1 < cg) cg = cg1;
    if (cg != UINT64_MAX) {
        *known = 1;
        if (avail == 0 || cg < avail) avail = cg;
    }
    return avail;
}

uint64_t hive_mem_available_at(const char *root) {
    int known;
    return available(root, &known);
}

uint64_t hive_mem_available(void) { return hive_mem_available_at(""); }

uint64_t hive_mem_budget_default_at(const char *root) {
    int known;
    uint64_t a = available(root, &known);
    return known ? a / 2 : 1ull << 30;
}

uint64_t hive_mem_budget_default(void) { return hive_mem_budget_default_at(""); }
