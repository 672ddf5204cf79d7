/* test_lanproxy.c - the LAN emulator: bytes pass intact (several connections
 * at once, with jitter), the delay and the rate cap are really applied
 * (lower bounds only: these check function, not speed), "cut" and "cut-new"
 * work, peers that vanish mid-stream do not hurt it, and the
 * `hive-lanproxy` program speaks its stdout/control protocol. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hive/lanproxy.h"
#include "hive/net.h"

extern char **environ;

static int small_scale(void) {
    const char *s = getenv("HIVE_TEST_SCALE");
    return s && !strcmp(s, "small");
}

static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* FNV-1a, an independent check beside memcmp. */
static uint64_t checksum(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* ---- target servers: echo, or sink (counts bytes, replies with the count) ---- */

enum { ECHO, SINK };
#define MAX_CONNS 32

struct server {
    int mode, lfd, port;
    atomic_int stop;
    pthread_t accept_thread;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    atomic_int n_conns;
};

struct conn_arg {
    struct server *s;
    int fd;
};

static void *serve_conn(void *p) {
    struct server *s = ((struct conn_arg *)p)->s;
    int fd = ((struct conn_arg *)p)->fd;
    free(p);
    char err[HIVE_ERR_LEN];
    uint8_t buf[65536];
    uint64_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        total += (uint64_t)n;
        if (s->mode == ECHO && hive_net_write_full(fd, buf, (size_t)n, err) != HIVE_OK) break;
    }
    if (s->mode == SINK) hive_net_write_full(fd, &total, sizeof total, err);
    shutdown(fd, SHUT_WR);
    return NULL;
}

static void *accept_loop(void *p) {
    struct server *s = p;
    while (!atomic_load(&s->stop)) {
        int fd;
        if (hive_net_accept(s->lfd, 50, &fd, NULL) != HIVE_OK) continue;
        int i = atomic_load(&s->n_conns);
        if (i == MAX_CONNS) {
            close(fd);
            continue;
        }
        struct conn_arg *a = malloc(sizeof *a);
        a->s = s;
        a->fd = fd;
        s->conn_fds[i] = fd;
        pthread_create(&s->conn_threads[i], NULL, serve_conn, a);
        atomic_store(&s->n_conns, i + 1);
    }
    return NULL;
}

static int server_start(struct server *s, int mode) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    if (hive_net_listen("127.0.0.1", 0, &s->lfd, &s->port, NULL) != HIVE_OK) return -1;
    pthread_create(&s->accept_thread, NULL, accept_loop, s);
    return 0;
}

