/* sock.c - TCP plumbing: listen, accept and connect with timeouts, exact
 * reads and writes with deadlines, host:port parsing.
 *
 * Every connected socket gets TCP_NODELAY: the pipeline sends one small
 * message per hop per token, and Nagle's algorithm would hold each one back
 * for up to 40 ms waiting for an ACK. The OS's calls (and the reasons they
 * differ between POSIX and Windows) are in sock_posix.c / sock_win.c behind
 * sock_os.h; this file is written once for both. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/net.h"
#include "hive/os.h"
#include "net_internal.h"
#include "sock_os.h"

/* ---- deadlines and waiting ---- */

int64_t net_deadline_us(int timeout_ms) {
    if (timeout_ms < 0) return -1;
    return (int64_t)hive_now_us() + (int64_t)timeout_ms * 1000;
}

int net_ms_left(int64_t deadline_us) {
    if (deadline_us < 0) return -1;
    int64_t left = deadline_us - (int64_t)hive_now_us();
    if (left <= 0) return 0;
    int64_t ms = (left + 999) / 1000;
    return ms > 1000000000 ? 1000000000 : (int)ms;
}

int net_wait_fd(int fd, short events, int64_t deadline_us, char *err) {
    struct hive_pollfd pfd = {.fd = fd, .events = events};
    int n = hive_sock_poll(&pfd, 1, net_ms_left(deadline_us));
    if (n > 0) return HIVE_OK; /* ready, or an error/hangup the next call reports */
    if (n == 0) return hive_errf(err, HIVE_ERR_TIMEOUT, "timed out waiting for the peer");
    return hive_errf(err, HIVE_ERR_IO, "poll: %s", strerror(errno));
}

int64_t net_recv_some(int fd, void *buf, size_t len) { return sock_recv(fd, buf, len); }

int64_t net_send_some(int fd, const void *buf, size_t len) { return sock_send(fd, buf, len); }

int net_read_deadline(int fd, void *buf, size_t len, int64_t deadline_us, char *err) {
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        int64_t n = net_recv_some(fd, p + got, len - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            return hive_errf(err, HIVE_ERR_CLOSED, "peer closed the connection (got %zu of %zu bytes)", got, len);
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return hive_errf(err, errno == ECONNRESET ? HIVE_ERR_CLOSED : HIVE_ERR_IO, "recv: %s", strerror(errno));
        int rc = net_wait_fd(fd, HIVE_POLLIN, deadline_us, err);
        if (rc) return rc;
    }
    return HIVE_OK;
}

int net_write_deadline(int fd, const void *buf, size_t len, int64_t deadline_us, char *err) {
    const uint8_t *p = buf;
    size_t put = 0;
    while (put < len) {
        int64_t n = net_send_some(fd, p + put, len - put);
        if (n >= 0) {
            put += (size_t)n;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int closed = errno == EPIPE || errno == ECONNRESET;
            return hive_errf(err, closed ? HIVE_ERR_CLOSED : HIVE_ERR_IO, "send: %s", strerror(errno));
        }
        int rc = net_wait_fd(fd, HIVE_POLLOUT, deadline_us, err);
        if (rc) return rc;
    }
    return HIVE_OK;
}

int hive_net_read_full(int fd, void *buf, size_t len, int timeout_ms, char *err) {
    return net_read_deadline(fd, buf, len, net_deadline_us(timeout_ms), err);
}

int hive_net_write_full(int fd, const void *buf, size_t len, char *err) {
    return net_write_deadline(fd, buf, len, -1, err);
}

int hive_net_write_full_ms(int fd, const void *buf, size_t len, int timeout_ms, char *err) {
    return net_write_deadline(fd, buf, len, net_deadline_us(timeout_ms), err);
}

/* ---- socket setup ---- */

int hive_net_set_nodelay(int fd) { return sock_setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1) == 0 ? HIVE_OK : HIVE_ERR_IO; }

/* A connected socket's mode: blocking on POSIX (net.h), non-blocking where
 * the OS has no per-call flag (sock_connected_nonblocking). */
static int set_connected_mode(int fd) { return sock_set_nonblocking(fd, sock_connected_nonblocking()); }

/* Keepalive probes: a peer that vanishes without closing (power cut, cable
 * pulled) is noticed within about KEEPALIVE_IDLE_S + KEEPALIVE_COUNT *
 * KEEPALIVE_INTERVAL_S seconds, so a node frees the sessions of a head that
 * is gone instead of holding them forever. Best effort: errors are ignored. */
#define KEEPALIVE_IDLE_S 10
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT 3

static void set_keepalive(int fd) {
    sock_setopt_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
    sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
    sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S);
    sock_setopt_int(fd, IPPROTO_TCP, TCP_KEEPCNT, KEEPALIVE_COUNT);
#endif
}

