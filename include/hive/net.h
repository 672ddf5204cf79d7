/* net.h - TCP helpers, the cluster key, authenticated + encrypted links, and
 * bounds-checked wire buffers.
 *
 * Link handshake (both sides hold the 32-byte cluster key K). Every handshake
 * message has a fixed size; nothing of variable length is parsed before the
 * peer has proven it holds K.
 *   1. each side sends a hello (69 bytes):
 *        "HIVE" | u8 version (1) | 32-byte random nonce | 32-byte ephemeral crypto_kx public key
 *      and reads the peer's: bad magic/version -> HIVE_ERR_PROTO; a hello
 *      carrying our own nonce (a reflection) -> HIVE_ERR_AUTH.
 *   2. each side sends a proof (56 bytes):
 *        MAC (32) | secretstream header of its sending direction (24)
 *      MAC = BLAKE2b-256 keyed with K over (role label | hello_client | hello_server),
 *      the label being "client proof" or "server proof", so a proof cannot be
 *      reflected back, and fresh nonces from both sides make a recorded proof
 *      useless in any later session. Each side checks the peer's MAC in
 *      constant time: a peer without K gets HIVE_ERR_AUTH on both sides.
 *   3. session keys, one per direction:
 *        key = BLAKE2b-256 keyed with K over (direction label | crypto_kx session key | hello_c | hello_s)
 *      so they need both the ephemeral kx secret (forward secrecy) and K.
 *      Each direction is a crypto_secretstream_xchacha20poly1305 stream.
 * The whole handshake is one round trip each way plus a deadline (timeout_ms).
 *
 * Frame on the wire: u32 ciphertext length (LE) | secretstream ciphertext of
 * (u8 type | payload). A length below 18 (type byte + 17 bytes of overhead)
 * or above HIVE_LINK_MAX_FRAME is refused before any allocation. A frame
 * that fails decryption kills the link (HIVE_ERR_PROTO, later calls fail).
 *
 * Threads: one thread may send while another receives on the same link; two
 * concurrent senders (or receivers) need the caller's lock.
 *
 * Cluster key file: $HIVE_KEY_FILE, else $XDG_CONFIG_HOME/hive/cluster.key,
 * else ~/.config/hive/cluster.key (hive_key_default_path). `hive keygen`
 * writes one. */
#ifndef HIVE_NET_H
#define HIVE_NET_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"

#define HIVE_KEY_BYTES 32
#define HIVE_LINK_MAX_FRAME (256u << 20) /* big enough for one weight chunk */
/* Largest head_len + body_len one hive_link_send accepts. */
#define HIVE_LINK_MAX_PAYLOAD (HIVE_LINK_MAX_FRAME - 18u)

/* ---- sockets ----
 * Every connected socket is close-on-exec and has TCP_NODELAY; it is
 * blocking on POSIX and non-blocking on Windows (which has no per-call
 * MSG_DONTWAIT), and the calls below wait with a deadline either way.
 * Sends never raise SIGPIPE. */
/* Listens on host:port (port 0 = ephemeral; *out_port gets the real one).
 * host NULL or "" = all interfaces. The listening fd is non-blocking. */
int hive_net_listen(const char *host, int port, int *out_fd, int *out_port, char *err);
/* Accepts one connection; timeout_ms < 0 waits forever. */
int hive_net_accept(int listen_fd, int timeout_ms, int *out_fd, char *err);
/* Connects with a deadline (hostnames resolved with getaddrinfo; each address
 * tried in turn). HIVE_ERR_TIMEOUT or HIVE_ERR_IO (refused, unreachable). */
int hive_net_connect(const char *host, int port, int timeout_ms, int *out_fd, char *err);
/* "host:port" or "[v6addr]:port" -> host, port. Returns HIVE_ERR_INVAL on bad syntax. */
int hive_net_parse_hostport(const char *s, char *host, size_t host_cap, int *port, char *err);
/* Blocking exact read/write with a deadline (timeout_ms < 0: none). The read
 * returns HIVE_ERR_CLOSED on EOF, HIVE_ERR_TIMEOUT past the deadline. */
int hive_net_read_full(int fd, void *buf, size_t len, int timeout_ms, char *err);
int hive_net_write_full(int fd, const void *buf, size_t len, char *err);
int hive_net_write_full_ms(int fd, const void *buf, size_t len, int timeout_ms, char *err);
/* 1 when host is a dotted IPv4 address other than 0.0.0.0 (one interface). */
int hive_net_is_one_ipv4(const char *host);
/* Sets TCP_NODELAY (done already for sockets made here). */
int hive_net_set_nodelay(int fd);

