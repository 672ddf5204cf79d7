/* sock_win.c - sock_os.h on Windows (Winsock 2, via mingw-w64; also under
 * wine). Windows has neither MSG_DONTWAIT nor MSG_NOSIGNAL: connected
 * sockets stay non-blocking (ioctlsocket FIONBIO) and every read and write
 * in src/net waits with WSAPoll; there is no SIGPIPE to avoid. Winsock
 * errors are translated to errno values so sock.c is written once. Its twin
 * for POSIX is sock_posix.c.
 * References: the Winsock documentation (WSAPoll, ioctlsocket, WSAGetLastError). */
#include <errno.h>
#include <string.h>

#include "hive/net.h"
#include "hive/os.h"
#include "sock_os.h"

/* The last Winsock error as an errno value (and into errno). */
static int wsa_errno(void) {
    int e;
    switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: e = EAGAIN; break;
    case WSAEINPROGRESS: e = EINPROGRESS; break;
    case WSAEINTR: e = EINTR; break;
    case WSAECONNRESET:
    case WSAECONNABORTED:
    case WSAENETRESET: e = ECONNRESET; break;
    case WSAESHUTDOWN: e = EPIPE; break;
    case WSAETIMEDOUT: e = ETIMEDOUT; break;
    case WSAECONNREFUSED: e = ECONNREFUSED; break;
    case WSAEHOSTUNREACH: e = EHOSTUNREACH; break;
    case WSAENETUNREACH: e = ENETUNREACH; break;
    case WSAEADDRINUSE: e = EADDRINUSE; break;
    case WSAEADDRNOTAVAIL: e = EADDRNOTAVAIL; break;
    case WSAENOTSOCK: e = ENOTSOCK; break;
    case WSAEINVAL: e = EINVAL; break;
    case WSAEMFILE: e = EMFILE; break;
    case WSAENOBUFS: e = ENOBUFS; break;
    default: e = EIO; break;
    }
    errno = e;
    return e;
}

int sock_open(int family, int type, int protocol, int nonblock) {
    if (hive_os_init(NULL) != 0) {
        errno = EIO;
        return -1;
    }
    /* WSA_FLAG_NO_HANDLE_INHERIT: Windows' close-on-exec */
    SOCKET s = WSASocketW(family, type, protocol, NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        wsa_errno();
        return -1;
    }
    int fd = (int)s;
    if (nonblock && sock_set_nonblocking(fd, 1) != 0) {
        closesocket(s);
        return -1;
    }
    return fd;
}

int sock_set_nonblocking(int fd, int on) {
    u_long v = on ? 1 : 0;
    if (ioctlsocket((SOCKET)fd, FIONBIO, &v) != 0) {
        wsa_errno();
        return -1;
    }
    return 0;
}

int sock_setopt_int(int fd, int level, int name, int value) {
    if (setsockopt((SOCKET)fd, level, name, (const char *)&value, sizeof value) != 0) {
        wsa_errno();
        return -1;
    }
    return 0;
}

int sock_connect_result(int fd) {
    int soerr = 0, sl = sizeof soerr;
    if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ERROR, (char *)&soerr, &sl) != 0) return wsa_errno();
    if (!soerr) return 0;
    WSASetLastError(soerr);
    return wsa_errno();
}

int sock_connect(int fd, const struct sockaddr *a, size_t len) {
    if (connect((SOCKET)fd, a, (int)len) == 0) return 0;
    if (wsa_errno() == EAGAIN) errno = EINPROGRESS; /* a non-blocking connect under way */
    return -1;
}

