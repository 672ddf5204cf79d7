/* hash.c - BLAKE2b-256 content hashes of model files, remembered per
 * (absolute path, size, mtime) under <cache>/hashes/ so that a 600 MB model
 * is read once, not on every run. */
#include "hive/cluster.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive/os.h"

void hive_hash_hex(const uint8_t h[HIVE_HASH_BYTES], char out[2 * HIVE_HASH_BYTES + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HIVE_HASH_BYTES; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * HIVE_HASH_BYTES] = '\0';
}

static int parse_hex(const char *s, uint8_t h[HIVE_HASH_BYTES]) {
    for (int i = 0; i < 2 * HIVE_HASH_BYTES; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return -1;
        if (i & 1) h[i / 2] = (uint8_t)(h[i / 2] | v);
        else h[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

static int hash_fd(int fd, const char *path, uint8_t out[HIVE_HASH_BYTES], char *err) {
    enum { BUF = 1 << 22 };
    uint8_t *buf = malloc(BUF);
    if (!buf) return hive_errf(err, HIVE_ERR_NOMEM, "hash: out of memory");
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, HIVE_HASH_BYTES);
    for (;;) {
        int n = (int)read(fd, buf, BUF);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            free(buf);
            return hive_errf(err, HIVE_ERR_IO, "hash: read %s: %s", path, strerror(errno));
        }
        if (n == 0) break;
        crypto_generichash_update(&st, buf, (unsigned long long)n);
    }
    crypto_generichash_final(&st, out, HIVE_HASH_BYTES);
    free(buf);
    return HIVE_OK;
}

int hive_file_hash(const char *path, const char *cache_dir, uint8_t out[HIVE_HASH_BYTES], char *err) {
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to initialise");
    int fd = hive_open_read(path);
    if (fd < 0) return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));
    struct hive_file_id st;
    if (hive_fd_file_id(fd, &st) != 0) {
        close(fd);
        return hive_errf(err, HIVE_ERR_IO, "stat %s: %s", path, strerror(errno));
    }
    char memo[4096] = "";
    if (cache_dir) {
        char abs[4096], id[160], idhex[2 * HIVE_HASH_BYTES + 1];
        if (hive_realpath(path, abs, sizeof abs) != 0) snprintf(abs, sizeof abs, "%s", path);
        int n = snprintf(id, sizeof id, "|%lld|%lld.%09lld|", (long long)st.size,
                         (long long)(st.mtime_ns / 1000000000), (long long)(st.mtime_ns % 1000000000));
        uint8_t key[HIVE_HASH_BYTES];
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, NULL, 0, HIVE_HASH_BYTES);
        crypto_generichash_update(&hs, (const uint8_t *)abs, strlen(abs));
        crypto_generichash_update(&hs, (const uint8_t *)id, (unsigned long long)n);
        crypto_generichash_final(&hs, key, HIVE_HASH_BYTES);
        hive_hash_hex(key, idhex);
        snprintf(memo, sizeof memo, "%s/hashes/%s", cache_dir, idhex);
        FILE *f = fopen(memo, "r");
        if (f) {
            char line[2 * HIVE_HASH_BYTES + 2] = "";
            size_t got = fread(line, 1, 2 * HIVE_HASH_BYTES, f);
            fclose(f);
            if (got == 2 * HIVE_HASH_BYTES && parse_hex(line, out) == 0) {
                close(fd);
                return HIVE_OK;
            }
        }
    }
    int rc = hash_fd(fd, path, out, err);
    close(fd);
    if (rc || !memo[0]) return rc;
    /* Remember it; failures here only cost a rehash next time. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/hashes", cache_dir);
    if (hive_mkdirs(dir, NULL) == HIVE_OK) {
        char tmp[4200], hex[2 * HIVE_HASH_BYTES + 1];
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", memo, hive_os_pid());
        FILE *f = fopen(tmp, "w");
        if (f) {
            hive_hash_hex(out, hex);
            fprintf(f, "%s\n", hex);
            if (fclose(f) == 0 && hive_rename_replace(tmp, memo) == 0) return HIVE_OK;
            remove(tmp);
        }
    }
    return HIVE_OK;
}