/* ---- the OS's sockets (src/net/sock_posix.c, sock_win.c) ----
 * Sockets are ints everywhere in hive (a Windows SOCKET handle fits: they
 * are small kernel handle values). Close and shut them down with these, not
 * close()/shutdown(), and wait on them with hive_sock_poll. */
#define HIVE_POLLIN 0x1
#define HIVE_POLLOUT 0x2
#define HIVE_POLLERR 0x4 /* out only: error or hangup */
struct hive_pollfd {
    int fd;
    short events, revents; /* HIVE_POLL* */
};
/* poll(): the number of ready entries, 0 on timeout (timeout_ms < 0: none),
 * -1 on failure. Interrupted waits are retried. */
int hive_sock_poll(struct hive_pollfd *p, int n, int timeout_ms);
void hive_sock_close(int fd);
/* Shuts both directions down, waking any thread blocked on fd. */
void hive_sock_shutdown(int fd);
/* A wake-up channel for a poll loop: fds[0] becomes readable after
 * hive_wake_signal(fds[1]); hive_wake_drain(fds[0]) empties it. A pipe on
 * POSIX, a loopback TCP pair on Windows (WSAPoll takes sockets only).
 * Both ends are non-blocking. HIVE_OK or HIVE_ERR_IO. */
int hive_wake_open(int fds[2], char *err);
void hive_wake_signal(int fd);
void hive_wake_drain(int fd);
void hive_wake_close(int fds[2]);

/* ---- cluster key ---- */
void hive_key_generate(uint8_t key[HIVE_KEY_BYTES]);
/* Text file: 64 hex chars + newline, mode 0600. Refuses (HIVE_ERR_INVAL) to
 * replace an existing file; hive_key_write(..., overwrite=1) replaces it
 * atomically. The parent directory must exist. */
int hive_key_save(const char *path, const uint8_t key[HIVE_KEY_BYTES], char *err);
int hive_key_write(const char *path, const uint8_t key[HIVE_KEY_BYTES], int overwrite, char *err);
/* Strict: exactly 64 hex chars, then optionally "\n" or "\r\n", nothing else
 * (HIVE_ERR_FORMAT otherwise; HIVE_ERR_IO when missing, with a hint to run
 * `hive keygen`). Warns when the file is readable by others. */
int hive_key_load(const char *path, uint8_t key[HIVE_KEY_BYTES], char *err);
/* The default key path (see the top of this file) into buf; HIVE_ERR_INVAL
 * when neither HIVE_KEY_FILE nor HOME is set or buf is too small. */
int hive_key_default_path(char *buf, size_t cap);
/* hive_key_load(hive_key_default_path()). */
int hive_key_load_default(uint8_t key[HIVE_KEY_BYTES], char *err);

/* ---- links ---- */
typedef struct hive_link hive_link;

/* Runs the handshake on a connected socket and takes ownership of fd (it is
 * closed on failure). HIVE_ERR_AUTH when the peer does not hold the key,
 * HIVE_ERR_PROTO when it is not a hive peer, HIVE_ERR_TIMEOUT/CLOSED when it
 * stalls or hangs up. */
int hive_link_client(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err);
int hive_link_server(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err);
/* Sends one frame: type + the concatenation of head and body (either may be
 * NULL/0), so callers need not copy a header in front of a large payload.
 * The payload is copied once into the frame buffer and encrypted in place;
 * one send() per frame. Blocks until the kernel took it all; a stall longer
 * than the send timeout (default 60 s without progress) gives
 * HIVE_ERR_TIMEOUT. Any failure after encryption kills the link. */
int hive_link_send(hive_link *l, uint8_t type, const void *head, size_t head_len, const void *body,
                   size_t body_len, char *err);
/* Receives one frame. *payload points into a buffer owned by the link, valid
 * until the next recv. timeout_ms < 0 waits forever. HIVE_ERR_CLOSED on EOF,
 * HIVE_ERR_PROTO on a bad length or failed decryption (the link is then
 * unusable). HIVE_ERR_TIMEOUT leaves the link usable, even mid-frame: the
 * next call resumes where this one stopped. */
int hive_link_recv(hive_link *l, uint8_t *type, const uint8_t **payload, size_t *len, int timeout_ms,
                   char *err);
