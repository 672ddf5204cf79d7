/* net_internal.h - helpers shared by the files of src/net (not public).
 * Deadlines are absolute times on the monotonic clock in microseconds; a
 * negative deadline means "wait forever". */
#ifndef HIVE_NET_INTERNAL_H
#define HIVE_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Runs sodium_init() once (thread-safe) and checks that libsodium's
 * secretstream can encrypt and decrypt in place. HIVE_OK or an error. */
int net_crypto_init(char *err);
/* Whether secretstream push/pull give the same result in place as out of
 * place (checked once by net_crypto_init; the link falls back to a separate
 * buffer when not). */
int net_secretstream_inplace_ok(void);

/* timeout_ms < 0 -> -1 (no deadline), else now + timeout. */
int64_t net_deadline_us(int timeout_ms);
/* Milliseconds left until deadline, rounded up, for poll(); -1 when none. */
int net_ms_left(int64_t deadline_us);

/* Waits until fd is ready for events (HIVE_POLLIN/HIVE_POLLOUT). HIVE_OK,
 * HIVE_ERR_TIMEOUT or HIVE_ERR_IO. */
int net_wait_fd(int fd, short events, int64_t deadline_us, char *err);

/* Exact read/write against an absolute deadline. The read returns
 * HIVE_ERR_CLOSED on EOF. Sends never raise SIGPIPE. */
int net_read_deadline(int fd, void *buf, size_t len, int64_t deadline_us, char *err);
int net_write_deadline(int fd, const void *buf, size_t len, int64_t deadline_us, char *err);

/* One non-blocking recv/send (falls back to read/write on a non-socket
 * on POSIX). Returns bytes moved, 0 on EOF (recv only), -1 with errno set. */
int64_t net_recv_some(int fd, void *buf, size_t len);
int64_t net_send_some(int fd, const void *buf, size_t len);

#endif
