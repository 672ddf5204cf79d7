/* util.c - small helpers of the cluster module: sizes, cache directory,
 * OS name. */
#include "hive/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

int hive_parse_size(const char *s, uint64_t *out) {
    if (!s || !*s) return HIVE_ERR_INVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return HIVE_ERR_INVAL;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i' && mul > 1) end++; /* "GiB" */
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return HIVE_ERR_INVAL;
    double bytes = v * mul;
    if (bytes >= 1.8e19) return HIVE_ERR_INVAL;
    *out = (uint64_t)bytes;
    return HIVE_OK;
}

const char *hive_format_size(uint64_t n, char *buf, size_t cap) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : 1, v, unit[u]);
    return buf;
}

void hive_default_cache_dir(char *buf, size_t cap) {
    const char *env = getenv("HIVE_CACHE_DIR");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(buf, cap, "%s/hive", xdg);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(buf, cap, "%s/.cache/hive", home && *home ? home : "/tmp");
}

int hive_mkdirs(const char *path, char *err) {
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return hive_errf(err, HIVE_ERR_INVAL, "mkdir: bad path");
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return hive_errf(err, HIVE_ERR_IO, "mkdir %s: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return hive_errf(err, HIVE_ERR_IO, "mkdir %s: not a directory", path);
    return HIVE_OK;
}

void hive_os_name(char *buf, size_t cap) {
    struct utsname u;
    if (uname(&u) != 0) {
        snprintf(buf, cap, "unknown");
        return;
    }
    snprintf(buf, cap, "%s %s %s", u.sysname, u.release, u.machine);
}