int hive_link_fd(const hive_link *l);
/* Bytes sent/received on the wire (handshake and framing included), for stats. */
uint64_t hive_link_bytes_sent(const hive_link *l);
uint64_t hive_link_bytes_received(const hive_link *l);
/* 1 once an error made the link unusable (every later call fails). */
int hive_link_is_dead(const hive_link *l);
/* Per-stall limit for hive_link_send (timeout_ms < 0: wait forever). */
void hive_link_set_send_timeout(hive_link *l, int timeout_ms);
/* Wakes a thread blocked in send/recv on this link (they fail with
 * HIVE_ERR_CLOSED/IO) without freeing it; safe from another thread. */
void hive_link_shutdown(hive_link *l);
/* Closes the socket and frees the link (NULL is fine). */
void hive_link_close(hive_link *l);

/* ---- connection gate ----
 * Admission of incoming connections, so that connections that never
 * authenticate (idle, garbage, a scan) cannot starve legitimate links. A
 * connection is unauthenticated from accept until its owner promotes it
 * (handshake done and first message read within handshake_ms), then
 * authenticated. The two pools have separate caps. The unauthenticated one
 * also has a per-source-address cap and random early drop like OpenSSH's
 * MaxStartups start:rate:full: below drop_start every connection is
 * admitted; from there each is refused with a probability rising linearly
 * from drop_rate percent to 100% at max_unauth. Thread-safe. */
#define HIVE_GATE_ADDR_CAP 64

struct hive_gate_opts {
    int drop_start;          /* 10 */
    int drop_rate;           /* 30 (percent) */
    int max_unauth;          /* 60: at most this many unauthenticated at once */
    int max_unauth_per_addr; /* 8 */
    int max_auth;            /* 64 authenticated links */
    int handshake_ms;        /* 2000: what an owner allows before promotion */
    uint32_t (*random)(void *arg); /* NULL: libsodium's randombytes (tests pass their own) */
    void *random_arg;
};

struct hive_gate_stats {
    int unauth, auth;                  /* now */
    uint64_t admitted, promoted;       /* so far */
    uint64_t refused_full, refused_addr, refused_early, refused_auth;
};

typedef struct hive_gate hive_gate;

struct hive_gate_opts hive_gate_default_opts(void);
/* NULL opts: the defaults. NULL on bad options or no memory. */
hive_gate *hive_gate_new(const struct hive_gate_opts *o);
void hive_gate_free(hive_gate *g);
int hive_gate_handshake_ms(const hive_gate *g);
/* A new connection from addr (a source address string, see
 * hive_gate_peer_addr): HIVE_OK when admitted into the unauthenticated pool,
 * HIVE_ERR_BUSY when it should be closed at once. */
int hive_gate_admit(hive_gate *g, const char *addr);
/* An admitted connection authenticated: it leaves the unauthenticated pool
 * and takes an authenticated slot. HIVE_ERR_BUSY when those are all taken
 * (then it holds no slot and must be closed without a release). */
int hive_gate_promote(hive_gate *g, const char *addr);
/* A connection that holds a slot ended (authenticated: whether it was promoted). */
void hive_gate_release(hive_gate *g, const char *addr, int authenticated);
void hive_gate_get_stats(hive_gate *g, struct hive_gate_stats *st);
/* The source a connected socket's peer counts as: its IPv4 address
 * ("127.0.0.1", also for a v4-mapped v6 address), its IPv6 /64 ("fe80::/64":
 * one host usually owns a whole /64), or "?". */
void hive_gate_peer_addr(int fd, char *buf, size_t cap);

/* ---- wire buffers ----
 * Little-endian. Readers never run past the end: an overrun sets r->bad and
 * returns 0 (and every later read returns 0), so a parser can read a whole
 * message and check bad once. */
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
/* Length-prefixed (u32) string copied into buf (NUL-terminated); bad if it
 * does not fit or contains a NUL byte. */
void hive_rbuf_str(struct hive_rbuf *r, char *buf, size_t cap);
size_t hive_rbuf_left(const struct hive_rbuf *r);

void hive_wbuf_init(struct hive_wbuf *w);
void hive_wbuf_free(struct hive_wbuf *w);
void hive_wbuf_u8(struct hive_wbuf *w, uint8_t v);
void hive_wbuf_u32(struct hive_wbuf *w, uint32_t v);
void hive_wbuf_u64(struct hive_wbuf *w, uint64_t v);
void hive_wbuf_f32(struct hive_wbuf *w, float v);
void hive_wbuf_bytes(struct hive_wbuf *w, const void *p, size_t n);
/* u32 length | bytes (no NUL). */
void hive_wbuf_str(struct hive_wbuf *w, const char *s);

#endif
