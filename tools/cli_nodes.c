/* cli_nodes.c - `hive nodes`: lists the hive nodes on the LAN that hold the
 * same cluster key, found with mDNS / DNS-SD (include/hive/discovery.h).
 *
 *   hive nodes [--key FILE] [--wait MS] [--iface ADDR] [--json]
 *
 * Browses for --wait ms (default 2000), then asks each verified node over an
 * authenticated link, and prints one line per node (name, address:port,
 * state: alive when it answered, suspect when it announces itself but did
 * not; one-way latency, memory budget, speed, the layers it holds, age of the
 * last announcement, OS/CPU) or, with --json, an array of objects. Nodes
 * whose announcement does not carry a valid MAC for this key are not listed;
 * a node gone (goodbye or TTL) is dead and no longer listed. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hive/cluster.h"
#include "hive/discovery.h"
#include "hive/net.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive nodes [options]\n"
            "  --key FILE      cluster key (default: $HIVE_KEY_FILE or ~/.config/hive/cluster.key)\n"
            "  --wait MS       how long to listen (default 2000)\n"
            "  --iface ADDR    IPv4 address of the interface to use (default: all)\n"
            "  --json          print a JSON array instead of a table\n");
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* What each node answers when asked over an authenticated link. */
struct answer {
    int ok;
    struct hive_peer_status st;
    char why[HIVE_ERR_LEN];
};

/* alive: it answered; suspect: it announces itself but did not answer. */
static const char *state_of(const struct answer *a) { return a->ok ? "alive" : "suspect"; }

static void layers_text(const struct answer *a, char *buf, size_t cap) {
    buf[0] = '\0';
    if (!a->ok || a->st.n_held == 0) {
        snprintf(buf, cap, "-");
        return;
    }
    for (int k = 0; k < a->st.n_held; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s[%d,%d)", k ? " " : "", a->st.held[k].first, a->st.held[k].last);
    }
}

static int print_json(const struct hive_peer_info *p, const struct answer *ans, int n, double now) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return 1;
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char id[17];
        snprintf(id, sizeof id, "%016" PRIx64, p[i].node_id);
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "name", p[i].name);
        cJSON_AddStringToObject(o, "host", p[i].host);
        cJSON_AddNumberToObject(o, "port", p[i].port);
        cJSON_AddNumberToObject(o, "proto", p[i].proto);
        cJSON_AddStringToObject(o, "os", p[i].os);
        cJSON_AddStringToObject(o, "cpu", p[i].cpu);
        cJSON_AddNumberToObject(o, "mem_budget", (double)p[i].mem_budget);
        cJSON_AddNumberToObject(o, "speed_bps", (double)p[i].speed_bps);
        cJSON_AddNumberToObject(o, "announced_unix", (double)p[i].announced_unix);
        cJSON_AddNumberToObject(o, "age_ms", now - p[i].last_seen_ms);
        cJSON_AddStringToObject(o, "state", state_of(&ans[i]));
        if (ans[i].ok) {
            cJSON_AddNumberToObject(o, "rtt_ms", ans[i].st.rtt_ms);
            cJSON *layers = cJSON_AddArrayToObject(o, "layers");
            for (int k = 0; layers && k < ans[i].st.n_held; k++) {
                cJSON *h = cJSON_CreateObject();
                cJSON_AddNumberToObject(h, "first", ans[i].st.held[k].first);
                cJSON_AddNumberToObject(h, "last", ans[i].st.held[k].last);
                cJSON_AddNumberToObject(h, "live_sequences", ans[i].st.held[k].live_seqs);
                cJSON_AddItemToArray(layers, h);
            }
        } else {
            cJSON_AddStringToObject(o, "error", ans[i].why);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return cli_print_json(arr);
}

