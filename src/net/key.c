/* key.c - the cluster key: 32 random bytes shared by every machine of a
 * cluster, stored as 64 hex characters and a newline in a file of mode 0600.
 * Also libsodium's one-time initialisation for the whole net module.
 *
 * Default location: $HIVE_KEY_FILE, else $XDG_CONFIG_HOME/hive/cluster.key,
 * else ~/.config/hive/cluster.key (%APPDATA%/hive/cluster.key on Windows). */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive/net.h"
#include "hive/os.h"
#include "net_internal.h"

/* ---- libsodium initialisation ---- */

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static int crypto_ok;
static int inplace_ok;

/* Secretstream encrypts and decrypts in place in libsodium's implementation
 * (the chacha20 xor goes from m to c, and the MAC covers c, which pull checks
 * before decrypting), but the documentation does not promise it, so this
 * checks it once against the out-of-place result with identical states. */
static int check_inplace(void) {
    typedef crypto_secretstream_xchacha20poly1305_state state_t;
    enum { N = 100, AB = crypto_secretstream_xchacha20poly1305_ABYTES };
    uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    uint8_t msg[N], out_of_place[N + AB], in_place[N + AB], plain[N];
    state_t push_a, push_b, pull_a, pull_b;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    randombytes_buf(msg, sizeof msg);
    crypto_secretstream_xchacha20poly1305_init_push(&push_a, header, key);
    push_b = push_a;
    crypto_secretstream_xchacha20poly1305_push(&push_a, out_of_place, NULL, msg, N, NULL, 0, 0);
    memcpy(in_place + 1, msg, N);
    crypto_secretstream_xchacha20poly1305_push(&push_b, in_place, NULL, in_place + 1, N, NULL, 0, 0);
    if (memcmp(in_place, out_of_place, sizeof in_place)) return 0;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&pull_a, header, key)) return 0;
    pull_b = pull_a;
    uint8_t tag = 0xff;
    if (crypto_secretstream_xchacha20poly1305_pull(&pull_a, plain, NULL, &tag, out_of_place, N + AB, NULL, 0))
        return 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&pull_b, in_place + 1, NULL, &tag, in_place, N + AB, NULL, 0))
        return 0;
    return !memcmp(plain, msg, N) && !memcmp(in_place + 1, msg, N);
}

static void crypto_init_once(void) {
    crypto_ok = sodium_init() >= 0;
    if (crypto_ok) inplace_ok = check_inplace();
}

int net_crypto_init(char *err) {
    pthread_once(&crypto_once, crypto_init_once);
    return crypto_ok ? HIVE_OK : hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
}

int net_secretstream_inplace_ok(void) {
    pthread_once(&crypto_once, crypto_init_once);
    return inplace_ok;
}

/* ---- key files ---- */

void hive_key_generate(uint8_t key[HIVE_KEY_BYTES]) {
    /* randombytes_buf works (from the OS source) even if sodium_init failed. */
    net_crypto_init(NULL);
    randombytes_buf(key, HIVE_KEY_BYTES);
}

int hive_key_default_path(char *buf, size_t cap) {
    const char *env = getenv("HIVE_KEY_FILE");
    int n;
    if (env && *env) {
        n = snprintf(buf, cap, "%s", env);
    } else {
        char base[4096];
        if (hive_user_config_base(base, sizeof base) != 0) return HIVE_ERR_INVAL;
        n = snprintf(buf, cap, "%s/hive/cluster.key", base);
    }
    return n < 0 || (size_t)n >= cap ? HIVE_ERR_INVAL : HIVE_OK;
}

