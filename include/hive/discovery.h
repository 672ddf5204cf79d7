/* discovery.h - nodes find each other on the LAN with zero configuration:
 * mDNS (RFC 6762) + DNS-SD (RFC 6763), service type _hive._tcp.
 *
 * A discovery instance owns one UDP socket on port 5353 (SO_REUSEADDR +
 * SO_REUSEPORT, so it shares the port with avahi/Bonjour and with other hive
 * nodes on the same machine) and one background thread. It can
 *   - announce: answer queries for
 *       _hive._tcp.local         PTR  <instance>._hive._tcp.local
 *       <instance>._hive._tcp... SRV  0 0 <port> <host>.local
 *       <instance>._hive._tcp... TXT  v=1 id= name= port= proto= os= cpu= mem= speed= ts= mac=
 *       <host>.local             A    address of the interface the answer goes out on
 *     send them unsolicited at start (3 times: 0 s, 1 s, 3 s) and once with
 *     TTL 0 (goodbye) at stop;
 *   - browse: query for _hive._tcp.local PTR (at start, then with doubling
 *     intervals), refresh each peer at 80/85/90/95 % of its TTL, and keep a
 *     table of the peers whose TXT record carries a valid MAC.
 *
 * The TXT MAC is BLAKE2b-256 keyed with the cluster key over the label
 * "hive-announce-v1" and every other TXT string in order. A record without a
 * valid MAC, or whose timestamp (unix seconds) is more than 5 minutes away
 * from this machine's clock, or older than the last one seen from that node,
 * is ignored; so is a goodbye without a valid MAC. Discovery is a hint about
 * where nodes are: the address is not covered by the MAC, and every TCP link
 * still authenticates with the key (net.h).
 *
 * Not done (on purpose): IPv6 / AAAA, probing and conflict resolution for the
 * instance name (the name embeds the random node id, so two nodes never
 * claim the same one), and TC-bit multi-packet known-answer lists. */
#ifndef HIVE_DISCOVERY_H
#define HIVE_DISCOVERY_H

#include <stdint.h>

#include "hive/core.h"
#include "hive/net.h"

#define HIVE_DISCOVERY_SERVICE "_hive._tcp.local"
#define HIVE_DISCOVERY_MDNS_PORT 5353
#define HIVE_DISCOVERY_TTL_S 120   /* every record; a crashed node is gone from caches in 2 min */
#define HIVE_DISCOVERY_MAX_PEERS 256
#define HIVE_DISCOVERY_MAX_SKEW_S 300 /* announcements further off the local clock are ignored */

struct hive_peer_info {
    uint64_t node_id;     /* random per process */
    char name[64];
    char host[48];        /* IPv4 address, dotted */
    int port;             /* TCP port of the node */
    int proto;            /* the node's wire protocol version */
    char os[64];          /* "linux x86_64" */
    char cpu[128];        /* CPU features */
    uint64_t mem_budget;  /* bytes */
    uint64_t speed_bps;   /* weight bytes per second */
    int64_t announced_unix; /* the timestamp of its last announcement (seconds since the epoch) */
    double last_seen_ms;  /* hive_now_ms() when last heard */
};

enum hive_peer_event { HIVE_PEER_ADDED = 1, HIVE_PEER_UPDATED, HIVE_PEER_REMOVED };

struct hive_discovery_opts {
    uint8_t key[HIVE_KEY_BYTES];
    int announce;          /* 1: answer for this node (needs port) */
    int browse;            /* 1: look for peers */
    const char *name;      /* node name; NULL: host name */
    int port;              /* TCP port announced */
    int proto;             /* wire protocol version announced */
    const char *os, *cpu;  /* NULL: hive_os_name() / "" */
    uint64_t mem_budget;
    uint64_t speed_bps;
    /* IPv4 address of the one interface to use ("127.0.0.1" for tests);
     * NULL or "" or "0.0.0.0": every up, multicast-capable, non-loopback
     * IPv4 interface (the loopback one when there is no other). */
    const char *iface_addr;
    int loopback;          /* IP_MULTICAST_LOOP: see our own and same-host packets (default 1) */
    int mdns_port;         /* 0: $HIVE_MDNS_PORT, else 5353 (tests may pick another to stay apart) */
    /* Called from the discovery thread (no lock held) when a peer appears,
     * changes or goes; may call hive_discovery_peers. */
    void (*on_peer)(void *arg, int event, const struct hive_peer_info *p);
    void *arg;
};

typedef struct hive_discovery hive_discovery;

/* announce = browse = loopback = 1, proto = 1, everything else empty. */
struct hive_discovery_opts hive_discovery_default_opts(void);
/* Opens the socket, joins the group and starts the thread (which sends the
 * first announcement and query at once). HIVE_ERR_IO when the socket cannot
 * be set up (no multicast, port taken without SO_REUSEPORT), HIVE_ERR_INVAL
 * on bad options or an iface_addr that is no local interface. */
int hive_discovery_start(hive_discovery **out, const struct hive_discovery_opts *o, char *err);
/* Copies up to cap verified peers (by name, then node id) into out; returns how many
 * there are in all (which may exceed cap). Thread-safe. */
int hive_discovery_peers(hive_discovery *d, struct hive_peer_info *out, int cap);
/* This instance's node id (as announced in the TXT record). */
uint64_t hive_discovery_node_id(const hive_discovery *d);
/* Sends the goodbye (when announcing), stops the thread within a few ms,
 * closes the socket and frees d. NULL is fine. */
void hive_discovery_stop(hive_discovery *d);

#endif
