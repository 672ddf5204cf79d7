/* cli_cache.c - `hive cache`: the stage files a node keeps.
 *
 *   hive cache [--cache-dir DIR]            list them, least recently used first, and the total
 *   hive cache --clear [--cache-dir DIR]    remove them all
 *
 * The cap a node keeps the cache under is shown too (--cache-max of
 * `hive node`, else $HIVE_CACHE_MAX, else 4x the largest stage file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hive/cluster.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive cache [--clear] [--cache-dir DIR]\n"
            "  (no option)      list cached stages: model hash, layers, size, last used; and the total\n"
            "  --clear          remove every cached stage\n"
            "  --cache-dir DIR  the cache (default: $HIVE_CACHE_DIR or ~/.cache/hive)\n");
}

int cli_cache(int argc, char **argv) {
    char dir[2048];
    const char *given = NULL;
    int clear = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--clear")) {
            clear = 1;
        } else if (!strcmp(a, "--cache-dir") && i + 1 < argc) {
            given = argv[++i];
        } else {
            fprintf(stderr, "hive cache: unknown option %s (try --help)\n", a);
            return 1;
        }
    }
    if (given) snprintf(dir, sizeof dir, "%s", given);
    else hive_default_cache_dir(dir, sizeof dir);
    char err[HIVE_ERR_LEN], size[32];
    if (clear) {
        int n = 0;
        uint64_t freed = 0;
        int rc = hive_cache_clear(dir, &n, &freed, err);
        printf("removed %d file%s, %s, from %s/stages\n", n, n == 1 ? "" : "s", hive_format_size(freed, size, sizeof size),
               dir);
        if (rc) fprintf(stderr, "hive cache: %s\n", err);
        return rc ? 1 : 0;
    }
    struct hive_cache_entry *e = NULL;
    int n = 0;
    if (hive_cache_list(dir, &e, &n, err)) {
        fprintf(stderr, "hive cache: %s\n", err);
        return 1;
    }
    printf("%-14s %-12s %10s  %s\n", "MODEL", "LAYERS", "SIZE", "LAST USED");
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        char layers[32], when[32];
        snprintf(layers, sizeof layers, "[%d, %d)", e[i].first, e[i].last);
        time_t t = (time_t)(e[i].last_used_ns / 1000000000);
        const struct tm *tm = localtime(&t); /* one thread: the static result is safe */
        if (!tm || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", tm))
            snprintf(when, sizeof when, "?");
        printf("%-14.12s %-12s %10s  %s\n", e[i].model_hex, layers, hive_format_size(e[i].bytes, size, sizeof size),
               when);
        total += e[i].bytes;
    }
    char cap[32];
    uint64_t max = hive_cache_default_max(dir);
    printf("total %s in %d stage file%s in %s/stages (cap %s%s)\n", hive_format_size(total, size, sizeof size), n,
           n == 1 ? "" : "s", dir, max ? hive_format_size(max, cap, sizeof cap) : "none yet",
           getenv("HIVE_CACHE_MAX") ? ", from HIVE_CACHE_MAX" : ", 4x the largest; a node's --cache-max overrides");
    free(e);
    return 0;
}
