/* fuzz_link.c - a node's link handshake and frame reader fed by a byte
 * stream: the target plays the peer on the other end of a socketpair.
 *   u8 mode | rest
 * mode % 4:
 *   0  the rest is what a stranger sends a node before authentication
 *      (hive_link_server: hellos, proofs, garbage), then EOF
 *   1  the same against the dialling side (hive_link_client)
 *   2  a peer holding the cluster key authenticates for real, then sends
 *      the rest as frames, u8 type | u16 length | payload each; the node
 *      side reads them with hive_link_recv, wants HELLO first (as node.c's
 *      conn_main), then decodes every message (fuzz_proto.h)
 *   3  a peer authenticates, then writes the rest raw on the socket
 *      (lengths, truncation and ciphertext after authentication)
 * Seeds: hellos, an all-zero public key, reflected hellos, encoded frames. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_proto.h"

#define TIMEOUT_MS 2000

static const uint8_t KEY[HIVE_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct peer {
    int fd, raw;
    const uint8_t *p;
    size_t len;
};

static void *peer_main(void *arg) {
    struct peer *pe = arg;
    char err[HIVE_ERR_LEN];
    hive_link *l;
    if (hive_link_client(&l, pe->fd, KEY, TIMEOUT_MS, err)) return NULL; /* closed the fd */
    struct fuzz_in in = {pe->p, pe->len, 0};
    if (pe->raw) {
        size_t off = 0;
        while (off < pe->len) {
            ssize_t n = send(hive_link_fd(l), pe->p + off, pe->len - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
    } else {
        while (fuzz_left(&in) >= 3) {
            uint8_t type = fuzz_u8(&in);
            size_t len;
            const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &len);
            if (hive_link_send(l, type, p, len, NULL, 0, err)) break;
        }
    }
    hive_link_close(l);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        hive_log_set_level(HIVE_LOG_ERROR);
        init = 1;
    }
    if (size < 1 || size > (1u << 16)) return 0; /* more never fits the socket buffer of mode 0/1 */
    int mode = data[0] % 4;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) abort();
    char err[HIVE_ERR_LEN];
    hive_link *l = NULL;
    if (mode < 2) {
        size_t off = 1;
        while (off < size) {
            ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
        shutdown(sv[1], SHUT_WR);
        int rc = mode == 0 ? hive_link_server(&l, sv[0], KEY, TIMEOUT_MS, err)
                           : hive_link_client(&l, sv[0], KEY, TIMEOUT_MS, err);
        /* A stranger never gets through: the proof needs the key. */
        FUZZ_ASSERT(rc != HIVE_OK && l == NULL);
        close(sv[1]);
        return 0;
    }
    struct peer pe = {sv[1], mode == 3, data + 1, size - 1};
    pthread_t th;
    if (pthread_create(&th, NULL, peer_main, &pe)) abort();
    if (hive_link_server(&l, sv[0], KEY, TIMEOUT_MS, err) == HIVE_OK) {
        uint8_t type;
        const uint8_t *p;
        size_t len;
        int first = 1;
        while (hive_link_recv(l, &type, &p, &len, TIMEOUT_MS, err) == HIVE_OK) {
            if (first) {
                struct proto_hello h;
                if (type != MSG_HELLO || proto_hello_decode(p, len, &h) != 0) break; /* node.c hangs up */
                first = 0;
                continue;
            }
            fuzz_proto_message(type, p, len);
        }
        hive_link_close(l);
    }
    pthread_join(th, NULL);
    return 0;
}
