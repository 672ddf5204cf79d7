/* weights.c - weight transfer between the head and a stage, and the stage
 * files a node keeps in its cache.
 *
 * The head streams a stage's tensors (META, then per tensor TENSOR, CHUNK...,
 * TENSOR_END with the BLAKE2b-256 of its bytes, then WEIGHTS_END). The node
 * appends the chunks to a temporary blob file while hashing them, checks each
 * hash, and at the end writes a stage file (GGUF writer: original KVs + the
 * stage's tensors + hive.stage.* keys) next to its cache, then renames it in
 * place. Memory stays at one chunk: the blob is mapped only to write the
 * final file. A cached stage file is trusted only after stage_file_verify
 * re-hashed every tensor.
 *
 * The cache has a size cap with least-recently-used eviction: a verified
 * (reused) stage file gets its mtime set to now, and after a new file is
 * written the oldest others go until the total is under the cap
 * (--cache-max, else $HIVE_CACHE_MAX, else 4x the largest stage file
 * present). Never evicted: the file just written, and files this process
 * maps (stages of live sessions, found in /proc/self/maps). */
#include "cluster_internal.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hive/model.h"
#include "hive/os.h"
#include "hive/tensor.h"

#define MAX_STAGE_TENSORS 100000u
#define DIR_CAP 2048 /* cache directory paths longer than this are refused */

/* ====================================================================
 * Stage files
 * ==================================================================== */

void stage_cache_path(const char *cache_dir, const uint8_t model[HIVE_HASH_BYTES], int first, int last,
                      char *buf, size_t cap) {
    char hex[2 * HIVE_HASH_BYTES + 1];
    hive_hash_hex(model, hex);
    snprintf(buf, cap, "%s/stages/%s-%d-%d.gguf", cache_dir, hex, first, last);
}

/* Files this process has hashed and found intact, by identity: a file
 * that has not changed since (same device, inode, size and mtime) need not
 * be hashed again, which makes a redeploy from the cache (a recovery)
 * quick. Any write to the file changes its mtime and forces a new check. */
#define VERIFIED_CAP 32
static struct verified_file {
    char path[2304];
    uint8_t model[HIVE_HASH_BYTES];
    int first, last;
    struct hive_file_id id;
} g_verified[VERIFIED_CAP];
static int g_n_verified, g_verified_next;
static pthread_mutex_t g_verified_mu = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const struct verified_file *v, const struct hive_file_id *st) {
    return v->id.dev == st->dev && v->id.ino == st->ino && v->id.size == st->size && v->id.mtime_ns == st->mtime_ns;
}

static int verified_before(const char *path, const uint8_t model[HIVE_HASH_BYTES], int first, int last,
                           const struct hive_file_id *st) {
    pthread_mutex_lock(&g_verified_mu);
    int hit = 0;
    for (int i = 0; i < g_n_verified && !hit; i++) {
        const struct verified_file *v = &g_verified[i];
        hit = !strcmp(v->path, path) && !memcmp(v->model, model, HIVE_HASH_BYTES) && v->first == first &&
              v->last == last && same_file(v, st);
    }
    pthread_mutex_unlock(&g_verified_mu);
    return hit;
}

static void remember_verified_file(const char *path, const uint8_t model[HIVE_HASH_BYTES], int first, int last) {
    struct hive_file_id st;
    if (hive_file_id(path, &st) != 0 || strlen(path) >= sizeof g_verified[0].path) return;
    pthread_mutex_lock(&g_verified_mu);
    int slot = -1;
    for (int i = 0; i < g_n_verified; i++)
        if (!strcmp(g_verified[i].path, path)) slot = i;
    if (slot < 0) {
        slot = g_n_verified < VERIFIED_CAP ? g_n_verified++ : g_verified_next;
        g_verified_next = (g_verified_next + 1) % VERIFIED_CAP;
    }
    struct verified_file *v = &g_verified[slot];
    snprintf(v->path, sizeof v->path, "%s", path);
    memcpy(v->model, model, HIVE_HASH_BYTES);
    v->first = first;
    v->last = last;
    v->id = st;
    pthread_mutex_unlock(&g_verified_mu);
}

