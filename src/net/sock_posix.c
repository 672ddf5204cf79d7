/* sock_posix.c - sock_os.h on POSIX systems (Linux first). Sends use
 * MSG_NOSIGNAL, so a peer that vanishes gives EPIPE instead of killing the
 * process; every socket is close-on-exec because tests and the demo spawn
 * child processes. Its twin for Windows is sock_win.c. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "hive/net.h"
#include "sock_os.h"

int sock_open(int family, int type, int protocol, int nonblock) {
    return socket(family, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), protocol);
}

int sock_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

int sock_setopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

int sock_connect_result(int fd) {
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) return errno;
    return soerr;
}

int sock_connect(int fd, const struct sockaddr *a, size_t len) { return connect(fd, a, (socklen_t)len); }

int sock_bind_listen(int fd, const struct sockaddr *a, size_t len, int backlog) {
    sock_setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1); /* restart while old connections linger */
    return bind(fd, a, (socklen_t)len) == 0 && listen(fd, backlog) == 0 ? 0 : -1;
}

int sock_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int sock_accept(int listen_fd) {
    int fd;
    do fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0 && (errno == ECONNABORTED || errno == EPROTO)) errno = EAGAIN; /* gone before we took it */
    return fd;
}

int64_t sock_recv(int fd, void *buf, size_t len) {
    for (;;) {
        ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK) n = read(fd, buf, len); /* a pipe, in tests */
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

int64_t sock_send(int fd, const void *buf, size_t len) {
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK) n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
}

int sock_connected_nonblocking(void) { return 0; }

/* ---- net.h: the OS's sockets ---- */

int hive_sock_poll(struct hive_pollfd *p, int n, int timeout_ms) {
    struct pollfd pfd[256];
    if (n < 0 || n > 256) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        pfd[i].fd = p[i].fd;
        pfd[i].events = (short)((p[i].events & HIVE_POLLIN ? POLLIN : 0) | (p[i].events & HIVE_POLLOUT ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    int r;
    do r = poll(pfd, (nfds_t)n, timeout_ms);
    while (r < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        short re = pfd[i].revents;
        p[i].revents = (short)((re & POLLIN ? HIVE_POLLIN : 0) | (re & POLLOUT ? HIVE_POLLOUT : 0) |
                               (re & (POLLERR | POLLHUP | POLLNVAL) ? HIVE_POLLERR : 0));
    }
    return r;
}

void hive_sock_close(int fd) {
    if (fd >= 0) close(fd);
}

void hive_sock_shutdown(int fd) {
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
}

int hive_wake_open(int fds[2], char *err) {
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        fds[0] = fds[1] = -1;
        return hive_errf(err, HIVE_ERR_IO, "pipe: %s", strerror(errno));
    }
    return HIVE_OK;
}

void hive_wake_signal(int fd) {
    char c = 1;
    ssize_t rc = write(fd, &c, 1);
    (void)rc; /* a full pipe already wakes the loop */
}

void hive_wake_drain(int fd) {
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {}
}

void hive_wake_close(int fds[2]) {
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) close(fds[i]);
        fds[i] = -1;
    }
}
