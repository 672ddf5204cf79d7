/* cli_node.c - `hive node`: the daemon every machine runs.
 *
 *   hive node [--listen HOST:PORT] [--key FILE] [--mem SIZE] [-t N]
 *             [--cache-dir DIR] [--cache-max SIZE] [--model-dir DIR] [--name NAME] [--no-announce]
 *
 * Prints "listening on HOST:PORT" on stdout once it accepts connections
 * (port 0 asks for an ephemeral port), then serves until SIGINT/SIGTERM.
 * Unless --no-announce, it announces itself over mDNS as _hive._tcp
 * (discovery.h) on the interface it listens on (every interface for
 * 0.0.0.0), so `hive nodes` and other nodes find it; a failure to announce
 * is a warning, not fatal. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/discovery.h"
#include "hive/net.h"
#include "hive/os.h"
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
            "  --no-probe           skip the start-up speed measurement (assume 1 GB/s)\n"
            "  --no-announce        do not announce this node on the LAN (mDNS)\n");
}

/* The node's wire protocol version (HIVE_PROTO_VERSION in src/cluster/proto.h). */
#define NODE_PROTO_VERSION 1

/* Starts announcing the running node: interface from its listen address,
 * port as bound, memory budget and speed as the node computes them. NULL
 * (with a warning) when it cannot. */
static hive_discovery *announce_node(hive_node *n, const struct hive_node_opts *o) {
    char host[256], err[HIVE_ERR_LEN];
    int port = 0;
    if (hive_net_parse_hostport(hive_node_address(n), host, sizeof host, &port, err)) {
        fprintf(stderr, "hive node: not announcing: %s\n", err);
        return NULL;
    }
    struct hive_discovery_opts d = hive_discovery_default_opts();
    memcpy(d.key, o->key, sizeof d.key);
    d.browse = 0;
    d.name = o->name;
    d.port = port;
    d.proto = NODE_PROTO_VERSION;
    d.cpu = hive_cpu_features();
    /* The same defaults as hive_node_start (src/cluster/node.c). */
    d.mem_budget = o->mem_budget ? o->mem_budget : hive_mem_available() / 2;
    if (!d.mem_budget) d.mem_budget = 1ull << 30;
    int threads = o->n_threads ? o->n_threads : hive_cpu_count();
    d.speed_bps = (uint64_t)(o->probe ? hive_probe_speed(threads) : 1e9);
    if (!strcmp(host, "localhost")) d.iface_addr = "127.0.0.1";
    else if (hive_net_is_one_ipv4(host)) d.iface_addr = host;
    hive_discovery *disc = NULL;
    int rc = hive_discovery_start(&disc, &d, err);
    sodium_memzero(d.key, sizeof d.key);
    if (rc) {
        fprintf(stderr, "hive node: not announcing on the LAN: %s\n", err);
        return NULL;
    }
    return disc;
}

int cli_node(int argc, char **argv) {
    struct hive_node_opts o = hive_node_default_opts();
    o.progress = 1; /* a bar while a stage loads, when stderr is a terminal */
    o.listen = "127.0.0.1:7070";
    const char *key_path = NULL;
    int announce = 1;
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
        if (!strcmp(a, "--no-announce")) {
            announce = 0;
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
    /* Signals (console events on Windows) are taken synchronously by this
     * thread; every other thread inherits the blocked mask. */
    hive_stop_block();
    rc = hive_os_init(err);
    if (rc) {
        fprintf(stderr, "hive node: %s\n", err);
        return 1;
    }
    hive_node *n = NULL;
    rc = hive_node_start(&n, &o, err);
    if (rc) {
        fprintf(stderr, "hive node: %s\n", err);
        return 1;
    }
    char info[512];
    hive_node_describe(n, info, sizeof info);
    fprintf(stderr, "%s\n", info);
    hive_discovery *disc = announce ? announce_node(n, &o) : NULL;
    printf("listening on %s\n", hive_node_address(n));
    fflush(stdout);
    int sig = hive_stop_wait();
    fprintf(stderr, "hive node: %s, handing its layers off\n", sig == 2 ? "interrupted" : "terminated");
    hive_discovery_stop(disc); /* goodbye first, while the node still answers */
    /* A graceful leave: the heads move the layers off (re-plan + replay)
     * before this node goes; 10 s cut it short. */
    if (hive_node_leave(n, 10000)) fprintf(stderr, "hive node: the heads did not let go within 10 s; stopping anyway\n");
    hive_node_stop(n);
    return 0;
}