int stage_file_verify(const char *path, const uint8_t model[HIVE_HASH_BYTES], int first, int last, char *err) {
    struct hive_file_id st;
    if (hive_file_id(path, &st) != 0) return hive_errf(err, HIVE_ERR_IO, "%s: not cached", path);
    if (verified_before(path, model, first, last, &st)) {
        hive_touch(path); /* used now: last in line for eviction */
        remember_verified_file(path, model, first, last); /* with the new mtime */
        return HIVE_OK;
    }
    hive_gguf *g = NULL;
    int rc = hive_gguf_open(&g, path, err);
    if (rc) return rc;
    char want[2 * HIVE_HASH_BYTES + 1], have[2 * HIVE_HASH_BYTES + 2] = "";
    hive_hash_hex(model, want);
    uint32_t f = 0, l = 0;
    int elem = -1;
    const void *hashes = NULL;
    uint64_t n_hashes = 0;
    int64_t n_t = hive_gguf_n_tensors(g);
    if (hive_gguf_get_cstr(g, "hive.stage.model", have, sizeof have) || strcmp(have, want) ||
        hive_gguf_get_u32(g, "hive.stage.first", &f) || hive_gguf_get_u32(g, "hive.stage.last", &l) ||
        (int)f != first || (int)l != last ||
        hive_gguf_get_array(g, "hive.stage.hashes", &elem, &hashes, &n_hashes) || elem != HIVE_GGUF_UINT8 ||
        n_hashes != (uint64_t)n_t * HIVE_HASH_BYTES) {
        hive_gguf_close(g);
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: not the stage file asked for", path);
    }
    for (int64_t i = 0; i < n_t; i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        uint8_t h[HIVE_HASH_BYTES];
        crypto_generichash(h, sizeof h, t->data, t->n_bytes, NULL, 0);
        if (memcmp(h, (const uint8_t *)hashes + i * HIVE_HASH_BYTES, HIVE_HASH_BYTES) != 0) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: tensor %.*s does not match its hash", path,
                           (int)(t->name.len < 100 ? t->name.len : 100), t->name.ptr);
            break;
        }
    }
    hive_gguf_close(g);
    if (!rc) {
        hive_touch(path); /* used now: last in line for eviction */
        remember_verified_file(path, model, first, last);
    }
    return rc;
}

/* ====================================================================
 * Cache size cap and listing
 * ==================================================================== */

