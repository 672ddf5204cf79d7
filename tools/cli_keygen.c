/* cli_keygen.c - `hive keygen [-o PATH] [--force]`: writes a new cluster key.
 *
 * The default path is $HIVE_KEY_FILE, else $XDG_CONFIG_HOME/hive/cluster.key,
 * else ~/.config/hive/cluster.key; every hive command that needs the key
 * looks there. Missing directories are created (mode 0700). An existing key
 * is kept unless --force is given: replacing it locks this machine out of
 * its cluster until every other machine gets the new key. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/net.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hive keygen [-o PATH] [--force]\n"
            "Writes a new random cluster key (64 hex characters, mode 0600) and prints its path.\n"
            "Default PATH: $HIVE_KEY_FILE, else ~/.config/hive/cluster.key. Copy the file to every\n"
            "machine of the cluster (same path, or point HIVE_KEY_FILE at it).\n"
            "  -o, --output PATH  where to write the key\n"
            "  --force            replace an existing key\n");
}

/* mkdir -p of every directory above path. */
static int make_parent_dirs(const char *path) {
    char dir[4096];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dir) return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    return hive_mkdirs(dir, NULL) == HIVE_OK ? 0 : -1;
}

int cli_keygen(int argc, char **argv) {
    const char *out = NULL;
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else {
            fprintf(stderr, "hive keygen: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char path[4096];
    if (out) {
        snprintf(path, sizeof path, "%s", out);
    } else if (hive_key_default_path(path, sizeof path) != HIVE_OK) {
        fprintf(stderr, "hive keygen: no default key path (set HOME or HIVE_KEY_FILE, or pass -o PATH)\n");
        return 1;
    }
    struct stat st;
    if (!force && stat(path, &st) == 0) {
        fprintf(stderr, "hive keygen: %s already exists; pass --force to replace it (machines holding the old key\n"
                        "will no longer be able to join)\n", path);
        return 1;
    }
    if (make_parent_dirs(path) != 0) {
        fprintf(stderr, "hive keygen: cannot create the directory for %s: %s\n", path, strerror(errno));
        return 1;
    }
    uint8_t key[HIVE_KEY_BYTES];
    char err[HIVE_ERR_LEN];
    hive_key_generate(key);
    int rc = hive_key_write(path, key, force, err);
    memset(key, 0, sizeof key);
    if (rc != HIVE_OK) {
        fprintf(stderr, "hive keygen: %s\n", err);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}
