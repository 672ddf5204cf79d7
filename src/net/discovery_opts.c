/* discovery_opts.c - the defaults of include/hive/discovery.h, shared by
 * the mDNS discovery (mdns.c) and the node-only build's discovery_none.c. */
#include <string.h>

#include "hive/discovery.h"

struct hive_discovery_opts hive_discovery_default_opts(void) {
    struct hive_discovery_opts o;
    memset(&o, 0, sizeof o);
    o.announce = 1;
    o.browse = 1;
    o.loopback = 1;
    o.proto = 1;
    return o;
}