int sock_bind_listen(int fd, const struct sockaddr *a, size_t len, int backlog) {
    /* SO_REUSEADDR would let another program take the port over on Windows */
    sock_setopt_int(fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
    if (bind((SOCKET)fd, a, (int)len) == 0 && listen((SOCKET)fd, backlog) == 0) return 0;
    wsa_errno();
    return -1;
}

int sock_local_port(int fd) {
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (getsockname((SOCKET)fd, (struct sockaddr *)&ss, &sl) != 0) {
        wsa_errno();
        return -1;
    }
    return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                    : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int sock_accept(int listen_fd) {
    SOCKET s = accept((SOCKET)listen_fd, NULL, NULL);
    if (s == INVALID_SOCKET) {
        if (wsa_errno() == ECONNRESET) errno = EAGAIN; /* gone before we took it */
        return -1;
    }
    /* an accepted socket inherits the listener's non-blocking mode */
    SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    return (int)s;
}

/* len is capped at INT_MAX per call; callers loop */
int64_t sock_recv(int fd, void *buf, size_t len) {
    int n = recv((SOCKET)fd, buf, len > 0x40000000u ? 0x40000000 : (int)len, 0);
    if (n == SOCKET_ERROR) {
        wsa_errno();
        return -1;
    }
    return n;
}

int64_t sock_send(int fd, const void *buf, size_t len) {
    int n = send((SOCKET)fd, buf, len > 0x40000000u ? 0x40000000 : (int)len, 0);
    if (n == SOCKET_ERROR) {
        wsa_errno();
        return -1;
    }
    return n;
}

int sock_connected_nonblocking(void) { return 1; }

/* ---- net.h: the OS's sockets ---- */

int hive_sock_poll(struct hive_pollfd *p, int n, int timeout_ms) {
    WSAPOLLFD pfd[256];
    if (n < 0 || n > 256) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        pfd[i].fd = (SOCKET)p[i].fd;
        pfd[i].events = (short)((p[i].events & HIVE_POLLIN ? POLLRDNORM : 0) | (p[i].events & HIVE_POLLOUT ? POLLWRNORM : 0));
        pfd[i].revents = 0;
    }
    int r = WSAPoll(pfd, (ULONG)n, timeout_ms < 0 ? -1 : timeout_ms);
    if (r == SOCKET_ERROR) {
        wsa_errno();
        return -1;
    }
    for (int i = 0; i < n; i++) {
        short re = pfd[i].revents;
        p[i].revents = (short)((re & (POLLRDNORM | POLLRDBAND) ? HIVE_POLLIN : 0) | (re & POLLWRNORM ? HIVE_POLLOUT : 0) |
                               (re & (POLLERR | POLLHUP | POLLNVAL) ? HIVE_POLLERR : 0));
    }
    return r;
}

void hive_sock_close(int fd) {
    if (fd >= 0) closesocket((SOCKET)fd);
}

void hive_sock_shutdown(int fd) {
    if (fd >= 0) shutdown((SOCKET)fd, SD_BOTH);
}

/* A loopback TCP pair: WSAPoll waits on sockets only, not pipes. */
int hive_wake_open(int fds[2], char *err) {
    fds[0] = fds[1] = -1;
    int lfd = -1, port = 0;
    int rc = hive_net_listen("127.0.0.1", 0, &lfd, &port, err);
    if (rc) return rc;
    rc = hive_net_connect("127.0.0.1", port, 5000, &fds[1], err);
    if (!rc) rc = hive_net_accept(lfd, 5000, &fds[0], err);
    hive_sock_close(lfd);
    if (rc) {
        hive_wake_close(fds);
        return rc;
    }
    sock_set_nonblocking(fds[0], 1);
    sock_set_nonblocking(fds[1], 1);
    return HIVE_OK;
}

void hive_wake_signal(int fd) {
    char c = 1;
    (void)sock_send(fd, &c, 1); /* a full buffer already wakes the loop */
}

void hive_wake_drain(int fd) {
    char buf[64];
    while (sock_recv(fd, buf, sizeof buf) > 0) {}
}

void hive_wake_close(int fds[2]) {
    for (int i = 0; i < 2; i++) {
        hive_sock_close(fds[i]);
        fds[i] = -1;
    }
}