int cli_nodes(int argc, char **argv) {
    struct hive_discovery_opts o = hive_discovery_default_opts();
    o.announce = 0;
    const char *key_path = NULL;
    long wait_ms = 2000;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hive nodes: %s needs a value (or is unknown; try --help)\n", a);
            return 1;
        }
        if (!strcmp(a, "--key")) key_path = v;
        else if (!strcmp(a, "--iface")) o.iface_addr = v;
        else if (!strcmp(a, "--wait")) {
            char *end;
            wait_ms = strtol(v, &end, 10);
            if (*end || wait_ms < 0 || wait_ms > 600000) {
                fprintf(stderr, "hive nodes: bad --wait '%s' (milliseconds, 0..600000)\n", v);
                return 1;
            }
        } else {
            fprintf(stderr, "hive nodes: unknown option %s (try --help)\n", a);
            return 1;
        }
        i++;
    }
    char err[HIVE_ERR_LEN];
    uint8_t key[HIVE_KEY_BYTES];
    int rc = key_path ? hive_key_load(key_path, o.key, err) : hive_key_load_default(o.key, err);
    memcpy(key, o.key, sizeof key);
    if (rc) {
        fprintf(stderr, "hive nodes: %s\n", err);
        return 1;
    }
    hive_discovery *d = NULL;
    rc = hive_discovery_start(&d, &o, err);
    memset(o.key, 0, sizeof o.key);
    if (rc) {
        fprintf(stderr, "hive nodes: %s\n", err);
        return 1;
    }
    sleep_ms(wait_ms);
    struct hive_peer_info peers[HIVE_DISCOVERY_MAX_PEERS];
    int n = hive_discovery_peers(d, peers, HIVE_DISCOVERY_MAX_PEERS);
    double now = hive_now_ms();
    hive_discovery_stop(d);
    if (n > HIVE_DISCOVERY_MAX_PEERS) n = HIVE_DISCOVERY_MAX_PEERS;
    /* Ask each one: latency, state and the layers it holds. */
    static struct answer ans[HIVE_DISCOVERY_MAX_PEERS];
    for (int i = 0; i < n; i++) {
        char addr[80];
        snprintf(addr, sizeof addr, "%s:%d", peers[i].host, peers[i].port);
        ans[i].ok = hive_peer_query(addr, key, 1000, &ans[i].st, ans[i].why) == HIVE_OK;
    }
    memset(key, 0, sizeof key);
    if (json) return print_json(peers, ans, n, now);
    if (!n) {
        fprintf(stderr, "hive nodes: no node with this cluster key answered within %ld ms\n", wait_ms);
        return 0;
    }
    printf("%-16s %-21s %-7s %8s %10s %10s %-14s %4s  %s\n", "NAME", "ADDRESS", "STATE", "LATENCY", "MEMORY", "SPEED",
           "LAYERS", "AGE", "OS / CPU");
    for (int i = 0; i < n; i++) {
        char addr[80], mem[32], speed[32], age[16], lat[16], layers[128];
        snprintf(addr, sizeof addr, "%s:%d", peers[i].host, peers[i].port);
        hive_format_size(peers[i].mem_budget, mem, sizeof mem);
        snprintf(speed, sizeof speed, "%.0f MB/s", (double)peers[i].speed_bps / 1e6);
        snprintf(age, sizeof age, "%.0fs", (now - peers[i].last_seen_ms) / 1000.0);
        if (ans[i].ok) snprintf(lat, sizeof lat, "%.2f ms", ans[i].st.rtt_ms / 2);
        else snprintf(lat, sizeof lat, "-");
        layers_text(&ans[i], layers, sizeof layers);
        printf("%-16s %-21s %-7s %8s %10s %10s %-14s %4s  %s / %s\n", peers[i].name, addr, state_of(&ans[i]), lat, mem,
               speed, layers, age, peers[i].os, peers[i].cpu);
        if (!ans[i].ok) printf("  %s: %s\n", peers[i].name, ans[i].why);
    }
    return 0;
}