/* "<64 hex>-<first>-<last>.gguf" -> fields; 0 when the name has that shape. */
static int parse_stage_name(const char *name, char hex[2 * HIVE_HASH_BYTES + 1], int *first, int *last) {
    size_t n = strlen(name);
    if (n < 2 * HIVE_HASH_BYTES + 9 || strcmp(name + n - 5, ".gguf")) return -1;
    for (int i = 0; i < 2 * HIVE_HASH_BYTES; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return -1;
    if (name[2 * HIVE_HASH_BYTES] != '-') return -1;
    char tail[64];
    int used = 0;
    snprintf(tail, sizeof tail, "%s", name + 2 * HIVE_HASH_BYTES + 1);
    if (sscanf(tail, "%d-%d.gguf%n", first, last, &used) != 2 || (size_t)used != strlen(tail) || *first < 0 ||
        *last <= *first)
        return -1;
    memcpy(hex, name, 2 * HIVE_HASH_BYTES);
    hex[2 * HIVE_HASH_BYTES] = '\0';
    return 0;
}

static int cmp_entry_age(const void *a, const void *b) {
    const struct hive_cache_entry *x = a, *y = b;
    if (x->last_used_ns != y->last_used_ns) return x->last_used_ns < y->last_used_ns ? -1 : 1;
    return strcmp(x->name, y->name);
}

int hive_cache_list(const char *cache_dir, struct hive_cache_entry **out, int *n_out, char *err) {
    *out = NULL;
    *n_out = 0;
    if (strlen(cache_dir) >= DIR_CAP) return hive_errf(err, HIVE_ERR_INVAL, "cache: path too long");
    char dir[DIR_CAP + 16];
    snprintf(dir, sizeof dir, "%s/stages", cache_dir);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return HIVE_OK; /* nothing cached yet */
        return hive_errf(err, HIVE_ERR_IO, "cache: %s: %s", dir, strerror(errno));
    }
    struct hive_cache_entry *v = NULL;
    int n = 0, cap = 0, rc = HIVE_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct hive_cache_entry e;
        memset(&e, 0, sizeof e);
        size_t name_len = strlen(de->d_name);
        if (name_len >= sizeof e.name || parse_stage_name(de->d_name, e.model_hex, &e.first, &e.last) != 0)
            continue;
        memcpy(e.name, de->d_name, name_len + 1);
        char path[DIR_CAP + 16 + sizeof e.name + 1];
        snprintf(path, sizeof path, "%s/%s", dir, e.name);
        struct hive_file_id st;
        if (hive_file_id(path, &st) != 0 || !st.is_reg) continue;
        e.bytes = st.size;
        e.last_used_ns = st.mtime_ns;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            void *p = realloc(v, (size_t)nc * sizeof *v);
            if (!p) {
                rc = hive_errf(err, HIVE_ERR_NOMEM, "cache: out of memory");
                break;
            }
            v = p;
            cap = nc;
        }
        v[n++] = e;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_entry_age);
    *out = v;
    *n_out = n;
    return HIVE_OK;
}

uint64_t hive_cache_default_max(const char *cache_dir) {
    const char *env = getenv("HIVE_CACHE_MAX");
    uint64_t v = 0;
    if (env && *env && hive_parse_size(env, &v) == HIVE_OK && v > 0) return v;
    struct hive_cache_entry *e = NULL;
    int n = 0;
    if (hive_cache_list(cache_dir, &e, &n, NULL) != HIVE_OK) return 0;
    uint64_t largest = 0;
    for (int i = 0; i < n; i++)
        if (e[i].bytes > largest) largest = e[i].bytes;
    free(e);
    return largest > UINT64_MAX / 4 ? UINT64_MAX : 4 * largest;
}

/* /proc/self/maps (malloc'd, NUL-terminated), or NULL where there is none. */
static char *read_own_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1) break;
        char *p = realloc(buf, cap * 2);
        if (!p) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = p;
        cap *= 2;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

/* Whether this process maps a file named name (a live session's stage). */
static int mapped(const char *maps, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = maps; p && (p = strstr(p, name)); p += nl)
        if (p > maps && p[-1] == '/' && (p[nl] == '\n' || p[nl] == '\0')) return 1;
    return 0;
}

int hive_cache_trim(const char *cache_dir, uint64_t max_bytes, const char *keep, int *n_evicted, uint64_t *freed,
                    char *err) {
    if (n_evicted) *n_evicted = 0;
    if (freed) *freed = 0;
    if (max_bytes == 0) max_bytes = hive_cache_default_max(cache_dir);
    struct hive_cache_entry *e = NULL;
    int n = 0;
    int rc = hive_cache_list(cache_dir, &e, &n, err);
    if (rc) return rc;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += e[i].bytes;
    const char *keep_base = keep ? strrchr(keep, '/') : NULL;
    keep_base = keep_base ? keep_base + 1 : keep;
    char *maps = total > max_bytes ? read_own_maps() : NULL;
    for (int i = 0; i < n && total > max_bytes; i++) { /* oldest first */
        if (keep_base && !strcmp(e[i].name, keep_base)) continue;
        if (maps && mapped(maps, e[i].name)) continue; /* a live session of this node holds it */
        char path[DIR_CAP + 16 + sizeof e[i].name + 1];
        snprintf(path, sizeof path, "%s/stages/%s", cache_dir, e[i].name);
        if (unlink(path) != 0) {
            if (errno == ENOENT) total -= e[i].bytes; /* another node sharing the directory took it */
            continue;
        }
        char size[32];
        hive_log(HIVE_LOG_INFO, "cache: evicted %s (%s) to stay under the cap", e[i].name,
                 hive_format_size(e[i].bytes, size, sizeof size));
        total -= e[i].bytes;
        if (n_evicted) (*n_evicted)++;
        if (freed) *freed += e[i].bytes;
    }
    free(maps);
    free(e);
    return HIVE_OK;
}