static int resolve(const char *host, int port, int passive, struct addrinfo **out, char *err) {
    int rc = hive_os_init(err); /* Windows: getaddrinfo needs WSAStartup */
    if (rc) return rc;
    if (port < 0 || port > 65535) return hive_errf(err, HIVE_ERR_INVAL, "port %d out of range", port);
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (passive) hints.ai_flags |= AI_PASSIVE;
    const char *node = host && *host ? host : NULL;
    rc = getaddrinfo(node, service, &hints, out);
    if (rc)
        return hive_errf(err, HIVE_ERR_INVAL, "cannot resolve '%s': %s", node ? node : "*", gai_strerror(rc));
    return HIVE_OK;
}

int hive_net_listen(const char *host, int port, int *out_fd, int *out_port, char *err) {
    struct addrinfo *ai = NULL;
    int rc = resolve(host, port, 1, &ai, err);
    if (rc) return rc;
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = sock_open(a->ai_family, a->ai_socktype, a->ai_protocol, 1);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (sock_bind_listen(fd, a->ai_addr, a->ai_addrlen, 128) == 0) break;
        saved = errno;
        hive_sock_close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return hive_errf(err, HIVE_ERR_IO, "listen on %s:%d: %s", host && *host ? host : "*", port, strerror(saved));
    int bound = sock_local_port(fd);
    if (bound < 0) {
        saved = errno;
        hive_sock_close(fd);
        return hive_errf(err, HIVE_ERR_IO, "getsockname: %s", strerror(saved));
    }
    if (out_port) *out_port = bound;
    *out_fd = fd;
    return HIVE_OK;
}

int hive_net_accept(int listen_fd, int timeout_ms, int *out_fd, char *err) {
    int64_t deadline = net_deadline_us(timeout_ms);
    for (;;) {
        /* The listening socket is non-blocking, so a connection that was reset
         * between poll and accept cannot make accept hang. */
        int fd = sock_accept(listen_fd);
        if (fd >= 0) {
            set_connected_mode(fd); /* Linux does not inherit the listener's, other systems do */
            hive_net_set_nodelay(fd);
            set_keepalive(fd);
            *out_fd = fd;
            return HIVE_OK;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return hive_errf(err, HIVE_ERR_IO, "accept: %s", strerror(errno));
        int rc = net_wait_fd(listen_fd, HIVE_POLLIN, deadline, err);
        if (rc) return rc == HIVE_ERR_TIMEOUT ? hive_errf(err, rc, "no connection within %d ms", timeout_ms) : rc;
    }
}

/* Tries one address until deadline. Returns the connected fd or -1 with
 * errno set (ETIMEDOUT when the deadline passed). */
static int connect_one(const struct addrinfo *a, int64_t deadline) {
    int fd = sock_open(a->ai_family, a->ai_socktype, a->ai_protocol, 1);
    if (fd < 0) return -1;
    if (sock_connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) goto fail;
        struct hive_pollfd pfd = {.fd = fd, .events = HIVE_POLLOUT};
        int n = hive_sock_poll(&pfd, 1, net_ms_left(deadline));
        if (n == 0) errno = ETIMEDOUT;
        if (n <= 0) goto fail;
        int soerr = sock_connect_result(fd);
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    if (set_connected_mode(fd) != 0) goto fail;
    hive_net_set_nodelay(fd);
    set_keepalive(fd);
    return fd;
fail:;
    int saved = errno;
    hive_sock_close(fd);
    errno = saved;
    return -1;
}

int hive_net_connect(const char *host, int port, int timeout_ms, int *out_fd, char *err) {
    if (!host || !*host) return hive_errf(err, HIVE_ERR_INVAL, "connect: empty host");
    struct addrinfo *ai = NULL;
    int rc = resolve(host, port, 0, &ai, err);
    if (rc) return rc;
    int64_t deadline = net_deadline_us(timeout_ms);
    int fd = -1, saved = ECONNREFUSED;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = connect_one(a, deadline);
        if (fd < 0) saved = errno;
        if (fd < 0 && saved == ETIMEDOUT) break;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        int code = saved == ETIMEDOUT ? HIVE_ERR_TIMEOUT : HIVE_ERR_IO;
        return hive_errf(err, code, "connect to %s:%d: %s", host, port, strerror(saved));
    }
    *out_fd = fd;
    return HIVE_OK;
}

/* ---- host:port ---- */

int hive_net_is_one_ipv4(const char *host) {
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && a.s_addr != htonl(INADDR_ANY);
}

static int parse_port(const char *s, int *port) {
    if (!*s || strlen(s) > 5) return -1;
    int v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return -1;
        v = v * 10 + (*c - '0');
    }
    if (v > 65535) return -1;
    *port = v;
    return 0;
}

int hive_net_parse_hostport(const char *s, char *host, size_t host_cap, int *port, char *err) {
    if (!s) return hive_errf(err, HIVE_ERR_INVAL, "empty address");
    const char *h, *colon;
    size_t hlen;
    if (s[0] == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s' (want [ipv6]:port)", s);
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s' (want host:port)", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s' (write IPv6 as [addr]:port)", s);
        h = s;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0) return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s': empty host", s);
    if (hlen >= host_cap) return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s': host too long", s);
    int p;
    if (parse_port(colon + 1, &p) != 0)
        return hive_errf(err, HIVE_ERR_INVAL, "bad address '%s': port must be 0..65535", s);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = p;
    return HIVE_OK;
}
