/* sock_os.h - the OS's socket calls, for the files of src/net only.
 *
 * The one place that picks the system's socket headers; sock_posix.c and
 * sock_win.c implement the sock_* functions below with the same contract.
 * Failing calls return -1 and leave a POSIX errno value (EAGAIN, EINTR,
 * EINPROGRESS, ECONNRESET, EPIPE, ETIMEDOUT, ECONNREFUSED, ...) in errno,
 * translated from WSAGetLastError() on Windows, so the callers in sock.c
 * are written once. */
#ifndef HIVE_SOCK_OS_H
#define HIVE_SOCK_OS_H

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif
#include <stddef.h>
#include <stdint.h>

/* A new socket (close-on-exec), non-blocking when nonblock. fd or -1. */
int sock_open(int family, int type, int protocol, int nonblock);
int sock_set_nonblocking(int fd, int on);
/* setsockopt with an int value. 0 or -1. */
int sock_setopt_int(int fd, int level, int name, int value);
/* The pending error of a socket whose non-blocking connect finished
 * (SO_ERROR) as an errno value, 0 when it connected. */
int sock_connect_result(int fd);
/* connect/bind/listen/getsockname/accept: 0 (or the new fd) or -1. */
int sock_connect(int fd, const struct sockaddr *a, size_t len);
int sock_bind_listen(int fd, const struct sockaddr *a, size_t len, int backlog);
int sock_local_port(int fd);
int sock_accept(int listen_fd);
/* One recv/send that never blocks and never raises SIGPIPE. Bytes moved,
 * 0 on EOF (recv), -1 with errno (EAGAIN when it would block). */
int64_t sock_recv(int fd, void *buf, size_t len);
int64_t sock_send(int fd, const void *buf, size_t len);
/* Whether connected sockets stay non-blocking (Windows: recv/send have no
 * per-call non-blocking flag there) rather than going back to blocking. */
int sock_connected_nonblocking(void);

#endif