int hive_cache_clear(const char *cache_dir, int *n_removed, uint64_t *freed, char *err) {
    if (n_removed) *n_removed = 0;
    if (freed) *freed = 0;
    if (strlen(cache_dir) >= DIR_CAP) return hive_errf(err, HIVE_ERR_INVAL, "cache: path too long");
    char dir[DIR_CAP + 16];
    snprintf(dir, sizeof dir, "%s/stages", cache_dir);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? HIVE_OK : hive_errf(err, HIVE_ERR_IO, "cache: %s: %s", dir, strerror(errno));
    int rc = HIVE_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        char hex[2 * HIVE_HASH_BYTES + 1];
        int f, l;
        /* Stage files, and what a crashed transfer left behind. */
        int ours = parse_stage_name(de->d_name, hex, &f, &l) == 0 || !strncmp(de->d_name, "incoming-", 9);
        if (!ours || strlen(de->d_name) > 255) continue;
        char path[DIR_CAP + 16 + 256 + 1];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct hive_file_id st;
        if (!hive_is_regular_nofollow(path) || hive_file_id(path, &st) != 0) continue;
        if (unlink(path) != 0) {
            rc = hive_errf(err, HIVE_ERR_IO, "cache: remove %s: %s", path, strerror(errno));
            continue;
        }
        if (n_removed) (*n_removed)++;
        if (freed) *freed += st.size;
    }
    closedir(d);
    return rc;
}

/* ====================================================================
 * Receiving end
 * ==================================================================== */

struct rx_tensor {
    char name[PROTO_TENSOR_NAME_CAP];
    int type, n_dims;
    int64_t ne[4];
    uint64_t n_bytes, offset; /* offset in the blob */
    uint8_t hash[HIVE_HASH_BYTES];
};

struct weights_rx {
    char cache_dir[DIR_CAP];
    uint8_t model[HIVE_HASH_BYTES];
    int first, last;
    uint8_t *meta;
    size_t meta_len;
    uint32_t n_tensors, n_done;
    struct rx_tensor *t;
    uint64_t total, received;
    int cur;           /* tensor being received, -1 between tensors */
    uint64_t cur_have;
    crypto_generichash_state hs;
    int blob_fd;
    char blob_path[DIR_CAP + 64];
    uint64_t cache_max; /* 0: hive_cache_default_max() */
};

void weights_rx_set_cache_max(struct weights_rx *rx, uint64_t max_bytes) {
    if (rx) rx->cache_max = max_bytes;
}

void weights_rx_free(struct weights_rx *rx) {
    if (!rx) return;
    if (rx->blob_fd >= 0) close(rx->blob_fd);
    if (rx->blob_path[0]) unlink(rx->blob_path);
    free(rx->meta);
    free(rx->t);
    free(rx);
}

