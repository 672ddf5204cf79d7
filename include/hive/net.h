/* net.h - TCP helpers, the cluster key, authenticated + encrypted links, and
 * bounds-checked wire buffers.
 *
 * Link handshake (both sides hold the 32-byte cluster key K):
 *   1. each side sends a hello: magic "HIVE" | u8 version | 32-byte random nonce
 *      | 32-byte crypto_kx public key
 *   2. each side sends MAC_K(transcript, role) and checks the other's MAC
 *      (constant time). A peer without K is cut off here: nothing it sends
 *      beyond the fixed-size hello and proof is ever parsed.
 *   3. session keys = crypto_kx session keys mixed with K; each direction is a
 *      crypto_secretstream_xchacha20poly1305 stream.
 * Frame on the wire: u32 ciphertext length (LE) | secretstream ciphertext of
 * (u8 type | payload). Lengths above HIVE_LINK_MAX_FRAME are refused before
 * any allocation. */
#ifndef HIVE_NET_H
#define HIVE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"

#define HIVE_KEY_BYTES 32
#define HIVE_LINK_MAX_FRAME (256u << 20) /* big enough for one weight chunk */

/* ---- sockets ---- */
/* Listens on host:port (port 0 = ephemeral; *out_port gets the real one). */
int hive_net_listen(const char *host, int port, int *out_fd, int *out_port, char *err);
/* Accepts one connection; timeout_ms < 0 waits forever. */
int hive_net_accept(int listen_fd, int timeout_ms, int *out_fd, char *err);
int hive_net_connect(const char *host, int port, int timeout_ms, int *out_fd, char *err);
/* "host:port" -> host, port. Returns HIVE_ERR_INVAL on bad syntax. */
int hive_net_parse_hostport(const char *s, char *host, size_t host_cap, int *port, char *err);
/* Blocking exact read/write with a deadline (timeout_ms < 0: none). */
int hive_net_read_full(int fd, void *buf, size_t len, int timeout_ms, char *err);
int hive_net_write_full(int fd, const void *buf, size_t len, char *err);

/* ---- cluster key ---- */
void hive_key_generate(uint8_t key[HIVE_KEY_BYTES]);
/* Text file: 64 hex chars + newline, mode 0600. */
int hive_key_save(const char *path, const uint8_t key[HIVE_KEY_BYTES], char *err);
int hive_key_load(const char *path, uint8_t key[HIVE_KEY_BYTES], char *err);

/* ---- links ---- */
typedef struct hive_link hive_link;

/* Runs the handshake on a connected socket and takes ownership of fd (it is
 * closed on failure). HIVE_ERR_AUTH when the peer does not hold the key. */
int hive_link_client(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err);
int hive_link_server(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err);
/* Sends one frame: type + the concatenation of head and body (either may be
 * NULL/0), so callers need not copy a header in front of a large payload. */
int hive_link_send(hive_link *l, uint8_t type, const void *head, size_t head_len, const void *body,
                   size_t body_len, char *err);
/* Receives one frame. *payload points into a buffer owned by the link, valid
 * until the next recv. timeout_ms < 0 waits forever. HIVE_ERR_CLOSED on EOF,
 * HIVE_ERR_PROTO on a bad length or failed decryption (the link is then
 * unusable). */
int hive_link_recv(hive_link *l, uint8_t *type, const uint8_t **payload, size_t *len, int timeout_ms,
                   char *err);
int hive_link_fd(const hive_link *l);
/* Bytes sent/received on the wire, for stats. */
uint64_t hive_link_bytes_sent(const hive_link *l);
uint64_t hive_link_bytes_received(const hive_link *l);
void hive_link_close(hive_link *l);

/* ---- wire buffers ----
 * Readers never run past the end: an overrun sets r->bad and returns 0. */
struct hive_rbuf {
    const uint8_t *p;
    size_t len, off;
    int bad;
};
struct hive_wbuf {
    uint8_t *p;
    size_t len, cap;
    int bad; /* set when an append failed to allocate */
};
void hive_rbuf_init(struct hive_rbuf *r, const void *p, size_t len);
uint8_t hive_rbuf_u8(struct hive_rbuf *r);
uint32_t hive_rbuf_u32(struct hive_rbuf *r);
uint64_t hive_rbuf_u64(struct hive_rbuf *r);
float hive_rbuf_f32(struct hive_rbuf *r);
/* Returns a pointer to n bytes inside the buffer, or NULL (and bad) on overrun. */
const void *hive_rbuf_bytes(struct hive_rbuf *r, size_t n);
/* Length-prefixed (u32) string copied into buf (NUL-terminated); bad if it does not fit. */
void hive_rbuf_str(struct hive_rbuf *r, char *buf, size_t cap);
size_t hive_rbuf_left(const struct hive_rbuf *r);

void hive_wbuf_init(struct hive_wbuf *w);
void hive_wbuf_free(struct hive_wbuf *w);
void hive_wbuf_u8(struct hive_wbuf *w, uint8_t v);
void hive_wbuf_u32(struct hive_wbuf *w, uint32_t v);
void hive_wbuf_u64(struct hive_wbuf *w, uint64_t v);
void hive_wbuf_f32(struct hive_wbuf *w, float v);
void hive_wbuf_bytes(struct hive_wbuf *w, const void *p, size_t n);
void hive_wbuf_str(struct hive_wbuf *w, const char *s);

#endif
