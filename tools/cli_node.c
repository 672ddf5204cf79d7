/* cli_node.c - `hive node`: the daemon every machine runs.
 *
 *   hive node [--listen HOST:PORT] [--key FILE] [--mem SIZE] [-t N]
 *             [--cache-dir DIR] [--cache-max SIZE] [--model-dir DIR] [--name NAME]
 *
 * Prints "listening on HOST:PORT" on stdout once it accepts connections
 * (port 0 asks for an ephemeral port), then serves until SIGINT/SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/net.h"
#include "hive/tensor.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive node [options]\n"
            "  --listen HOST:PORT   address to listen on (default 127.0.0.1:7070; port 0 = any free port)\n"
            "  --key FILE           cluster key (default: $HIVE_KEY_FILE or ~/.config/hive/cluster.key)\n"
            "  --mem SIZE           memory budget, e.g. 512M or 2G (default: half of the available memory,\n"
            "                       within the memory limit of its cgroup)\n"
            "  -t, --threads N      threads per stage (default: all cores)\n"
            "  --cache-dir DIR      where received stages are kept (default: ~/.cache/hive)\n"
            "  --cache-max SIZE     cap of that stage cache, least recently used stages go first\n"
            "                       (default: $HIVE_CACHE_MAX, else 4x the largest stage file)\n"
            "  --model-dir DIR      GGUF files here are used instead of transfers when their hash matches\n"
            "  --name NAME          name shown in plans (default: host name)\n"
            "  --no-probe           skip the start-up speed measurement (assume 1 GB/s)\n");
}

int cli_node(int argc, char **argv) {
    struct hive_node_opts o = hive_node_default_opts();
    o.listen = "127.0.0.1:7070";
    const char *key_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--no-probe")) {
            o.probe = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hive node: %s needs a value (or is unknown; try --help)\n", a);
            return 1;
        }
        if (!strcmp(a, "--listen")) o.listen = v;
        else if (!strcmp(a, "--key")) key_path = v;
        else if (!strcmp(a, "--cache-dir")) o.cache_dir = v;
        else if (!strcmp(a, "--model-dir")) o.model_dir = v;
        else if (!strcmp(a, "--name")) o.name = v;
        else if (!strcmp(a, "--cache-max")) {
            if (hive_parse_size(v, &o.cache_max) || o.cache_max == 0) {
                fprintf(stderr, "hive node: bad size '%s' for --cache-max (e.g. 2G)\n", v);
                return 1;
            }
        } else if (!strcmp(a, "--mem")) {
            if (hive_parse_size(v, &o.mem_budget) || o.mem_budget == 0) {
                fprintf(stderr, "hive node: bad size '%s' for --mem (e.g. 512M, 2G)\n", v);
                return 1;
            }
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "hive node: bad thread count '%s'\n", v);
                return 1;
            }
            o.n_threads = (int)n;
        } else {
            fprintf(stderr, "hive node: unknown option %s (try --help)\n", a);
            return 1;
        }
        i++;
    }
    char err[HIVE_ERR_LEN];
    int rc = key_path ? hive_key_load(key_path, o.key, err) : hive_key_load_default(o.key, err);
    if (rc) {
        fprintf(stderr, "hive node: %s\n", err);
        return 1;
    }
    /* Signals are taken synchronously by this thread; every other thread
     * inherits the blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    hive_node *n = NULL;
    rc = hive_node_start(&n, &o, err);
    if (rc) {
        fprintf(stderr, "hive node: %s\n", err);
        return 1;
    }
    char info[512];
    hive_node_describe(n, info, sizeof info);
    fprintf(stderr, "%s\n", info);
    printf("listening on %s\n", hive_node_address(n));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "hive node: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    hive_node_stop(n);
    return 0;
}