/* Writes the whole buffer to fd. */
static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        int w = (int)write(fd, p, (unsigned)(n > 65536 ? 65536 : n));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int hive_key_write(const char *path, const uint8_t key[HIVE_KEY_BYTES], int overwrite, char *err) {
    char hex[2 * HIVE_KEY_BYTES + 2];
    sodium_bin2hex(hex, sizeof hex - 1, key, HIVE_KEY_BYTES);
    hex[2 * HIVE_KEY_BYTES] = '\n';
    hex[2 * HIVE_KEY_BYTES + 1] = '\0';

    /* Write a temporary file beside the target, then move it into place:
     * rename() replaces atomically when overwriting, link() refuses
     * atomically when not, so a reader never sees half a key. */
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, hive_os_pid());
    if (n < 0 || (size_t)n >= sizeof tmp) return hive_errf(err, HIVE_ERR_INVAL, "key path too long");
    int fd = hive_open_new_private(tmp);
    if (fd < 0) return hive_errf(err, HIVE_ERR_IO, "create %s: %s", tmp, strerror(errno));
    int ok = write_all(fd, hex, 2 * HIVE_KEY_BYTES + 1) == 0 && hive_fsync(fd) == 0;
    int saved = errno;
    sodium_memzero(hex, sizeof hex);
    if (close(fd) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp);
        return hive_errf(err, HIVE_ERR_IO, "write %s: %s", tmp, strerror(saved));
    }
    int rc = HIVE_OK;
    if (overwrite) {
        if (hive_rename_replace(tmp, path) != 0)
            rc = hive_errf(err, HIVE_ERR_IO, "rename to %s: %s", path, strerror(errno));
    } else if (hive_link_file(tmp, path) != 0) {
        rc = errno == EEXIST ? hive_errf(err, HIVE_ERR_INVAL, "%s already exists (not overwriting it)", path)
                             : hive_errf(err, HIVE_ERR_IO, "create %s: %s", path, strerror(errno));
    }
    unlink(tmp); /* after rename it is already gone; harmless */
    return rc;
}

int hive_key_save(const char *path, const uint8_t key[HIVE_KEY_BYTES], char *err) {
    return hive_key_write(path, key, 0, err);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int hive_key_load(const char *path, uint8_t key[HIVE_KEY_BYTES], char *err) {
    int fd = hive_open_read(path);
    if (fd < 0) {
        if (errno == ENOENT)
            return hive_errf(err, HIVE_ERR_IO, "no cluster key at %s (create one with 'hive keygen')", path);
        return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));
    }
    if (hive_fd_readable_by_others(fd))
        hive_log(HIVE_LOG_WARN, "cluster key %s is readable by other users (chmod 600 it)", path);
    /* 64 hex + "\r\n" fits; one byte more proves the file is too long. */
    char text[2 * HIVE_KEY_BYTES + 3];
    size_t len = 0;
    for (;;) {
        int r = (int)read(fd, text + len, (unsigned)(sizeof text - len));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            return hive_errf(err, HIVE_ERR_IO, "read %s: %s", path, strerror(saved));
        }
        if (r == 0 || (len += (size_t)r) == sizeof text) break;
    }
    close(fd);
    int rc = HIVE_OK;
    size_t n_hex = 0;
    while (n_hex < len && hexval(text[n_hex]) >= 0) n_hex++;
    const char *tail = text + n_hex;
    size_t n_tail = len - n_hex;
    int tail_ok = n_tail == 0 || (n_tail == 1 && tail[0] == '\n') || (n_tail == 2 && !memcmp(tail, "\r\n", 2));
    int at_line_end = n_hex == len || tail[0] == '\n' || tail[0] == '\r';
    if (n_hex > 2 * HIVE_KEY_BYTES) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: more than %d hex characters: not a cluster key", path,
                       2 * HIVE_KEY_BYTES);
    } else if (!at_line_end) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: not a cluster key (non-hex character at offset %zu)", path, n_hex);
    } else if (n_hex < 2 * HIVE_KEY_BYTES) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: a cluster key is exactly %d hex characters, found %zu", path,
                       2 * HIVE_KEY_BYTES, n_hex);
    } else if (!tail_ok) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: unexpected data after the 64 hex characters", path);
    } else {
        for (int i = 0; i < HIVE_KEY_BYTES; i++)
            key[i] = (uint8_t)(hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]));
    }
    sodium_memzero(text, sizeof text);
    return rc;
}

int hive_key_load_default(uint8_t key[HIVE_KEY_BYTES], char *err) {
    char path[4096];
    if (hive_key_default_path(path, sizeof path))
        return hive_errf(err, HIVE_ERR_INVAL, "no cluster key path: set HIVE_KEY_FILE or HOME");
    return hive_key_load(path, key, err);
}