int weights_rx_begin(struct weights_rx **out, const char *cache_dir, const uint8_t model[HIVE_HASH_BYTES],
                     int first, int last, const uint8_t *meta, size_t meta_len, uint32_t n_tensors,
                     uint64_t total_bytes, uint64_t max_bytes, char *err) {
    *out = NULL;
    if (n_tensors < 1 || n_tensors > MAX_STAGE_TENSORS)
        return hive_errf(err, HIVE_ERR_PROTO, "weights: bad tensor count %u", n_tensors);
    if (total_bytes < 1 || total_bytes > max_bytes) {
        char a[32], b[32];
        return hive_errf(err, HIVE_ERR_INVAL, "weights: stage of %s exceeds this node's budget of %s",
                         hive_format_size(total_bytes, a, sizeof a), hive_format_size(max_bytes, b, sizeof b));
    }
    if (strlen(cache_dir) >= DIR_CAP) return hive_errf(err, HIVE_ERR_INVAL, "weights: cache path too long");
    struct weights_rx *rx = hive_calloc(1, sizeof *rx);
    if (!rx) return hive_errf(err, HIVE_ERR_NOMEM, "weights: out of memory");
    rx->blob_fd = -1;
    snprintf(rx->cache_dir, sizeof rx->cache_dir, "%s", cache_dir);
    memcpy(rx->model, model, HIVE_HASH_BYTES);
    rx->first = first;
    rx->last = last;
    rx->n_tensors = n_tensors;
    rx->total = total_bytes;
    rx->cur = -1;
    rx->meta = malloc(meta_len ? meta_len : 1);
    rx->t = hive_calloc(n_tensors, sizeof *rx->t);
    if (!rx->meta || !rx->t) {
        weights_rx_free(rx);
        return hive_errf(err, HIVE_ERR_NOMEM, "weights: out of memory");
    }
    memcpy(rx->meta, meta, meta_len);
    rx->meta_len = meta_len;
    char dir[DIR_CAP + 16];
    snprintf(dir, sizeof dir, "%s/stages", rx->cache_dir);
    int rc = hive_mkdirs(dir, err);
    if (rc) {
        weights_rx_free(rx);
        return rc;
    }
    snprintf(rx->blob_path, sizeof rx->blob_path, "%s/incoming-XXXXXX", dir);
    rx->blob_fd = hive_mkstemp(rx->blob_path);
    if (rx->blob_fd < 0) {
        rx->blob_path[0] = '\0';
        rc = hive_errf(err, HIVE_ERR_IO, "weights: create a file in %s: %s", dir, strerror(errno));
        weights_rx_free(rx);
        return rc;
    }
    *out = rx;
    return HIVE_OK;
}

/* Bytes of a tensor of this type and shape, 0 when invalid or overflowing. */
static uint64_t tensor_bytes(int type, const uint64_t ne[4]) {
    if (type < 0 || type >= HIVE_TYPE_COUNT || !hive_type_is_weight(type)) return 0;
    uint64_t row = hive_type_row_bytes(type, (int64_t)ne[0]);
    if (row == 0) return 0;
    uint64_t n = row;
    for (int i = 1; i < 4; i++) {
        if (ne[i] && n > UINT64_MAX / ne[i]) return 0;
        n *= ne[i];
    }
    return n;
}

int weights_rx_tensor(struct weights_rx *rx, const struct proto_tensor *t, char *err) {
    if (rx->cur >= 0) return hive_errf(err, HIVE_ERR_PROTO, "weights: tensor header inside a tensor");
    if (rx->n_done >= rx->n_tensors) return hive_errf(err, HIVE_ERR_PROTO, "weights: more tensors than announced");
    uint64_t n = tensor_bytes((int)t->type, t->ne);
    if (n == 0 || n != t->n_bytes)
        return hive_errf(err, HIVE_ERR_PROTO, "weights: tensor %s: size %llu does not match its type and shape",
                         t->name, (unsigned long long)t->n_bytes);
    uint64_t offset = rx->n_done ? rx->t[rx->n_done - 1].offset + rx->t[rx->n_done - 1].n_bytes : 0;
    if (n > rx->total - offset) return hive_errf(err, HIVE_ERR_PROTO, "weights: tensors exceed the announced size");
    struct rx_tensor *x = &rx->t[rx->n_done];
    snprintf(x->name, sizeof x->name, "%s", t->name);
    x->type = (int)t->type;
    x->n_dims = (int)t->n_dims;
    for (int i = 0; i < 4; i++) x->ne[i] = (int64_t)t->ne[i];
    x->n_bytes = n;
    x->offset = offset;
    rx->cur = (int)rx->n_done;
    rx->cur_have = 0;
    crypto_generichash_init(&rx->hs, NULL, 0, HIVE_HASH_BYTES);
    return HIVE_OK;
}