static void server_stop(struct server *s) {
    atomic_store(&s->stop, 1);
    pthread_join(s->accept_thread, NULL);
    int n = atomic_load(&s->n_conns);
    for (int i = 0; i < n; i++) shutdown(s->conn_fds[i], SHUT_RDWR); /* unblock stragglers */
    for (int i = 0; i < n; i++) {
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    close(s->lfd);
}

static hive_lanproxy *proxy_to(int port, double delay_ms, double jitter_ms, double rate_mbit) {
    struct hive_lanproxy_opts o = {.to_host = "127.0.0.1", .to_port = port, .delay_ms = delay_ms,
                                   .jitter_ms = jitter_ms, .rate_mbit = rate_mbit, .seed = 42};
    hive_lanproxy *p = NULL;
    char err[HIVE_ERR_LEN];
    if (hive_lanproxy_start(&p, &o, err) != HIVE_OK) fprintf(stderr, "proxy: %s\n", err);
    return p;
}

static int connect_to(int port) {
    int fd = -1;
    hive_net_connect("127.0.0.1", port, 5000, &fd, NULL);
    return fd;
}

/* ---- pass-through ---- */

struct stream_arg {
    int port;
    size_t n;
    uint64_t seed;
    int ok;
};

struct writer_arg {
    int fd;
    const uint8_t *data;
    size_t n;
};

static void *writer(void *p) {
    struct writer_arg *w = p;
    hive_net_write_full(w->fd, w->data, w->n, NULL);
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

/* Sends n random bytes through the proxy to the echo server and checks that
 * exactly those bytes come back, then EOF. */
static void *echo_stream(void *p) {
    struct stream_arg *a = p;
    a->ok = 0;
    uint8_t *out = malloc(a->n), *in = malloc(a->n + 1);
    fill(out, a->n, a->seed);
    int fd = connect_to(a->port);
    if (fd >= 0) {
        struct writer_arg w = {fd, out, a->n};
        pthread_t t;
        pthread_create(&t, NULL, writer, &w);
        size_t got = 0;
        for (;;) {
            ssize_t r = recv(fd, in + got, a->n + 1 - got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
            if (got > a->n) break;
        }
        pthread_join(t, NULL);
        close(fd);
        a->ok = got == a->n && !memcmp(in, out, a->n) && checksum(in, got) == checksum(out, a->n);
        if (!a->ok) fprintf(stderr, "  stream %llu: got %zu of %zu bytes\n", (unsigned long long)a->seed, got, a->n);
    }
    free(out);
    free(in);
    return NULL;
}

static void test_passthrough(void) {
    struct server echo;
    if (server_start(&echo, ECHO)) return;
    /* jitter larger than the delay: bytes must still arrive in order */
    hive_lanproxy *p = proxy_to(echo.port, 2, 3, 0);
    CHECK(p != NULL);
    if (p) {
        enum { N_STREAMS = 3 };
        struct stream_arg args[N_STREAMS];
        pthread_t t[N_STREAMS];
        size_t big = small_scale() ? (1u << 20) : (6u << 20);
        for (int i = 0; i < N_STREAMS; i++) {
            args[i] = (struct stream_arg){hive_lanproxy_port(p), i == 0 ? big : 100000 + 7 * (size_t)i,
                                          1000 + (uint64_t)i, 0};
            pthread_create(&t[i], NULL, echo_stream, &args[i]);
        }
        for (int i = 0; i < N_STREAMS; i++) {
            pthread_join(t[i], NULL);
            CHECKF(args[i].ok, "stream %d", i);
        }
        struct hive_lanproxy_stats st;
        hive_lanproxy_get_stats(p, &st);
        size_t total = big + 2 * 100000 + 7 + 14;
        CHECK(st.accepted == N_STREAMS);
        CHECK(st.bytes_up == total && st.bytes_down == total);
        hive_lanproxy_stop(p);
    }
    server_stop(&echo);
}

/* ---- latency ---- */

/* One-byte ping-pong through fd; returns the round trip in ms, or -1. */
static double round_trip_ms(int fd) {
    char c = 'x', back;
    double t0 = hive_now_ms();
    if (hive_net_write_full(fd, &c, 1, NULL) != HIVE_OK) return -1;
    if (hive_net_read_full(fd, &back, 1, 5000, NULL) != HIVE_OK || back != c) return -1;
    return hive_now_ms() - t0;
}

static void test_latency(void) {
    struct server echo;
    if (server_start(&echo, ECHO)) return;
    hive_lanproxy *p = proxy_to(echo.port, 20, 0, 0);
    CHECK(p != NULL);
    int fd = p ? connect_to(hive_lanproxy_port(p)) : -1;
    if (fd >= 0) {
        /* 20 ms each way: a round trip can never be shorter than 40 ms. */
        for (int i = 0; i < 3; i++) {
            double rtt = round_trip_ms(fd);
            CHECKF(rtt >= 40.0, "rtt %.2f ms with 20 ms one-way delay", rtt);
        }
        /* Changed on the fly: applies to bytes arriving from now on. */
        char reply[256];
        CHECK(hive_lanproxy_command(p, "delay 35", reply, sizeof reply) == HIVE_OK);
        CHECK(!strncmp(reply, "ok", 2));
        double rtt = round_trip_ms(fd);
        CHECKF(rtt >= 70.0, "rtt %.2f ms with 35 ms one-way delay", rtt);
        CHECK(hive_lanproxy_command(p, "delay", reply, sizeof reply) == HIVE_ERR_INVAL);
        CHECK(hive_lanproxy_command(p, "delay -3", reply, sizeof reply) == HIVE_ERR_INVAL);
        CHECK(hive_lanproxy_command(p, "warp 9", reply, sizeof reply) == HIVE_ERR_INVAL);
        CHECK(!strncmp(reply, "error", 5));
        close(fd);
    }
    hive_lanproxy_stop(p);
    server_stop(&echo);
}

/* ---- rate ---- */

static void test_rate(void) {
    struct server sink;
    if (server_start(&sink, SINK)) return;
    /* 8 Mbit/s = 1 MB/s: n bytes cannot arrive in less than n / 1e6 s. */
    hive_lanproxy *p = proxy_to(sink.port, 0, 0, 8);
    CHECK(p != NULL);
    size_t n = small_scale() ? 200000 : 400000;
    double min_s = (double)n / 1e6;
    int fd = p ? connect_to(hive_lanproxy_port(p)) : -1;
    if (fd >= 0) {
        uint8_t *buf = malloc(n);
        fill(buf, n, 5);
        double t0 = hive_now_ms();
        CHECK(hive_net_write_full(fd, buf, n, NULL) == HIVE_OK);
        shutdown(fd, SHUT_WR);
        uint64_t count = 0;
        CHECK(hive_net_read_full(fd, &count, sizeof count, 20000, NULL) == HIVE_OK);
        double secs = (hive_now_ms() - t0) / 1e3;
        CHECK(count == n);
        /* a little slack for the first chunk, which starts on an idle wire */
        CHECKF(secs >= 0.9 * min_s, "%zu bytes at 8 Mbit/s took %.3f s, expected >= %.3f s", n, secs, min_s);
        free(buf);
        close(fd);
    }
    hive_lanproxy_stop(p);
    server_stop(&sink);
}

/* ---- cuts and vanishing peers ---- */

/* Waits until the peer closes fd: 1 if it did (EOF or reset) within 5 s. */
static int closed_by_peer(int fd) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 5000) != 1) return 0;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
    return r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE));
}

