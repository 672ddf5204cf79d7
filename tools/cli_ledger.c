/* cli_ledger.c - `hive ledger`: what the contribution ledger credits each
 * node with (hive/ledger.h), as a table or --json; --check runs SQLite's
 * integrity check. Reads only. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/ledger.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive ledger [--db FILE] [--json] [--check]\n"
            "  Prints the credit, tokens and layer-passes of every node in the ledger\n"
            "  ($HIVE_LEDGER, else $XDG_DATA_HOME/hive/ledger.db, else ~/.local/share/hive/ledger.db).\n"
            "  --check also runs PRAGMA integrity_check (exit 1 unless it says ok).\n");
}

static int print_json(const struct hive_ledger_total *t, int n, const char *path) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "nodes");
    cJSON_AddStringToObject(root, "path", path);
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node", t[i].node);
        cJSON_AddNumberToObject(o, "entries", (double)t[i].entries);
        cJSON_AddNumberToObject(o, "tokens", (double)t[i].tokens);
        cJSON_AddNumberToObject(o, "layer_passes", (double)t[i].layer_passes);
        cJSON_AddNumberToObject(o, "credit", t[i].credit);
        cJSON_AddItemToArray(arr, o);
    }
    return cli_print_json(root);
}

int cli_ledger(int argc, char **argv) {
    const char *db = NULL;
    int json = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--check")) check = 1;
        else if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else {
            fprintf(stderr, "hive ledger: unknown option %s (try --help)\n", argv[i]);
            return 1;
        }
    }
    char err[HIVE_ERR_LEN], path[4096];
    if (!db) {
        if (hive_ledger_default_path(path, sizeof path, err)) {
            fprintf(stderr, "hive %s\n", err);
            return 1;
        }
        db = path;
    }
    hive_ledger *l = NULL;
    struct hive_ledger_total *t = NULL;
    int n = 0;
    if (hive_ledger_open(&l, db, err) || hive_ledger_totals(l, &t, &n, err) || (check && hive_ledger_check(l, err))) {
        fprintf(stderr, "hive %s\n", err);
        free(t);
        hive_ledger_close(l);
        return 1;
    }
    hive_ledger_close(l);
    int rc = 0;
    if (json) {
        rc = print_json(t, n, db);
    } else {
        printf("ledger: %s%s\n", db, check ? " (integrity ok)" : "");
        if (!n) printf("  no entries yet\n");
        else printf("  %-24s %8s %12s %14s %14s\n", "node", "entries", "tokens", "layer-passes", "credit");
        for (int i = 0; i < n; i++)
            printf("  %-24s %8llu %12llu %14llu %14.1f\n", t[i].node, (unsigned long long)t[i].entries,
                   (unsigned long long)t[i].tokens, (unsigned long long)t[i].layer_passes, t[i].credit);
    }
    free(t);
    return rc;
}