int weights_rx_chunk(struct weights_rx *rx, const uint8_t *p, size_t n, char *err) {
    if (rx->cur < 0) return hive_errf(err, HIVE_ERR_PROTO, "weights: chunk outside a tensor");
    struct rx_tensor *x = &rx->t[rx->cur];
    if (n > x->n_bytes - rx->cur_have) return hive_errf(err, HIVE_ERR_PROTO, "weights: chunk overruns %s", x->name);
    size_t done = 0;
    while (done < n) {
        int64_t w = hive_pwrite(rx->blob_fd, p + done, n - done, x->offset + rx->cur_have + done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return hive_errf(err, HIVE_ERR_IO, "weights: write: %s", w < 0 ? strerror(errno) : "disk full");
        done += (size_t)w;
    }
    crypto_generichash_update(&rx->hs, p, n);
    rx->cur_have += n;
    rx->received += n;
    return HIVE_OK;
}

int weights_rx_tensor_end(struct weights_rx *rx, const uint8_t *hash, size_t hash_len, char *err) {
    if (rx->cur < 0 || hash_len != HIVE_HASH_BYTES) return hive_errf(err, HIVE_ERR_PROTO, "weights: bad tensor end");
    struct rx_tensor *x = &rx->t[rx->cur];
    if (rx->cur_have != x->n_bytes)
        return hive_errf(err, HIVE_ERR_PROTO, "weights: tensor %s ended after %llu of %llu bytes", x->name,
                         (unsigned long long)rx->cur_have, (unsigned long long)x->n_bytes);
    crypto_generichash_final(&rx->hs, x->hash, HIVE_HASH_BYTES);
    if (sodium_memcmp(x->hash, hash, HIVE_HASH_BYTES) != 0)
        return hive_errf(err, HIVE_ERR_PROTO, "weights: tensor %s arrived corrupted (hash mismatch)", x->name);
    rx->cur = -1;
    rx->n_done++;
    return HIVE_OK;
}

int weights_rx_finish(struct weights_rx *rx, char *path_out, size_t cap, char *err) {
    if (rx->cur >= 0 || rx->n_done != rx->n_tensors || rx->received != rx->total)
        return hive_errf(err, HIVE_ERR_PROTO, "weights: transfer ended early (%u of %u tensors)", rx->n_done,
                         rx->n_tensors);
    hive_gguf *meta = NULL;
    int rc = hive_gguf_open_buffer(&meta, "stage metadata", rx->meta, rx->meta_len, err);
    if (rc) return rc;
    const void *blob = NULL;
    uint64_t blob_size = 0;
    rc = hive_map_file(rx->blob_path, &blob, &blob_size, err);
    if (!rc && blob_size < rx->total) rc = hive_errf(err, HIVE_ERR_IO, "weights: %s is short", rx->blob_path);
    if (rc) {
        hive_unmap_file(blob, blob_size);
        hive_gguf_close(meta);
        return rc;
    }
    uint8_t *hashes = hive_malloc_array(rx->n_tensors, HIVE_HASH_BYTES);
    hive_gguf_writer *w = hive_gguf_writer_new();
    if (!hashes || !w) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "weights: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < hive_gguf_n_kv(meta); i++) {
        struct hive_str k = hive_gguf_kv_key(meta, i);
        if (k.len >= 11 && !memcmp(k.ptr, "hive.stage.", 11)) continue;
        hive_gguf_writer_copy_kv(w, meta, i);
    }
    char hex[2 * HIVE_HASH_BYTES + 1];
    hive_hash_hex(rx->model, hex);
    hive_gguf_writer_set_str(w, "hive.stage.model", hex);
    hive_gguf_writer_set_u32(w, "hive.stage.first", (uint32_t)rx->first);
    hive_gguf_writer_set_u32(w, "hive.stage.last", (uint32_t)rx->last);
    for (uint32_t i = 0; i < rx->n_tensors; i++) {
        const struct rx_tensor *x = &rx->t[i];
        memcpy(hashes + (size_t)i * HIVE_HASH_BYTES, x->hash, HIVE_HASH_BYTES);
        hive_gguf_writer_add_tensor(w, x->name, x->type, x->n_dims, x->ne, (const uint8_t *)blob + x->offset,
                                    x->n_bytes);
    }
    hive_gguf_writer_set_array(w, "hive.stage.hashes", HIVE_GGUF_UINT8, hashes,
                               (uint64_t)rx->n_tensors * HIVE_HASH_BYTES);
    /* Written under a unique name and renamed, so two writers never mix. */
    char final_path[DIR_CAP + 256], tmp[DIR_CAP + 128];
    stage_cache_path(rx->cache_dir, rx->model, rx->first, rx->last, final_path, sizeof final_path);
    snprintf(tmp, sizeof tmp, "%s.part", rx->blob_path);
    rc = hive_gguf_writer_write(w, tmp, err);
    if (!rc && hive_rename_replace(tmp, final_path) != 0) {
        rc = hive_errf(err, HIVE_ERR_IO, "weights: rename to %s: %s", final_path, strerror(errno));
        unlink(tmp);
    }
    if (!rc) {
        snprintf(path_out, cap, "%s", final_path);
        char e2[HIVE_ERR_LEN];
        if (hive_cache_trim(rx->cache_dir, rx->cache_max, final_path, NULL, NULL, e2) != HIVE_OK)
            hive_log(HIVE_LOG_WARN, "cache: %s", e2);
    }
out:
    hive_gguf_writer_free(w);
    free(hashes);
    hive_unmap_file(blob, blob_size);
    hive_gguf_close(meta);
    return rc;
}