static int wait_active(hive_lanproxy *p, uint64_t want) {
    struct hive_lanproxy_stats st;
    for (int i = 0; i < 500; i++) {
        hive_lanproxy_get_stats(p, &st);
        if (st.active == want) return 1;
        usleep(10000);
    }
    return 0;
}

static void test_cut(void) {
    struct server echo;
    if (server_start(&echo, ECHO)) return;
    hive_lanproxy *p = proxy_to(echo.port, 1, 0, 0);
    CHECK(p != NULL);
    if (!p) {
        server_stop(&echo);
        return;
    }
    int port = hive_lanproxy_port(p);
    int a = connect_to(port), b = connect_to(port);
    CHECK(round_trip_ms(a) >= 0 && round_trip_ms(b) >= 0);
    char reply[256];
    CHECK(hive_lanproxy_command(p, "cut", reply, sizeof reply) == HIVE_OK);
    CHECKF(!strcmp(reply, "ok cut 2 connections"), "%s", reply);
    CHECK(closed_by_peer(a));
    CHECK(closed_by_peer(b));
    close(a);
    close(b);

    CHECK(hive_lanproxy_command(p, "cut-new on", reply, sizeof reply) == HIVE_OK);
    /* The kernel completes the connection, then the proxy resets it: the
     * client sees the reset in connect() or on its first read. */
    int c = connect_to(port);
    CHECK(c < 0 || closed_by_peer(c));
    if (c >= 0) close(c);
    struct hive_lanproxy_stats st;
    hive_lanproxy_get_stats(p, &st);
    CHECK(st.refused == 1);
    CHECK(hive_lanproxy_command(p, "cut-new off", reply, sizeof reply) == HIVE_OK);
    c = connect_to(port);
    CHECK(round_trip_ms(c) >= 0);
    close(c);

    /* A client that sends a lot and vanishes without reading the echo,
     * once with a FIN and once with a reset. */
    size_t n = 2u << 20;
    uint8_t *buf = malloc(n);
    fill(buf, n, 9);
    for (int abrupt = 0; abrupt < 2; abrupt++) {
        c = connect_to(port);
        hive_net_write_full_ms(c, buf, n, 5000, NULL);
        if (abrupt) {
            struct linger lg = {1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c);
    }
    free(buf);
    CHECK(wait_active(p, 0)); /* both torn down */
    /* Target goes away: connections through the proxy are closed, not hung. */
    c = connect_to(port);
    CHECK(round_trip_ms(c) >= 0);
    hive_lanproxy_stop(p);
    CHECK(closed_by_peer(c));
    close(c);
    server_stop(&echo);
}

static void test_dead_target(void) {
    int lfd, port;
    CHECK(hive_net_listen("127.0.0.1", 0, &lfd, &port, NULL) == HIVE_OK);
    close(lfd); /* nobody listens there now */
    hive_lanproxy *p = proxy_to(port, 0, 0, 0);
    CHECK(p != NULL);
    if (!p) return;
    int c = connect_to(hive_lanproxy_port(p)); /* reset in connect() or right after */
    CHECK(c < 0 || closed_by_peer(c));
    if (c >= 0) close(c);
    CHECK(wait_active(p, 0));
    hive_lanproxy_stop(p);
}

/* ---- the hive-lanproxy program ---- */

static int read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1) break;
        if (read(fd, buf + n, 1) != 1) break;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
        n++;
    }
    buf[n] = '\0';
    return -1;
}

