/* cli_fetch_none.c - cli_fetch.c's part of cli.h in a node-only build
 * (HIVE_NODE_ONLY, the Windows build): there is no libcurl and no model
 * store, so -m takes a path and nothing is downloaded; each says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/os.h"

int cli_store_dir(char *buf, size_t cap) {
    const char *env = getenv("HIVE_MODELS");
    if (!env || !*env) return -1;
    int n = snprintf(buf, cap, "%s", env);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int cli_download(const char *url, const char *path) {
    fprintf(stderr,
            "hive: downloading is not in this build (node-only: no libcurl).\n"
            "  Fetch %s\n  to %s yourself, or pass -m PATH.\n",
            url, path);
    return 1;
}

int cli_resolve_model(const char *name, char *path, size_t cap) {
    struct hive_file_id id;
    if (hive_file_id(name, &id) != 0 || !id.is_reg) {
        fprintf(stderr,
                "hive: %s: no such model file (names from hive's store, Ollama or LM Studio are not in this "
                "node-only build: give a path)\n",
                name);
        return 1;
    }
    if (snprintf(path, cap, "%s", name) >= (int)cap) {
        fprintf(stderr, "hive: model path too long: %s\n", name);
        return 1;
    }
    return 0;
}
