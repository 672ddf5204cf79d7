/* link.c - authenticated, encrypted links over TCP (protocol: see net.h).
 *
 * Layout of one frame in memory, sender and receiver alike, so that it is
 * encrypted and decrypted in place with no second buffer:
 *   tx_buf: | u32 ct_len | ss tag | type | payload ... | 16-byte MAC |
 *                        '---------- ciphertext (ct_len) ----------'
 * The payload is copied into tx_buf once and then encrypted in place; one
 * send() writes the whole frame. A receiver decrypts the ciphertext in place
 * and hands out a pointer into rx_buf. */
#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hive/net.h"
#include "net_internal.h"

typedef crypto_secretstream_xchacha20poly1305_state stream_state;

enum {
    NONCE_BYTES = 32,
    MAC_BYTES = crypto_generichash_BYTES, /* 32 */
    SS_HEADER = crypto_secretstream_xchacha20poly1305_HEADERBYTES, /* 24 */
    SS_ABYTES = crypto_secretstream_xchacha20poly1305_ABYTES, /* 17 */
    HELLO_BYTES = 4 + 1 + NONCE_BYTES + crypto_kx_PUBLICKEYBYTES, /* 69 */
    PROOF_BYTES = MAC_BYTES + SS_HEADER, /* 56 */
    LINK_VERSION = 1,
    /* Smallest valid ciphertext: the type byte plus secretstream overhead. */
    MIN_FRAME = 1 + SS_ABYTES,
};

/* Buffers above this are released when a small frame follows, so one weight
 * chunk does not pin hundreds of MB for the life of the link. */
#define BIG_BUFFER (16u << 20)
#define DEFAULT_SEND_TIMEOUT_MS 60000

struct hive_link {
    int fd;
    atomic_int dead;          /* set after any failure that desyncs the stream */
    int send_timeout_ms;      /* per-progress limit for a send, -1 = none */
    stream_state tx, rx;
    uint8_t *tx_buf;
    size_t tx_cap;
    uint8_t *rx_buf;          /* ciphertext, decrypted in place */
    size_t rx_cap;
    uint8_t *rx_plain;        /* only when in-place decryption is unavailable */
    size_t rx_plain_cap;
    /* Resumable receive: a timeout mid-frame keeps what has arrived. */
    uint8_t rx_len_le[4];
    size_t rx_len_have;       /* 0..4 bytes of the length prefix */
    size_t rx_need;           /* ciphertext length of the current frame, 0 = none yet */
    size_t rx_have;
    _Atomic uint64_t bytes_sent, bytes_received;
};

/* ---- handshake ---- */

/* Role labels are fixed-size and distinct so that no MAC computed for one
 * purpose ever validates for another (a reflected proof fails). */
static const char LABEL_CLIENT_PROOF[] = "hive/link/v1 client proof";
static const char LABEL_SERVER_PROOF[] = "hive/link/v1 server proof";
static const char LABEL_C2S_KEY[] = "hive/link/v1 client->server key";
static const char LABEL_S2C_KEY[] = "hive/link/v1 server->client key";

/* out = BLAKE2b-256 keyed with the cluster key over
 *       label | extra (may be empty) | hello_client | hello_server */
static void keyed_hash(uint8_t out[32], const uint8_t key[HIVE_KEY_BYTES], const char *label, const uint8_t *extra,
                       size_t extra_len, const uint8_t *hello_c, const uint8_t *hello_s) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, HIVE_KEY_BYTES, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
    if (extra_len) crypto_generichash_update(&st, extra, extra_len);
    crypto_generichash_update(&st, hello_c, HELLO_BYTES);
    crypto_generichash_update(&st, hello_s, HELLO_BYTES);
    crypto_generichash_final(&st, out, 32);
    sodium_memzero(&st, sizeof st);
}

/* Secrets of one handshake, wiped on every exit path. */
struct hs_secrets {
    uint8_t kx_pk[crypto_kx_PUBLICKEYBYTES], kx_sk[crypto_kx_SECRETKEYBYTES];
    uint8_t kx_rx[crypto_kx_SESSIONKEYBYTES], kx_tx[crypto_kx_SESSIONKEYBYTES];
    uint8_t key_rx[32], key_tx[32];
};

