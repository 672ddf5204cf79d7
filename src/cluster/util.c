/* util.c - small helpers of the cluster module: sizes, cache directory.
 * (The OS name is the OS layer's: hive_os_name in include/hive/os.h.) */
#include "hive/cluster.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/os.h"

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
    char base[4096];
    if (hive_user_cache_base(base, sizeof base) == 0) {
        snprintf(buf, cap, "%s/hive", base);
        return;
    }
    hive_temp_dir(base, sizeof base);
    snprintf(buf, cap, "%s/hive-cache", base);
}

int hive_mkdirs(const char *path, char *err) {
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return hive_errf(err, HIVE_ERR_INVAL, "mkdir: bad path");
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\\' && tmp[i] != '\0') continue;
        if (tmp[i - 1] == ':') continue; /* a Windows drive, "C:/" */
        char c = tmp[i];
        tmp[i] = '\0';
        if (hive_mkdir(tmp) != 0 && errno != EEXIST && errno != EACCES)
            return hive_errf(err, HIVE_ERR_IO, "mkdir %s: %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    struct hive_file_id st;
    if (hive_file_id(path, &st) != 0 || !st.is_dir)
        return hive_errf(err, HIVE_ERR_IO, "mkdir %s: not a directory", path);
    return HIVE_OK;
}
