/* test_discovery.c - discovery instances on this machine find each other
 * through multicast on the loopback interface: two with the same key list
 * each other (not themselves), one with another key is listed by nobody and
 * lists nobody, a browser started later finds both through its queries,
 * forged packets (bad MAC, stale timestamp, forged goodbye, garbage, a
 * response from a port other than the mDNS one) change nothing, a legacy
 * unicast query gets a unicast answer, a goodbye removes a peer at once, stop
 * is prompt; then real `hive node` processes are listed by `hive nodes`.
 *
 * Where it may (root), the test moves itself into a network namespace of its
 * own with only a loopback interface and uses port 5353; elsewhere it uses
 * 127.0.0.1 and a port of its own. No packet leaves loopback either way.
 * Skips (77) when multicast on loopback does not work. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hive/discovery.h"
#include "net/dns.h"

static uint8_t KEY[HIVE_KEY_BYTES], OTHER_KEY[HIVE_KEY_BYTES];
static int MDNS_PORT = 5353;
static struct dns_msg MSG;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* A private network namespace with lo up (root only). 1 when in one. */
static int enter_netns(void) {
    if (unshare(CLONE_NEWNET) != 0) return 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return 0;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP | IFF_MULTICAST;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return ok;
}

struct events {
    atomic_int added, removed, updated;
};
static void on_peer(void *arg, int event, const struct hive_peer_info *p) {
    struct events *e = arg;
    (void)p;
    if (event == HIVE_PEER_ADDED) atomic_fetch_add(&e->added, 1);
    else if (event == HIVE_PEER_REMOVED) atomic_fetch_add(&e->removed, 1);
    else atomic_fetch_add(&e->updated, 1);
}

static int start(hive_discovery **d, const uint8_t *key, const char *name, int port, int announce, int browse,
                 struct events *ev, char *err) {
    struct hive_discovery_opts o = hive_discovery_default_opts();
    memcpy(o.key, key, HIVE_KEY_BYTES);
    o.name = name;
    o.port = port;
    o.announce = announce;
    o.browse = browse;
    o.os = "testos x86_64";
    o.cpu = "avx2";
    o.mem_budget = (uint64_t)port << 20;
    o.speed_bps = (uint64_t)port * 1000;
    o.iface_addr = "127.0.0.1";
    o.mdns_port = MDNS_PORT;
    o.on_peer = ev ? on_peer : NULL;
    o.arg = ev;
    return hive_discovery_start(d, &o, err);
}

/* The peers of d, and whether one with this port is among them. */
static int has_port(hive_discovery *d, int port, struct hive_peer_info *out) {
    struct hive_peer_info p[16];
    int n = hive_discovery_peers(d, p, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (p[i].port == port) {
            if (out) *out = p[i];
            return 1;
        }
    return 0;
}

static int wait_for(hive_discovery *d, int port, int present, int ms) {
    for (int t = 0; t < ms; t += 20) {
        if (has_port(d, port, NULL) == present) return 1;
        sleep_ms(20);
    }
    return has_port(d, port, NULL) == present;
}

/* A socket for sending forged packets: from the mDNS port (as responses must
 * be) or from an ephemeral one, multicast out of loopback. */
static int forge_socket(int from_mdns_port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(from_mdns_port ? (uint16_t)MDNS_PORT : 0)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    struct in_addr lo;
    inet_pton(AF_INET, "127.0.0.1", &lo);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof lo);
    unsigned char loop = 1;
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    return fd;
}

static void send_group(int fd, const void *p, size_t n) {
    sleep_ms(2); /* a burst of hundreds would overflow the receiver's socket buffer */
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)MDNS_PORT)};
    inet_pton(AF_INET, "224.0.0.251", &to.sin_addr);
    CHECK(sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)n);
}

