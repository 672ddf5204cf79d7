/* test_sock.c - the OS's sockets behind net.h, on every OS hive builds for
 * (it runs under wine in the Windows build, where sock_win.c answers):
 * listen/accept/connect with deadlines, exact reads and writes, EOF and a
 * vanished peer reported as errors (never a signal), hive_sock_poll, the
 * wake-up channel, and a link handshake with the right and a wrong key.
 * (test_net covers the rest of src/net on POSIX.) */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "hive/net.h"

static void test_connect_accept(void) {
    char err[HIVE_ERR_LEN];
    int lfd = -1, port = 0, afd = -1, cfd = -1;
    CHECK(hive_net_listen("127.0.0.1", 0, &lfd, &port, err) == HIVE_OK && port > 0);
    CHECK(hive_net_accept(lfd, 50, &afd, err) == HIVE_ERR_TIMEOUT); /* nobody connects */
    CHECK(hive_net_connect("127.0.0.1", port, 2000, &cfd, err) == HIVE_OK);
    CHECK(hive_net_accept(lfd, 2000, &afd, err) == HIVE_OK);
    char buf[4];
    CHECK(hive_net_read_full(afd, buf, 4, 50, err) == HIVE_ERR_TIMEOUT);
    struct hive_pollfd p = {.fd = afd, .events = HIVE_POLLIN};
    CHECK(hive_sock_poll(&p, 1, 0) == 0 && p.revents == 0);
    CHECK(hive_net_write_full(cfd, "ping", 4, err) == HIVE_OK);
    CHECK(hive_sock_poll(&p, 1, 2000) == 1 && (p.revents & HIVE_POLLIN));
    CHECK(hive_net_read_full(afd, buf, 4, 2000, err) == HIVE_OK && !memcmp(buf, "ping", 4));
    /* a large write and read across the pair: partial sends are resumed */
    static uint8_t big[3 << 20], back[3 << 20];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7 + (i >> 13));
    CHECK(hive_net_write_full_ms(cfd, big, 1 << 16, 2000, err) == HIVE_OK);
    CHECK(hive_net_read_full(afd, back, 1 << 16, 2000, err) == HIVE_OK && !memcmp(back, big, 1 << 16));
    hive_sock_close(cfd);
    CHECK(hive_net_read_full(afd, buf, 4, 2000, err) == HIVE_ERR_CLOSED);
    /* writing to a closed peer fails instead of killing the process */
    int rc = HIVE_OK;
    for (int i = 0; i < 8 && rc == HIVE_OK; i++) rc = hive_net_write_full_ms(afd, big, sizeof big, 5000, err);
    CHECKF(rc == HIVE_ERR_CLOSED || rc == HIVE_ERR_IO, "write to a closed peer gave %d", rc);
    hive_sock_close(afd);
    hive_sock_close(lfd);
    /* a port nobody listens on: refused, not hung */
    CHECK(hive_net_listen("127.0.0.1", 0, &lfd, &port, err) == HIVE_OK);
    hive_sock_close(lfd);
    CHECK(hive_net_connect("127.0.0.1", port, 2000, &cfd, err) == HIVE_ERR_IO);
    CHECK(hive_net_connect("", port, 2000, &cfd, err) == HIVE_ERR_INVAL);
    CHECK(hive_net_is_one_ipv4("10.1.2.3") && !hive_net_is_one_ipv4("0.0.0.0") && !hive_net_is_one_ipv4("host"));
}

static void test_wake(void) {
    char err[HIVE_ERR_LEN];
    int w[2] = {-1, -1};
    CHECK(hive_wake_open(w, err) == HIVE_OK);
    struct hive_pollfd p = {.fd = w[0], .events = HIVE_POLLIN};
    CHECK(hive_sock_poll(&p, 1, 0) == 0);
    for (int i = 0; i < 3; i++) hive_wake_signal(w[1]);
    CHECK(hive_sock_poll(&p, 1, 2000) == 1 && (p.revents & HIVE_POLLIN));
    hive_wake_drain(w[0]);
    CHECK(hive_sock_poll(&p, 1, 0) == 0);
    hive_wake_close(w);
    CHECK(w[0] == -1 && w[1] == -1);
}

struct server {
    int lfd;
    const uint8_t *key;
    int rc;
    hive_link *link;
};

static void *serve_one(void *arg) {
    struct server *s = arg;
    char err[HIVE_ERR_LEN];
    int fd = -1;
    s->rc = hive_net_accept(s->lfd, 5000, &fd, err);
    if (!s->rc) s->rc = hive_link_server(&s->link, fd, s->key, 5000, err);
    return NULL;
}

/* One link with key a on the client, b on the server; returns the client's rc. */
static int handshake(const uint8_t *a, const uint8_t *b, hive_link **c, struct server *s) {
    char err[HIVE_ERR_LEN];
    int port = 0, fd = -1;
    *c = NULL;
    s->link = NULL;
    s->key = b;
    if (hive_net_listen("127.0.0.1", 0, &s->lfd, &port, err)) return -1;
    pthread_t t;
    pthread_create(&t, NULL, serve_one, s);
    int rc = hive_net_connect("127.0.0.1", port, 5000, &fd, err);
    if (!rc) rc = hive_link_client(c, fd, a, 5000, err);
    pthread_join(t, NULL);
    hive_sock_close(s->lfd);
    return rc;
}

static void test_link(void) {
    uint8_t k1[HIVE_KEY_BYTES], k2[HIVE_KEY_BYTES];
    hive_key_generate(k1);
    hive_key_generate(k2);
    hive_link *c = NULL;
    struct server s;
    char err[HIVE_ERR_LEN];
    CHECK(handshake(k1, k1, &c, &s) == HIVE_OK && s.rc == HIVE_OK);
    if (c && s.link) {
        uint8_t type = 0;
        const uint8_t *p = NULL;
        size_t len = 0;
        CHECK(hive_link_send(c, 7, "head", 4, "body", 4, err) == HIVE_OK);
        CHECK(hive_link_recv(s.link, &type, &p, &len, 2000, err) == HIVE_OK && type == 7 && len == 8 &&
              !memcmp(p, "headbody", 8));
        CHECK(hive_link_recv(c, &type, &p, &len, 50, err) == HIVE_ERR_TIMEOUT && !hive_link_is_dead(c));
        hive_link_close(s.link);
        CHECK(hive_link_recv(c, &type, &p, &len, 2000, err) == HIVE_ERR_CLOSED);
    }
    hive_link_close(c);
    CHECK(handshake(k1, k2, &c, &s) == HIVE_ERR_AUTH && s.rc == HIVE_ERR_AUTH);
    hive_link_close(c);
    hive_link_close(s.link);
}

int main(void) {
    test_connect_accept();
    test_wake();
    test_link();
    return check_result("test_sock");
}
