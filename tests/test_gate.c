/* test_gate.c - the connection gate (hive_gate_*, net.h): the
 * unauthenticated pool's total and per-address caps, random early drop
 * between drop_start and max_unauth (its rate measured with a seeded random
 * source against the documented line), promotion into the authenticated
 * pool with its own cap, release accounting, odd addresses, and many
 * threads at once. */
#include <pthread.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <math.h>

#include "check.h"
#include "hive/net.h"

static uint32_t lcg(void *arg) {
    uint32_t *s = arg;
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static uint32_t never_drop(void *arg) {
    (void)arg;
    return 99; /* 99 % 100 = 99: refused only when p = 100 */
}

static void test_caps(void) {
    struct hive_gate_opts o = hive_gate_default_opts();
    CHECK(o.drop_start == 10 && o.drop_rate == 30 && o.max_unauth == 60 && o.handshake_ms == 2000);
    o.random = never_drop;
    o.max_auth = 3;
    hive_gate *g = hive_gate_new(&o);
    CHECK(g != NULL);
    if (!g) return;
    CHECK(hive_gate_handshake_ms(g) == 2000);
    /* Per address: 8, then refused; another address still gets in. */
    for (int i = 0; i < 8; i++) CHECK(hive_gate_admit(g, "10.0.0.1") == HIVE_OK);
    CHECK(hive_gate_admit(g, "10.0.0.1") == HIVE_ERR_BUSY);
    CHECK(hive_gate_admit(g, "10.0.0.2") == HIVE_OK);
    struct hive_gate_stats st;
    hive_gate_get_stats(g, &st);
    CHECK(st.unauth == 9 && st.auth == 0 && st.refused_addr == 1 && st.admitted == 9);
    /* A release frees the address's slot. */
    hive_gate_release(g, "10.0.0.1", 0);
    CHECK(hive_gate_admit(g, "10.0.0.1") == HIVE_OK);
    /* Promotion moves a slot to the authenticated pool: the address may open another. */
    CHECK(hive_gate_promote(g, "10.0.0.1") == HIVE_OK);
    CHECK(hive_gate_admit(g, "10.0.0.1") == HIVE_OK);
    CHECK(hive_gate_promote(g, "10.0.0.1") == HIVE_OK);
    CHECK(hive_gate_promote(g, "10.0.0.2") == HIVE_OK);
    hive_gate_get_stats(g, &st);
    CHECK(st.auth == 3 && st.unauth == 7 && st.promoted == 3);
    /* The authenticated pool is full: promotion refused, and that slot is gone. */
    CHECK(hive_gate_promote(g, "10.0.0.1") == HIVE_ERR_BUSY);
    hive_gate_get_stats(g, &st);
    CHECK(st.auth == 3 && st.unauth == 6 && st.refused_auth == 1);
    hive_gate_release(g, "10.0.0.1", 1);
    CHECK(hive_gate_promote(g, "10.0.0.1") == HIVE_OK);
    /* Fill the unauthenticated pool from many addresses up to the hard cap. */
    int admitted = 0;
    for (int i = 0; i < 200; i++) {
        char a[32];
        snprintf(a, sizeof a, "192.168.%d.%d", i / 250, i % 250);
        admitted += hive_gate_admit(g, a) == HIVE_OK;
    }
    hive_gate_get_stats(g, &st);
    CHECKF(st.unauth == 60, "unauth %d", st.unauth);
    CHECK(admitted == 60 - 5 && st.refused_full > 0);
    /* Odd keys: empty, NULL and over-long addresses are counted consistently. */
    hive_gate_release(g, "192.168.0.0", 0);
    hive_gate_release(g, "192.168.0.1", 0);
    CHECK(hive_gate_admit(g, NULL) == HIVE_OK);
    char longaddr[300];
    memset(longaddr, 'x', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    CHECK(hive_gate_admit(g, longaddr) == HIVE_OK);
    hive_gate_release(g, longaddr, 0);
    hive_gate_release(g, "", 0);
    hive_gate_get_stats(g, &st);
    CHECK(st.unauth == 58);
    /* A release of something never admitted changes nothing. */
    hive_gate_release(g, "never.admitted", 0);
    hive_gate_get_stats(g, &st);
    CHECK(st.unauth == 58);
    hive_gate_free(g);
    g = hive_gate_new(&o);
    hive_gate_release(g, "nobody", 0);
    hive_gate_release(g, "nobody", 1);
    hive_gate_get_stats(g, &st);
    CHECK(st.unauth == 0 && st.auth == 0);
    hive_gate_free(g);
    /* Bad options. */
    o.max_unauth = 0;
    CHECK(hive_gate_new(&o) == NULL);
    o = hive_gate_default_opts();
    o.drop_rate = 101;
    CHECK(hive_gate_new(&o) == NULL);
    hive_gate_free(NULL);
}

/* Refusal rate at exactly n unauthenticated connections, measured: fill a
 * gate to n, then admit+release pairs keep it there. */
static double drop_rate_at(int n, uint32_t *seed) {
    struct hive_gate_opts f = hive_gate_default_opts();
    f.max_unauth_per_addr = 1000;
    f.random = lcg;
    f.random_arg = seed;
    hive_gate *h = hive_gate_new(&f);
    int filled = 0, refused = 0, trials = 4000;
    for (int i = 0; filled < n && i < 100000; i++) filled += hive_gate_admit(h, "a") == HIVE_OK;
    CHECK(filled == n);
    for (int t = 0; t < trials; t++) {
        if (hive_gate_admit(h, "b") == HIVE_OK) hive_gate_release(h, "b", 0);
        else refused++;
    }
    hive_gate_free(h);
    return (double)refused / trials;
}

static void test_early_drop(void) {
    uint32_t seed = 12345;
    /* Below start: never; at start: 30%; halfway to full: 65%; at full: all. */
    struct {
        int n;
        double want;
    } pts[] = {{0, 0}, {9, 0}, {10, 0.30}, {35, 0.65}, {59, 0.98}, {60, 1.0}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        double got = drop_rate_at(pts[i].n, &seed);
        CHECKF(fabs(got - pts[i].want) < 0.04, "at %d unauthenticated: refused %.3f, want %.3f", pts[i].n, got,
               pts[i].want);
    }
}

struct worker {
    hive_gate *g;
    int id;
    int errors;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    char a[32];
    snprintf(a, sizeof a, "10.1.%d.1", w->id % 4);
    for (int i = 0; i < 20000; i++) {
        if (hive_gate_admit(w->g, a) != HIVE_OK) continue;
        if (i % 3 == 0 && hive_gate_promote(w->g, a) == HIVE_OK) hive_gate_release(w->g, a, 1);
        else if (i % 3 != 0) hive_gate_release(w->g, a, 0);
    }
    return NULL;
}

static void test_threads(void) {
    hive_gate *g = hive_gate_new(NULL);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.g = g, .id = i};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    struct hive_gate_stats st;
    hive_gate_get_stats(g, &st);
    CHECKF(st.unauth == 0 && st.auth == 0, "left %d unauthenticated, %d authenticated", st.unauth, st.auth);
    CHECK(st.admitted > 0 && st.promoted > 0);
    hive_gate_free(g);
}

static void test_peer_addr(void) {
    char buf[HIVE_GATE_ADDR_CAP];
    hive_gate_peer_addr(-1, buf, sizeof buf);
    CHECK(!strcmp(buf, "?"));
    int lfd = -1, port = 0, cfd = -1, afd = -1;
    char err[HIVE_ERR_LEN];
    if (hive_net_listen("127.0.0.1", 0, &lfd, &port, err) != HIVE_OK) return;
    /* Connect from 127.0.0.7: the gate sees that address. */
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.7", &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    CHECK(bind(cfd, (struct sockaddr *)&src, sizeof src) == 0);
    CHECK(connect(cfd, (struct sockaddr *)&dst, sizeof dst) == 0);
    CHECK(hive_net_accept(lfd, 2000, &afd, err) == HIVE_OK);
    hive_gate_peer_addr(afd, buf, sizeof buf);
    CHECKF(!strcmp(buf, "127.0.0.7"), "peer %s", buf);
    close(afd);
    close(cfd);
    close(lfd);
    /* IPv6 peers count per /64 (skipped where the host has no IPv6 loopback). */
    if (hive_net_listen("::1", 0, &lfd, &port, err) != HIVE_OK) return;
    cfd = -1;
    if (hive_net_connect("::1", port, 2000, &cfd, err) == HIVE_OK && hive_net_accept(lfd, 2000, &afd, err) == HIVE_OK) {
        hive_gate_peer_addr(afd, buf, sizeof buf);
        CHECKF(!strcmp(buf, "::/64"), "peer %s", buf);
        close(afd);
    }
    if (cfd >= 0) close(cfd);
    close(lfd);
}

int main(void) {
    test_caps();
    test_early_drop();
    test_threads();
    test_peer_addr();
    return check_result("test_gate");
}