/* A well-formed announcement of a node "forged" on port fport. */
static size_t forged(uint8_t *buf, size_t cap, const uint8_t *key, int fport, int64_t ts, uint32_t ttl, int bye,
                     uint64_t id) {
    struct dnssd_announce a;
    memset(&a, 0, sizeof a);
    a.node_id = id;
    snprintf(a.name, sizeof a.name, "forged");
    a.port = fport;
    a.proto = 1;
    a.ts = ts;
    a.bye = bye;
    uint8_t txt[DNS_TXT_MAX];
    size_t tl = dnssd_txt_build(&a, key, txt, sizeof txt);
    struct dnssd_self s;
    if (!tl || dnssd_self_init(&s, a.name, a.node_id, "evil")) return 0;
    return dnssd_build_response(buf, cap, &s, txt, tl, fport, (const uint8_t *)"\x7f\0\0\1", ttl, DNSSD_WANT_PTR,
                                NULL);
}

static void test_instances(void) {
    char err[HIVE_ERR_LEN];
    struct events ev_a = {0}, ev_b = {0};
    hive_discovery *a = NULL, *b = NULL, *c = NULL, *late = NULL;
    CHECKF(start(&a, KEY, "alpha", 7101, 1, 1, &ev_a, err) == 0, "%s", err);
    CHECKF(start(&b, KEY, "beta", 7102, 1, 1, &ev_b, err) == 0, "%s", err);
    CHECKF(start(&c, OTHER_KEY, "gamma", 7103, 1, 1, NULL, err) == 0, "%s", err);
    if (!a || !b || !c) goto out;
    CHECK(wait_for(a, 7102, 1, 5000));
    CHECK(wait_for(b, 7101, 1, 5000));
    sleep_ms(500); /* let gamma's announcements arrive too */
    struct hive_peer_info p;
    CHECK(has_port(a, 7102, &p));
    CHECK(!strcmp(p.name, "beta") && !strcmp(p.host, "127.0.0.1") && p.proto == 1);
    CHECK(!strcmp(p.os, "testos x86_64") && !strcmp(p.cpu, "avx2"));
    CHECK(p.mem_budget == (uint64_t)7102 << 20 && p.speed_bps == 7102000);
    CHECK(p.node_id == hive_discovery_node_id(b));
    CHECK(llabs(p.announced_unix - (int64_t)time(NULL)) < 5);
    CHECK(hive_discovery_peers(a, NULL, 0) == 1);             /* beta only: not itself, not gamma */
    CHECK(hive_discovery_peers(b, NULL, 0) == 1);
    CHECK(hive_discovery_peers(c, NULL, 0) == 0);             /* gamma hears nothing it can verify */
    CHECK(atomic_load(&ev_a.added) == 1 && atomic_load(&ev_a.removed) == 0);

    /* A browser that starts later finds both through its own queries (their
     * unsolicited announcements at 0, 1 and 3 s may be over). */
    sleep_ms(2600);
    CHECKF(start(&late, KEY, "late", 0, 0, 1, NULL, err) == 0, "%s", err);
    if (late) {
        CHECK(wait_for(late, 7101, 1, 3000));
        CHECK(wait_for(late, 7102, 1, 3000));
        CHECK(hive_discovery_peers(late, NULL, 0) == 2);
    }

    /* Forged packets. */
    int fd = forge_socket(1), fd_eph = forge_socket(0);
    CHECK(fd >= 0 && fd_eph >= 0);
    if (fd >= 0 && fd_eph >= 0) {
        uint8_t buf[1500];
        int64_t now = time(NULL);
        size_t n;
        /* Garbage of every size first. */
        for (int i = 0; i < 300; i++) {
            size_t len = (size_t)(i * 7) % 1400;
            randombytes_buf(buf, len);
            if (len > 3) buf[2] |= 0x80; /* looks like a response */
            send_group(fd, buf, len);
        }
        sleep_ms(300); /* let the thread drain its socket, so nothing below is lost to a full buffer */
        n = forged(buf, sizeof buf, OTHER_KEY, 7201, now, 120, 0, 0x1111); /* wrong key */
        send_group(fd, buf, n);
        n = forged(buf, sizeof buf, KEY, 7202, now - 3600, 120, 0, 0x2222); /* stale */
        send_group(fd, buf, n);
        n = forged(buf, sizeof buf, KEY, 7203, now + 3600, 120, 0, 0x3333); /* from the future */
        send_group(fd, buf, n);
        n = forged(buf, sizeof buf, KEY, 7204, now, 120, 0, 0x4444); /* valid, but not from port 5353 */
        send_group(fd_eph, buf, n);
        n = forged(buf, sizeof buf, KEY, 7205, now, 120, 0, 0x5555); /* valid, then one bit of its MAC flipped */
        for (size_t i = 0; i + 4 < n; i++)
            if (!memcmp(buf + i, "mac=", 4)) {
                buf[i + 4] ^= 1;
                break;
            }
        send_group(fd, buf, n);
        /* A goodbye for beta, signed with the wrong key. */
        struct dnssd_announce g;
        memset(&g, 0, sizeof g);
        g.node_id = hive_discovery_node_id(b);
        snprintf(g.name, sizeof g.name, "beta");
        g.port = 7102;
        g.ts = now;
        g.bye = 1;
        uint8_t txt[DNS_TXT_MAX];
        size_t tl = dnssd_txt_build(&g, OTHER_KEY, txt, sizeof txt);
        struct dnssd_self s;
        CHECK(dnssd_self_init(&s, "beta", g.node_id, "x") == 0);
        n = dnssd_build_response(buf, sizeof buf, &s, txt, tl, 7102, NULL, 0, DNSSD_WANT_PTR, NULL);
        send_group(fd, buf, n);
        /* A control: a genuine forged-by-us announcement with the right key is listed,
         * so the negatives above are not vacuous. */
        n = forged(buf, sizeof buf, KEY, 7206, now, 120, 0, 0x6666);
        send_group(fd, buf, n);
        CHECK(wait_for(a, 7206, 1, 2000));
        for (int port = 7201; port <= 7205; port++) CHECKF(!has_port(a, port, NULL), "port %d listed", port);
        CHECK(has_port(a, 7102, NULL)); /* the forged goodbye removed nothing */
        /* Its real goodbye (same key) removes it. */
        n = forged(buf, sizeof buf, KEY, 7206, now + 1, 0, 1, 0x6666);
        send_group(fd, buf, n);
        CHECK(wait_for(a, 7206, 0, 2000));
        /* A replay of its announcement from before the goodbye does not bring
         * it back (a fresh control after it shows the replay was processed). */
        n = forged(buf, sizeof buf, KEY, 7206, now, 120, 0, 0x6666);
        send_group(fd, buf, n);
        n = forged(buf, sizeof buf, KEY, 7207, now, 120, 0, 0x7777);
        send_group(fd, buf, n);
        CHECK(wait_for(a, 7207, 1, 2000));
        CHECK(!has_port(a, 7206, NULL));

        /* Legacy unicast query from an ephemeral port: answered to that port, id echoed. */
        struct dnssd_self qs;
        CHECK(dnssd_self_init(&qs, "q", 1, "q") == 0);
        struct dns_wr w;
        dns_wr_init(&w, buf, sizeof buf, 0x5151, 0);
        dns_wr_question(&w, &qs.service, DNS_T_PTR, DNS_CLASS_IN);
        n = dns_wr_finish(&w);
        send_group(fd_eph, buf, n);
        int got_alpha = 0, got_beta = 0;
        for (int t = 0; t < 20 && !(got_alpha && got_beta); t++) {
            struct pollfd pf = {.fd = fd_eph, .events = POLLIN};
            if (poll(&pf, 1, 100) <= 0) continue;
            ssize_t r = recv(fd_eph, buf, sizeof buf, 0);
            if (r <= 0 || dns_parse(buf, (size_t)r, &MSG) || MSG.id != 0x5151) continue;
            struct dnssd_found f[4];
            int k = dnssd_extract(&MSG, &qs, KEY, time(NULL), f, 4);
            for (int i = 0; i < k; i++) {
                got_alpha |= f[i].complete && f[i].a.port == 7101 && f[i].ttl <= 10;
                got_beta |= f[i].complete && f[i].a.port == 7102 && f[i].ttl <= 10;
            }
        }
        CHECK(got_alpha && got_beta);
    }
    if (fd >= 0) close(fd);
    if (fd_eph >= 0) close(fd_eph);

    /* Goodbye: stopping beta removes it from alpha at once; stop is prompt. */
    double t0 = hive_now_ms();
    hive_discovery_stop(b);
    b = NULL;
    double stop_ms = hive_now_ms() - t0;
    CHECKF(stop_ms < 500, "stop took %.0f ms", stop_ms);
    CHECK(wait_for(a, 7102, 0, 1000));
    CHECK(atomic_load(&ev_a.removed) >= 1);
    if (late) CHECK(wait_for(late, 7102, 0, 1000));
out:
    hive_discovery_stop(late);
    hive_discovery_stop(c);
    hive_discovery_stop(b);
    hive_discovery_stop(a);
}

