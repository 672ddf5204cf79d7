/* discovery_none.c - include/hive/discovery.h in a node-only build
 * (HIVE_NODE_ONLY, the Windows build), which leaves the mDNS discovery
 * (mdns.c, dns.c, dns_sd.c) out: starting it fails with a message that
 * says so, and the peers are then given with --peers host:port. */
#include "hive/discovery.h"

int hive_discovery_start(hive_discovery **out, const struct hive_discovery_opts *o, char *err) {
    (void)o;
    *out = NULL;
    return hive_errf(err, HIVE_ERR_UNSUPPORTED,
                     "LAN discovery (mDNS) is not in this build (node-only): list the nodes with --peers host:port");
}

int hive_discovery_peers(hive_discovery *d, struct hive_peer_info *out, int cap) {
    (void)d, (void)out, (void)cap;
    return 0;
}

uint64_t hive_discovery_node_id(const hive_discovery *d) {
    (void)d;
    return 0;
}

void hive_discovery_stop(hive_discovery *d) { (void)d; }
