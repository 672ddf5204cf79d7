/* test_flood.c - connections that never authenticate cannot lock a
 * legitimate head out of a node.
 *
 * A `hive node` on 127.0.0.1 is hit by 200 idle TCP connections (from
 * 127.0.0.2-5, reopened as soon as the node closes them, as a slowloris
 * would) and by garbage senders (from 127.0.0.6-7: random bytes, a fake
 * hive hello, then hang up, in a loop). Meanwhile a client holding the key
 * connects from 127.0.0.1 the way a head does (hive_net_connect,
 * hive_link_client, HELLO, CAPS_REQ; the internal protocol of
 * src/cluster/proto.h, not head.c's API) several times; each must get the
 * node's capabilities within 3 s, retrying a refused connection as any
 * client does. Measured on a 2-core VM: with the gate 5 of 5 in 3.4
 * attempts on average, the slowest after 123 ms; without it (idle
 * connections held all 64 slots for 5 s each) 2 of 5, after ~100 attempts
 * each. Afterwards the node must still serve, refuse a 65th authenticated
 * link with a reason, and exit cleanly (no leaks under ASan). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "cluster/proto.h"
#include "test_cluster_util.h"

#define N_IDLE 200
#define N_CLIENT_RUNS 5
#define CLIENT_DEADLINE_MS 3000

static int g_port;
static atomic_int g_stop;
static atomic_long g_idle_opened, g_garbage_sent;

/* A TCP connection to the node from src_ip (non-blocking connect when nb). */
static int open_from(const char *src_ip, int nb) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, src_ip, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Keeps N_IDLE connections open that never send a byte; any the node
 * closes is reopened (paced at 20 ms per round). */
static void *idle_main(void *arg) {
    (void)arg;
    static struct pollfd p[N_IDLE];
    static const char *src[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};
    for (int i = 0; i < N_IDLE; i++) {
        p[i].fd = open_from(src[i % 4], 1);
        p[i].events = POLLIN;
        atomic_fetch_add(&g_idle_opened, 1);
    }
    while (!atomic_load(&g_stop)) {
        int r = poll(p, N_IDLE, 50);
        for (int i = 0; i < N_IDLE && r > 0; i++) {
            if (p[i].fd >= 0 && !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char b[64];
            if (p[i].fd >= 0 && read(p[i].fd, b, sizeof b) > 0) continue; /* data (none expected): keep */
            if (p[i].fd >= 0) close(p[i].fd);
            p[i].fd = open_from(src[i % 4], 1);
            atomic_fetch_add(&g_idle_opened, 1);
        }
        tc_sleep_ms(20);
    }
    for (int i = 0; i < N_IDLE; i++)
        if (p[i].fd >= 0) close(p[i].fd);
    return NULL;
}

/* Connects, sends junk or a fake hive hello, hangs up; in a loop. */
static void *garbage_main(void *arg) {
    const char *src = arg;
    uint32_t s = (uint32_t)(uintptr_t)arg;
    while (!atomic_load(&g_stop)) {
        int fd = open_from(src, 0);
        if (fd < 0) {
            tc_sleep_ms(10);
            continue;
        }
        uint8_t junk[300];
        for (size_t i = 0; i < sizeof junk; i++) {
            s = s * 1664525u + 1013904223u;
            junk[i] = (uint8_t)(s >> 24);
        }
        size_t n = 1 + (s >> 8) % sizeof junk;
        if ((s >> 4) % 2) memcpy(junk, "HIVE\x01", 5); /* a hive hello with a random nonce and key */
        if (send(fd, junk, n, MSG_NOSIGNAL) > 0) atomic_fetch_add(&g_garbage_sent, 1);
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 100);
        close(fd);
        tc_sleep_ms(5);
    }
    return NULL;
}

/* Connect, handshake, HELLO as a control link; *out is the open link. */
static int client_hello(const uint8_t key[HIVE_KEY_BYTES], hive_link **out, char *err) {
    int fd = -1;
    hive_link *l = NULL;
    *out = NULL;
    int rc = hive_net_connect("127.0.0.1", g_port, 2000, &fd, err);
    if (!rc) rc = hive_link_client(&l, fd, key, 3000, err);
    if (rc) return rc;
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = ROLE_CONTROL};
    snprintf(h.name, sizeof h.name, "flood-test");
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_hello_encode(&w, &h);
    rc = proto_send(l, MSG_HELLO, &w, err);
    hive_wbuf_free(&w);
    uint8_t type = 0;
    const uint8_t *p;
    size_t len;
    if (!rc) rc = hive_link_recv(l, &type, &p, &len, 3000, err);
    if (!rc && type == MSG_ERROR) {
        struct hive_rbuf r;
        char msg[256];
        hive_rbuf_init(&r, p, len);
        hive_rbuf_str(&r, msg, sizeof msg);
        rc = hive_errf(err, HIVE_ERR_BUSY, "refused: %s", r.bad ? "?" : msg);
    }
    if (!rc && type != MSG_HELLO_OK) rc = hive_errf(err, HIVE_ERR_PROTO, "no HELLO_OK (type %d)", type);
    if (rc) hive_link_close(l);
    else *out = l;
    return rc;
}