/* Real processes: two `hive node`s (one with --no-announce) and `hive nodes --json`. */
static void test_cli(void) {
    char key_path[256], cmd[1024];
    snprintf(key_path, sizeof key_path, "/tmp/hive_test_discovery_%d.key", (int)getpid());
    FILE *f = fopen(key_path, "w");
    if (!f) return;
    char hex[2 * HIVE_KEY_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, KEY, HIVE_KEY_BYTES);
    fprintf(f, "%s\n", hex);
    fclose(f);
    chmod(key_path, 0600);
    char port_env[16];
    snprintf(port_env, sizeof port_env, "%d", MDNS_PORT);
    setenv("HIVE_MDNS_PORT", port_env, 1);
    char cache[300];
    snprintf(cache, sizeof cache, "%s.cache", key_path); /* the node wants one; HOME may not be writable */
    setenv("HIVE_CACHE_DIR", cache, 1);
    pid_t kids[2];
    const char *names[2] = {"cli-one", "cli-quiet"};
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            char bin[512];
            snprintf(bin, sizeof bin, "%s/hive", HIVE_BIN_DIR);
            execl(bin, bin, "node", "--listen", "127.0.0.1:0", "--no-probe", "--key", key_path, "--name", names[i],
                  i ? "--no-announce" : NULL, (char *)NULL);
            _exit(127);
        }
    }
    snprintf(cmd, sizeof cmd, "%s/hive nodes --key %s --iface 127.0.0.1 --wait 2500 --json", HIVE_BIN_DIR, key_path);
    FILE *p = popen(cmd, "r");
    char *out = calloc(1, 65536);
    size_t n = p ? fread(out, 1, 65535, p) : 0;
    int st = p ? pclose(p) : -1;
    CHECKF(st == 0, "hive nodes exited %d", st);
    CHECKF(n > 0 && strstr(out, "\"name\":\t\"cli-one\""), "output: %s", out);
    CHECKF(!strstr(out, "cli-quiet"), "a --no-announce node was listed: %s", out);
    CHECK(strstr(out, "\"host\":\t\"127.0.0.1\"") != NULL);
    /* The table form. */
    snprintf(cmd, sizeof cmd, "%s/hive nodes --key %s --iface 127.0.0.1 --wait 1500", HIVE_BIN_DIR, key_path);
    p = popen(cmd, "r");
    n = p ? fread(out, 1, 65535, p) : 0;
    out[n] = '\0';
    if (p) pclose(p);
    CHECKF(strstr(out, "NAME") && strstr(out, "cli-one") && strstr(out, "127.0.0.1:"), "output: %s", out);
    free(out);
    for (int i = 0; i < 2; i++) {
        kill(kids[i], SIGTERM);
        waitpid(kids[i], NULL, 0);
    }
    unlink(key_path);
    rmdir(cache);
}

int main(void) {
    if (sodium_init() < 0) return 1;
    signal(SIGPIPE, SIG_IGN);
    randombytes_buf(KEY, sizeof KEY);
    randombytes_buf(OTHER_KEY, sizeof OTHER_KEY);
    if (enter_netns()) {
        printf("test_discovery: in a network namespace of its own (loopback only), port 5353\n");
    } else {
        MDNS_PORT = 20000 + (int)(getpid() % 20000);
        printf("test_discovery: no namespace (not root?); 127.0.0.1, port %d\n", MDNS_PORT);
    }
    /* Can this machine do multicast on loopback at all? */
    char err[HIVE_ERR_LEN];
    hive_discovery *probe = NULL;
    if (start(&probe, KEY, "probe", 1, 1, 0, NULL, err)) {
        printf("test_discovery: SKIP: multicast on loopback unavailable: %s\n", err);
        return SKIP_CODE;
    }
    hive_discovery_stop(probe);
    test_instances();
    test_cli();
    return check_result("test_discovery");
}