/* ====================================================================
 * Sending end
 * ==================================================================== */

int weights_meta_image(const hive_gguf *g, uint8_t **out, size_t *len, char *err) {
    *out = NULL;
    *len = 0;
    char tmp[512];
    hive_temp_dir(tmp, sizeof tmp - 32);
    strcat(tmp, "/hive-meta-XXXXXX");
    int fd = hive_mkstemp(tmp);
    if (fd < 0) return hive_errf(err, HIVE_ERR_IO, "weights: temp file: %s", strerror(errno));
    close(fd);
    hive_gguf_writer *w = hive_gguf_writer_new();
    if (!w) {
        unlink(tmp);
        return hive_errf(err, HIVE_ERR_NOMEM, "weights: out of memory");
    }
    for (int64_t i = 0; i < hive_gguf_n_kv(g); i++) hive_gguf_writer_copy_kv(w, g, i);
    int rc = hive_gguf_writer_write(w, tmp, err);
    hive_gguf_writer_free(w);
    if (!rc) {
        FILE *f = fopen(tmp, "rb");
        long n = -1;
        if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
        uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
        if (f && buf && fseek(f, 0, SEEK_SET) == 0 && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            *out = buf;
            *len = (size_t)n;
        } else {
            free(buf);
            rc = hive_errf(err, HIVE_ERR_IO, "weights: cannot read back the metadata image");
        }
        if (f) fclose(f);
    }
    unlink(tmp);
    return rc;
}

struct tensor_list {
    const struct hive_gguf_tensor **t;
    int n, cap;
    int oom;
};