static int handshake(hive_link *l, const uint8_t key[HIVE_KEY_BYTES], int is_client, int timeout_ms, char *err) {
    int64_t deadline = net_deadline_us(timeout_ms);
    struct hs_secrets s;
    uint8_t mine[HELLO_BYTES], theirs[HELLO_BYTES];
    uint8_t my_proof[PROOF_BYTES], their_proof[PROOF_BYTES], expected[MAC_BYTES];
    int rc;

    /* 1. hello: "HIVE" | version | nonce | ephemeral kx public key */
    crypto_kx_keypair(s.kx_pk, s.kx_sk);
    memcpy(mine, "HIVE", 4);
    mine[4] = LINK_VERSION;
    randombytes_buf(mine + 5, NONCE_BYTES);
    memcpy(mine + 5 + NONCE_BYTES, s.kx_pk, crypto_kx_PUBLICKEYBYTES);
    rc = net_write_deadline(l->fd, mine, sizeof mine, deadline, err);
    if (rc) goto out;
    l->bytes_sent += sizeof mine;
    rc = net_read_deadline(l->fd, theirs, sizeof theirs, deadline, err);
    if (rc) goto out;
    l->bytes_received += sizeof theirs;
    if (memcmp(theirs, "HIVE", 4)) {
        rc = hive_errf(err, HIVE_ERR_PROTO, "handshake: peer is not a hive node (bad magic)");
        goto out;
    }
    if (theirs[4] != LINK_VERSION) {
        rc = hive_errf(err, HIVE_ERR_PROTO, "handshake: peer speaks link version %d, we speak %d", theirs[4],
                       LINK_VERSION);
        goto out;
    }
    if (!memcmp(theirs + 5, mine + 5, NONCE_BYTES)) {
        rc = hive_errf(err, HIVE_ERR_AUTH, "handshake: peer echoed our own hello");
        goto out;
    }
    const uint8_t *hello_c = is_client ? mine : theirs;
    const uint8_t *hello_s = is_client ? theirs : mine;
    const uint8_t *their_pk = theirs + 5 + NONCE_BYTES;

    /* 2. session keys: kx shared secret mixed with the cluster key and the
     * transcript, so they need both the ephemeral secret (forward secrecy)
     * and the cluster key (authentication). */
    int kx = is_client ? crypto_kx_client_session_keys(s.kx_rx, s.kx_tx, s.kx_pk, s.kx_sk, their_pk)
                       : crypto_kx_server_session_keys(s.kx_rx, s.kx_tx, s.kx_pk, s.kx_sk, their_pk);
    if (kx != 0) {
        rc = hive_errf(err, HIVE_ERR_AUTH, "handshake: peer sent an invalid key-exchange public key");
        goto out;
    }
    keyed_hash(s.key_tx, key, is_client ? LABEL_C2S_KEY : LABEL_S2C_KEY, s.kx_tx, sizeof s.kx_tx, hello_c, hello_s);
    keyed_hash(s.key_rx, key, is_client ? LABEL_S2C_KEY : LABEL_C2S_KEY, s.kx_rx, sizeof s.kx_rx, hello_c, hello_s);

    /* 3. proof: MAC over the transcript with our role | our stream header */
    keyed_hash(my_proof, key, is_client ? LABEL_CLIENT_PROOF : LABEL_SERVER_PROOF, NULL, 0, hello_c, hello_s);
    crypto_secretstream_xchacha20poly1305_init_push(&l->tx, my_proof + MAC_BYTES, s.key_tx);
    rc = net_write_deadline(l->fd, my_proof, sizeof my_proof, deadline, err);
    if (rc) goto out;
    l->bytes_sent += sizeof my_proof;
    rc = net_read_deadline(l->fd, their_proof, sizeof their_proof, deadline, err);
    if (rc) goto out;
    l->bytes_received += sizeof their_proof;
    keyed_hash(expected, key, is_client ? LABEL_SERVER_PROOF : LABEL_CLIENT_PROOF, NULL, 0, hello_c, hello_s);
    if (sodium_memcmp(expected, their_proof, MAC_BYTES) != 0) {
        rc = hive_errf(err, HIVE_ERR_AUTH, "handshake: peer does not hold the cluster key");
        goto out;
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(&l->rx, their_proof + MAC_BYTES, s.key_rx) != 0) {
        rc = hive_errf(err, HIVE_ERR_PROTO, "handshake: bad stream header");
        goto out;
    }
    rc = HIVE_OK;
out:
    if (rc == HIVE_ERR_CLOSED || rc == HIVE_ERR_TIMEOUT) {
        /* Name the stage so a log tells a dead peer from a slow one. */
        char detail[HIVE_ERR_LEN];
        if (err) {
            memcpy(detail, err, sizeof detail);
            detail[sizeof detail - 1] = '\0';
            hive_errf(err, rc, "handshake: %s", detail);
        }
    }
    sodium_memzero(&s, sizeof s);
    sodium_memzero(expected, sizeof expected);
    return rc;
}