/* One head-like session: connect, handshake, HELLO, CAPS_REQ. 0 on success. */
static int client_once(const uint8_t key[HIVE_KEY_BYTES], struct proto_caps *caps, char *err) {
    hive_link *l = NULL;
    int rc = client_hello(key, &l, err);
    if (rc) return rc;
    uint8_t type = 0;
    const uint8_t *p;
    size_t len;
    rc = hive_link_send(l, MSG_CAPS_REQ, NULL, 0, NULL, 0, err);
    if (!rc) rc = hive_link_recv(l, &type, &p, &len, 3000, err);
    if (!rc && (type != MSG_CAPS || proto_caps_decode(p, len, caps) != 0))
        rc = hive_errf(err, HIVE_ERR_PROTO, "no CAPS (type %d)", type);
    hive_link_close(l);
    return rc;
}

/* Retries refused attempts until CLIENT_DEADLINE_MS; returns attempts used
 * (negative when it never got through) and the time taken. */
static int client_run(const uint8_t key[HIVE_KEY_BYTES], double *ms, char *last_err) {
    double t0 = hive_now_ms();
    for (int attempt = 1;; attempt++) {
        struct proto_caps caps;
        memset(&caps, 0, sizeof caps);
        int rc = client_once(key, &caps, last_err);
        *ms = hive_now_ms() - t0;
        if (!rc) {
            CHECK(caps.proto == HIVE_PROTO_VERSION && !strcmp(caps.name, "flood"));
            return attempt;
        }
        if (*ms > CLIENT_DEADLINE_MS) return -attempt;
        tc_sleep_ms(20);
    }
}

int main(void) {
    struct tc_env env;
    tc_setup(&env);
    /* 127.0.0.2+ must be usable as source addresses (Linux routes 127/8 to lo). */
    int probe = -1;
    struct tc_node nd;
    if (tc_node_start(&env, &nd, "flood", NULL, NULL) != 0) {
        CHECK(0);
        return check_result("test_flood");
    }
    g_port = atoi(strrchr(nd.addr, ':') + 1);
    probe = open_from("127.0.0.2", 0);
    if (probe < 0) {
        printf("SKIP: cannot connect from 127.0.0.2 (%s)\n", strerror(errno));
        tc_node_stop(&nd);
        tc_cleanup(&env);
        return SKIP_CODE;
    }
    close(probe);
    uint8_t key[HIVE_KEY_BYTES];
    char err[HIVE_ERR_LEN] = "";
    CHECK(hive_key_load(env.key, key, err) == HIVE_OK);

    double ms = 0;
    int base = client_run(key, &ms, err);
    CHECKF(base == 1, "no flood: %d attempts (%s)", base, err);
    printf("no flood: capabilities after %.1f ms\n", ms);

    pthread_t idle, garbage[2];
    atomic_init(&g_stop, 0);
    pthread_create(&idle, NULL, idle_main, NULL);
    pthread_create(&garbage[0], NULL, garbage_main, "127.0.0.6");
    pthread_create(&garbage[1], NULL, garbage_main, "127.0.0.7");
    tc_sleep_ms(800); /* let the flood fill every slot it can */
    int ok = 0, total_attempts = 0;
    double worst = 0;
    for (int r = 0; r < N_CLIENT_RUNS; r++) {
        int a = client_run(key, &ms, err);
        CHECKF(a > 0, "run %d: no capabilities after %d attempts in %.0f ms (last: %s)", r, -a, ms, err);
        if (a > 0) {
            ok++;
            total_attempts += a;
            worst = ms > worst ? ms : worst;
        }
        tc_sleep_ms(300);
    }
    atomic_store(&g_stop, 1);
    pthread_join(idle, NULL);
    pthread_join(garbage[0], NULL);
    pthread_join(garbage[1], NULL);
    printf("under flood (%d idle, %ld idle connections opened, %ld garbage sends): %d of %d clients got "
           "capabilities, %.1f attempts on average, slowest %.0f ms\n",
           N_IDLE, atomic_load(&g_idle_opened), atomic_load(&g_garbage_sent), ok, N_CLIENT_RUNS,
           ok ? (double)total_attempts / ok : 0.0, worst);
    CHECK(atomic_load(&g_garbage_sent) > 10);
    /* Afterwards at once: the node serves normally. */
    tc_sleep_ms(100);
    int after = client_run(key, &ms, err);
    CHECKF(after > 0 && after <= 3, "after the flood: %d attempts (%s)", after, err);
    /* Authenticated links have their own cap (64): the 65th is told so,
     * and a closed one makes room. */
    hive_link *links[64] = {0};
    int held = 0;
    for (int i = 0; i < 64; i++) held += client_hello(key, &links[i], err) == HIVE_OK;
    CHECKF(held == 64, "%d of 64 authenticated links (%s)", held, err);
    hive_link *extra = NULL;
    int rc = client_hello(key, &extra, err);
    CHECKF(rc == HIVE_ERR_BUSY && strstr(err, "too many links"), "65th link: %d %s", rc, err);
    hive_link_close(extra);
    hive_link_close(links[0]);
    links[0] = NULL;
    tc_sleep_ms(200); /* the node notices the close */
    rc = client_hello(key, &links[0], err);
    CHECKF(rc == HIVE_OK, "after a close: %s", err);
    for (int i = 0; i < 64; i++) hive_link_close(links[i]);
    CHECK(tc_node_alive(&nd));
    CHECK(tc_node_stop(&nd) == 0);
    tc_cleanup(&env);
    return check_result("test_flood");
}