static int command(int fd, const char *cmd, char *reply, size_t cap) {
    if (hive_net_write_full(fd, cmd, strlen(cmd), NULL) != HIVE_OK) return -1;
    return read_line(fd, reply, cap);
}

static void test_program(void) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s/hive-lanproxy", HIVE_BIN_DIR);
    if (access(bin, X_OK) != 0) {
        printf("note: %s not built, skipping the program checks\n", bin);
        return;
    }
    struct server echo;
    if (server_start(&echo, ECHO)) return;
    char to[64];
    snprintf(to, sizeof to, "127.0.0.1:%d", echo.port);
    char *argv[] = {bin, "--listen", "127.0.0.1:0", "--to", to, "--delay-ms", "5", "--control", "127.0.0.1:0", NULL};
    int out[2];
    CHECK(pipe(out) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    CHECK(rc == 0);
    if (rc) {
        close(out[0]);
        server_stop(&echo);
        return;
    }
    char line[256], reply[256];
    int control_port = -1, port = -1;
    CHECK(read_line(out[0], line, sizeof line) == 0 && sscanf(line, "control on 127.0.0.1:%d", &control_port) == 1);
    CHECK(read_line(out[0], line, sizeof line) == 0 && sscanf(line, "listening on 127.0.0.1:%d", &port) == 1);
    int ctl = control_port > 0 ? connect_to(control_port) : -1;
    int c = port > 0 ? connect_to(port) : -1;
    if (ctl >= 0 && c >= 0) {
        double rtt = round_trip_ms(c);
        CHECKF(rtt >= 10.0, "rtt %.2f ms with 5 ms one-way delay", rtt);
        CHECK(command(ctl, "stats\n", reply, sizeof reply) == 0);
        CHECKF(!strncmp(reply, "ok accepted=1 active=1", 22), "%s", reply);
        CHECK(command(ctl, "bogus\n", reply, sizeof reply) == 0 && !strncmp(reply, "error", 5));
        CHECK(command(ctl, "rate 100\n", reply, sizeof reply) == 0 && !strncmp(reply, "ok", 2));
        CHECK(command(ctl, "cut\n", reply, sizeof reply) == 0 && !strcmp(reply, "ok cut 1 connections"));
        CHECK(closed_by_peer(c));
    }
    if (c >= 0) close(c);
    if (ctl >= 0) close(ctl);
    kill(pid, SIGTERM);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    close(out[0]);
    server_stop(&echo);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* the test's own raw sockets; the proxy does not need this */
    test_passthrough();
    test_latency();
    test_rate();
    test_cut();
    test_dead_target();
    test_program();
    return check_result("test_lanproxy");
}