static int link_open(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int is_client, int timeout_ms,
                     char *err) {
    *out = NULL;
    int rc = net_crypto_init(err);
    if (rc) {
        hive_sock_close(fd);
        return rc;
    }
    hive_link *l = calloc(1, sizeof *l);
    if (!l) {
        hive_sock_close(fd);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    l->fd = fd;
    l->send_timeout_ms = DEFAULT_SEND_TIMEOUT_MS;
    atomic_init(&l->dead, 0);
    rc = handshake(l, key, is_client, timeout_ms, err);
    if (rc) {
        hive_link_close(l);
        return rc;
    }
    *out = l;
    return HIVE_OK;
}

int hive_link_client(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err) {
    return link_open(out, fd, key, 1, timeout_ms, err);
}

int hive_link_server(hive_link **out, int fd, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, char *err) {
    return link_open(out, fd, key, 0, timeout_ms, err);
}

/* ---- frames ---- */

static int mark_dead(hive_link *l, int rc) {
    atomic_store(&l->dead, 1);
    return rc;
}

/* Grows (or, after a huge frame, shrinks) a buffer to hold need bytes. */
static int fit_buffer(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap && !(*cap > BIG_BUFFER && need <= *cap / 8)) return 0;
    size_t want = need < 4096 ? 4096 : need;
    if (*cap < BIG_BUFFER && need > *cap && want < *cap * 2) want = *cap * 2;
    uint8_t *p = malloc(want);
    if (!p) return -1;
    free(*buf);
    *buf = p;
    *cap = want;
    return 0;
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int hive_link_send(hive_link *l, uint8_t type, const void *head, size_t head_len, const void *body, size_t body_len,
                   char *err) {
    if (atomic_load(&l->dead)) return hive_errf(err, HIVE_ERR_CLOSED, "link is closed after an earlier error");
    size_t limit = HIVE_LINK_MAX_FRAME - SS_ABYTES - 1;
    if (head_len > limit || body_len > limit - head_len)
        return hive_errf(err, HIVE_ERR_INVAL, "frame of %zu bytes exceeds the %u byte limit", head_len + body_len,
                         HIVE_LINK_MAX_FRAME);
    size_t plain_len = 1 + head_len + body_len;
    size_t ct_len = plain_len + SS_ABYTES;
    if (fit_buffer(&l->tx_buf, &l->tx_cap, 4 + ct_len)) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");

    /* Plaintext goes where its ciphertext will be: just after the stream's
     * tag byte, which is the first ciphertext byte. */
    int inplace = net_secretstream_inplace_ok();
    uint8_t *plain = inplace ? l->tx_buf + 5 : malloc(plain_len);
    if (!plain) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    plain[0] = type;
    if (head_len) memcpy(plain + 1, head, head_len);
    if (body_len) memcpy(plain + 1 + head_len, body, body_len);
    put_le32(l->tx_buf, (uint32_t)ct_len);
    crypto_secretstream_xchacha20poly1305_push(&l->tx, l->tx_buf + 4, NULL, plain, plain_len, NULL, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    if (!inplace) free(plain);

    /* The stream state has advanced: from here the frame must go out whole
     * or the link is unusable. The timeout is per stall, not per frame, so a
     * big frame over a slow link is fine as long as it keeps moving. */
    const uint8_t *p = l->tx_buf;
    size_t left = 4 + ct_len;
    while (left) {
        int64_t n = net_send_some(l->fd, p, left);
        if (n >= 0) {
            p += n;
            left -= (size_t)n;
            l->bytes_sent += (uint64_t)n;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int closed = errno == EPIPE || errno == ECONNRESET;
            return mark_dead(l, hive_errf(err, closed ? HIVE_ERR_CLOSED : HIVE_ERR_IO, "send: %s", strerror(errno)));
        }
        int rc = net_wait_fd(l->fd, HIVE_POLLOUT, net_deadline_us(l->send_timeout_ms), err);
        if (rc) {
            if (rc == HIVE_ERR_TIMEOUT)
                hive_errf(err, rc, "send stalled for %d ms (peer not reading)", l->send_timeout_ms);
            return mark_dead(l, rc);
        }
    }
    return HIVE_OK;
}

/* Reads into dst[*have..want) until complete, the deadline, EOF or error. */
static int recv_into(hive_link *l, uint8_t *dst, size_t *have, size_t want, int64_t deadline, char *err) {
    while (*have < want) {
        int64_t n = net_recv_some(l->fd, dst + *have, want - *have);
        if (n > 0) {
            *have += (size_t)n;
            l->bytes_received += (uint64_t)n;
            continue;
        }
        if (n == 0) return hive_errf(err, HIVE_ERR_CLOSED, "peer closed the link");
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int closed = errno == ECONNRESET;
            return hive_errf(err, closed ? HIVE_ERR_CLOSED : HIVE_ERR_IO, "recv: %s", strerror(errno));
        }
        int rc = net_wait_fd(l->fd, HIVE_POLLIN, deadline, err);
        if (rc) return rc;
    }
    return HIVE_OK;
}

int hive_link_recv(hive_link *l, uint8_t *type, const uint8_t **payload, size_t *len, int timeout_ms, char *err) {
    if (atomic_load(&l->dead)) return hive_errf(err, HIVE_ERR_CLOSED, "link is closed after an earlier error");
    int64_t deadline = net_deadline_us(timeout_ms);
    int rc;
    if (l->rx_need == 0) {
        int at_start = l->rx_len_have == 0;
        rc = recv_into(l, l->rx_len_le, &l->rx_len_have, 4, deadline, err);
        if (rc == HIVE_ERR_TIMEOUT) return rc; /* resumable */
        if (rc == HIVE_ERR_CLOSED && at_start && l->rx_len_have == 0) return mark_dead(l, rc); /* clean EOF */
        if (rc) return mark_dead(l, rc == HIVE_ERR_CLOSED ? hive_errf(err, rc, "peer closed the link mid-frame") : rc);
        uint32_t ct_len = (uint32_t)l->rx_len_le[0] | (uint32_t)l->rx_len_le[1] << 8 |
                          (uint32_t)l->rx_len_le[2] << 16 | (uint32_t)l->rx_len_le[3] << 24;
        /* Checked before anything is allocated: the peer's claim sizes nothing. */
        if (ct_len < MIN_FRAME || ct_len > HIVE_LINK_MAX_FRAME)
            return mark_dead(l, hive_errf(err, HIVE_ERR_PROTO, "bad frame length %u (allowed %d..%u)", ct_len,
                                          MIN_FRAME, HIVE_LINK_MAX_FRAME));
        if (fit_buffer(&l->rx_buf, &l->rx_cap, ct_len))
            return mark_dead(l, hive_errf(err, HIVE_ERR_NOMEM, "out of memory for a %u byte frame", ct_len));
        l->rx_need = ct_len;
        l->rx_have = 0;
    }
    rc = recv_into(l, l->rx_buf, &l->rx_have, l->rx_need, deadline, err);
    if (rc == HIVE_ERR_TIMEOUT) return rc;
    if (rc) return mark_dead(l, rc == HIVE_ERR_CLOSED ? hive_errf(err, rc, "peer closed the link mid-frame") : rc);

    size_t ct_len = l->rx_need;
    l->rx_need = 0;
    l->rx_len_have = 0;
    uint8_t *plain = l->rx_buf + 1;
    if (!net_secretstream_inplace_ok()) {
        if (fit_buffer(&l->rx_plain, &l->rx_plain_cap, ct_len))
            return mark_dead(l, hive_errf(err, HIVE_ERR_NOMEM, "out of memory"));
        plain = l->rx_plain;
    }
    unsigned long long plain_len = 0;
    uint8_t tag = 0xff;
    if (crypto_secretstream_xchacha20poly1305_pull(&l->rx, plain, &plain_len, &tag, l->rx_buf, ct_len, NULL, 0) != 0)
        return mark_dead(l, hive_errf(err, HIVE_ERR_PROTO, "frame failed authentication (tampered or corrupt)"));
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE || plain_len < 1)
        return mark_dead(l, hive_errf(err, HIVE_ERR_PROTO, "unexpected stream tag %d", tag));
    *type = plain[0];
    *payload = plain + 1;
    *len = (size_t)plain_len - 1;
    return HIVE_OK;
}

/* ---- accessors ---- */

int hive_link_fd(const hive_link *l) { return l->fd; }
uint64_t hive_link_bytes_sent(const hive_link *l) { return atomic_load(&((hive_link *)l)->bytes_sent); }
uint64_t hive_link_bytes_received(const hive_link *l) { return atomic_load(&((hive_link *)l)->bytes_received); }
int hive_link_is_dead(const hive_link *l) { return atomic_load(&((hive_link *)l)->dead); }
void hive_link_set_send_timeout(hive_link *l, int timeout_ms) { l->send_timeout_ms = timeout_ms; }

void hive_link_shutdown(hive_link *l) {
    if (!l) return;
    atomic_store(&l->dead, 1);
    hive_sock_shutdown(l->fd);
}

void hive_link_close(hive_link *l) {
    if (!l) return;
    hive_sock_close(l->fd);
    sodium_memzero(&l->tx, sizeof l->tx);
    sodium_memzero(&l->rx, sizeof l->rx);
    free(l->tx_buf);
    free(l->rx_buf);
    free(l->rx_plain);
    free(l);
}