static void collect_tensor(void *arg, const struct hive_gguf_tensor *t) {
    struct tensor_list *l = arg;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->t, (size_t)cap * sizeof *l->t);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->t = p;
        l->cap = cap;
    }
    l->t[l->n++] = t;
}

int weights_send(hive_link *l, const hive_gguf *g, const uint8_t *meta, size_t meta_len, int first, int last,
                 weights_progress_fn progress, void *arg, uint64_t *sent, int timeout_ms, char *err) {
    *sent = 0;
    struct tensor_list list = {0};
    int rc = hive_model_stage_tensors(g, first, last, collect_tensor, &list, err);
    if (!rc && list.oom) rc = hive_errf(err, HIVE_ERR_NOMEM, "weights: out of memory");
    if (!rc && list.n == 0) rc = hive_errf(err, HIVE_ERR_FORMAT, "weights: stage [%d, %d) has no tensors", first, last);
    if (rc) {
        free(list.t);
        return rc;
    }
    uint64_t total = 0;
    for (int i = 0; i < list.n; i++) total += list.t[i]->n_bytes;
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    hive_wbuf_u32(&w, (uint32_t)list.n);
    hive_wbuf_u64(&w, total);
    rc = w.bad ? hive_errf(err, HIVE_ERR_NOMEM, "out of memory")
               : hive_link_send(l, MSG_META, w.p, w.len, meta, meta_len, err);
    uint64_t done = 0;
    for (int i = 0; !rc && i < list.n; i++) {
        const struct hive_gguf_tensor *t = list.t[i];
        struct proto_tensor pt = {0};
        snprintf(pt.name, sizeof pt.name, "%.*s", (int)(t->name.len < 127 ? t->name.len : 127), t->name.ptr);
        pt.type = (uint32_t)t->type;
        pt.n_dims = (uint32_t)t->n_dims;
        for (int d = 0; d < 4; d++) pt.ne[d] = (uint64_t)t->ne[d];
        pt.n_bytes = t->n_bytes;
        w.len = 0;
        proto_tensor_encode(&w, &pt);
        rc = proto_send(l, MSG_TENSOR, &w, err);
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, NULL, 0, HIVE_HASH_BYTES);
        for (uint64_t off = 0; !rc && off < t->n_bytes; off += HIVE_CHUNK_BYTES) {
            uint64_t n = t->n_bytes - off < HIVE_CHUNK_BYTES ? t->n_bytes - off : HIVE_CHUNK_BYTES;
            const uint8_t *p = (const uint8_t *)t->data + off;
            crypto_generichash_update(&hs, p, n);
            rc = hive_link_send(l, MSG_CHUNK, NULL, 0, p, (size_t)n, err);
            done += n;
            if (progress) progress(arg, done, total);
        }
        uint8_t h[HIVE_HASH_BYTES];
        crypto_generichash_final(&hs, h, sizeof h);
        if (!rc) rc = hive_link_send(l, MSG_TENSOR_END, h, sizeof h, NULL, 0, err);
    }
    hive_wbuf_free(&w);
    free(list.t);
    if (!rc) rc = hive_link_send(l, MSG_WEIGHTS_END, NULL, 0, NULL, 0, err);
    if (rc) return rc;
    uint8_t type;
    const uint8_t *p;
    size_t len;
    rc = proto_recv_reply(l, &type, &p, &len, timeout_ms, err);
    if (rc) return rc;
    if (type == MSG_ERROR) {
        struct hive_rbuf r;
        char msg[PROTO_MSG_CAP];
        hive_rbuf_init(&r, p, len);
        hive_rbuf_str(&r, msg, sizeof msg);
        return hive_errf(err, HIVE_ERR_IO, "%s", r.bad ? "node refused the weights" : msg);
    }
    if (type != MSG_OK) return hive_errf(err, HIVE_ERR_PROTO, "weights: unexpected reply %d", type);
    *sent = done;
    return HIVE_OK;
}
