/* gguf_write.c - GGUF v3 writer.
 *
 * Metadata values are kept already encoded (the bytes that follow the type
 * tag in the file), so copying a key from a reader is a memcpy. Tensor data is
 * either referenced (written straight from the caller's buffer) or produced
 * chunk by chunk by a fill callback, so models larger than memory can be
 * written. The file is written to PATH.tmp and renamed over PATH at the end. */
#include "hive/gguf.h"
#include "hive/os.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_internal.h"
#include "hive/tensor.h"

/* Fill callbacks produce about this many bytes per call (at least one row). */
#define FILL_CHUNK_BYTES (8u << 20)

struct wkv {
    char *key;
    int type;        /* enum hive_gguf_vtype */
    uint8_t *value;  /* encoded value, see gguf_kv_raw() */
    uint64_t n_value;
};

struct wtensor {
    char *name;
    int type;
    int n_dims;
    int64_t ne[HIVE_GGUF_MAX_DIMS];
    uint64_t n_bytes;
    uint64_t offset;       /* assigned at write time */
    const void *data;      /* or NULL when fill is set */
    hive_gguf_fill_fn fill;
    void *fill_ctx;
};

struct hive_gguf_writer {
    struct wkv *kvs;
    int64_t n_kv, cap_kv;
    struct wtensor *tensors;
    int64_t n_tensors, cap_tensors;
    char first_error[HIVE_ERR_LEN]; /* message of the first failed set/add call */
};

hive_gguf_writer *hive_gguf_writer_new(void) { return calloc(1, sizeof(hive_gguf_writer)); }

void hive_gguf_writer_free(hive_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value);
    }
    for (int64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Records the first failure so that write() can report it. */
HIVE_PRINTF(3, 4) static int fail(hive_gguf_writer *w, int code, const char *fmt, ...) {
    if (!w->first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int grow(void **arr, int64_t *cap, int64_t want, size_t elem) {
    if (want <= *cap) return HIVE_OK;
    int64_t ncap = *cap ? *cap * 2 : 16;
    void *p = hive_malloc_array((size_t)ncap, elem);
    if (!p) return HIVE_ERR_NOMEM;
    if (*cap) memcpy(p, *arr, (size_t)*cap * elem);
    free(*arr);
    *arr = p;
    *cap = ncap;
    return HIVE_OK;
}

/* Takes ownership of value (n bytes, encoded) and stores it under key,
 * replacing an existing value of that key. */
static int put_kv(hive_gguf_writer *w, const char *key, int type, uint8_t *value, uint64_t n) {
    if (!key || !*key) {
        free(value);
        return fail(w, HIVE_ERR_INVAL, "gguf writer: empty metadata key");
    }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key)) continue;
        free(w->kvs[i].value);
        w->kvs[i].type = type;
        w->kvs[i].value = value;
        w->kvs[i].n_value = n;
        return HIVE_OK;
    }
    char *k = strdup(key);
    if (!k || grow((void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs)) {
        free(k);
        free(value);
        return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory for key '%s'", key);
    }
    w->kvs[w->n_kv++] = (struct wkv){k, type, value, n};
    return HIVE_OK;
}

/* Encodes one scalar of vtype from host memory, little-endian. */
static void encode_scalar(uint8_t *dst, int vtype, const void *v) {
    size_t n = hive_gguf_vtype_size(vtype);
    uint64_t bits = 0;
    switch (n) {
    case 1: { uint8_t x; memcpy(&x, v, 1); bits = x; break; }
    case 2: { uint16_t x; memcpy(&x, v, 2); bits = x; break; }
    case 4: { uint32_t x; memcpy(&x, v, 4); bits = x; break; }
    case 8: memcpy(&bits, v, 8); break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) dst[i] = (uint8_t)(bits >> (8 * i));
}

int hive_gguf_writer_set_scalar(hive_gguf_writer *w, const char *key, int vtype, const void *v) {
    size_t n = hive_gguf_vtype_size(vtype);
    if (!n) return fail(w, HIVE_ERR_INVAL, "gguf writer: key '%s': %s is not a scalar type", key ? key : "",
                        hive_gguf_vtype_name(vtype));
    uint8_t *value = malloc(n);
    if (!value) return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory");
    encode_scalar(value, vtype, v);
    if (vtype == HIVE_GGUF_BOOL) value[0] = value[0] != 0;
    return put_kv(w, key, vtype, value, n);
}

int hive_gguf_writer_set_u32(hive_gguf_writer *w, const char *key, uint32_t v) {
    return hive_gguf_writer_set_scalar(w, key, HIVE_GGUF_UINT32, &v);
}
int hive_gguf_writer_set_i32(hive_gguf_writer *w, const char *key, int32_t v) {
    return hive_gguf_writer_set_scalar(w, key, HIVE_GGUF_INT32, &v);
}
int hive_gguf_writer_set_u64(hive_gguf_writer *w, const char *key, uint64_t v) {
    return hive_gguf_writer_set_scalar(w, key, HIVE_GGUF_UINT64, &v);
}
int hive_gguf_writer_set_f32(hive_gguf_writer *w, const char *key, float v) {
    return hive_gguf_writer_set_scalar(w, key, HIVE_GGUF_FLOAT32, &v);
}
int hive_gguf_writer_set_bool(hive_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return hive_gguf_writer_set_scalar(w, key, HIVE_GGUF_BOOL, &b);
}

int hive_gguf_writer_set_str(hive_gguf_writer *w, const char *key, const char *v) {
    size_t len = strlen(v);
    uint8_t *value = malloc(8 + len);
    if (!value) return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory");
    gguf_put_u64(value, len);
    memcpy(value + 8, v, len);
    return put_kv(w, key, HIVE_GGUF_STRING, value, 8 + len);
}

int hive_gguf_writer_set_str_array(hive_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    uint64_t total = 12;
    for (uint64_t i = 0; i < n; i++) total += 8 + strlen(v[i]);
    uint8_t *value = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (!value) return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory for %" PRIu64 " strings", n);
    gguf_put_u32(value, HIVE_GGUF_STRING);
    gguf_put_u64(value + 4, n);
    uint8_t *p = value + 12;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]);
        gguf_put_u64(p, len);
        memcpy(p + 8, v[i], len);
        p += 8 + len;
    }
    return put_kv(w, key, HIVE_GGUF_ARRAY, value, total);
}

int hive_gguf_writer_set_array(hive_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n) {
    size_t esize = hive_gguf_vtype_size(elem_type);
    if (!esize) return fail(w, HIVE_ERR_INVAL, "gguf writer: key '%s': arrays of %s need set_str_array or are not supported",
                            key ? key : "", hive_gguf_vtype_name(elem_type));
    if (n > (SIZE_MAX - 12) / esize) return fail(w, HIVE_ERR_NOMEM, "gguf writer: array too large");
    uint8_t *value = malloc((size_t)(12 + n * esize));
    if (!value) return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory for an array of %" PRIu64, n);
    gguf_put_u32(value, (uint32_t)elem_type);
    gguf_put_u64(value + 4, n);
    const uint8_t *src = data;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t *dst = value + 12 + i * esize;
        if (elem_type == HIVE_GGUF_BOOL) dst[0] = src[i] != 0; /* bool arrays: one byte per element */
        else encode_scalar(dst, elem_type, src + i * esize);
    }
    return put_kv(w, key, HIVE_GGUF_ARRAY, value, 12 + n * esize);
}

int hive_gguf_writer_copy_kv(hive_gguf_writer *w, const hive_gguf *g, int64_t i) {
    const uint8_t *raw;
    uint64_t n;
    if (gguf_kv_raw(g, i, &raw, &n) != HIVE_OK) return fail(w, HIVE_ERR_INVAL, "gguf writer: no key %" PRId64 " to copy", i);
    struct hive_str k = hive_gguf_kv_key(g, i);
    char *key = malloc((size_t)k.len + 1);
    uint8_t *value = n <= SIZE_MAX ? malloc(n ? (size_t)n : 1) : NULL;
    if (!key || !value) {
        free(key);
        free(value);
        return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory copying a key");
    }
    memcpy(key, k.ptr, (size_t)k.len);
    key[k.len] = 0;
    if (n) memcpy(value, raw, (size_t)n);
    int rc = put_kv(w, key, hive_gguf_kv_type(g, i), value, n);
    free(key);
    return rc;
}

/* ---- tensors ---- */

static int add_tensor(hive_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                      uint64_t *n_bytes, struct wtensor *t) {
    if (!name || !*name) return fail(w, HIVE_ERR_INVAL, "gguf writer: empty tensor name");
    if (n_dims < 1 || n_dims > HIVE_GGUF_MAX_DIMS)
        return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': %d dimensions (must be 1..%d)", name, n_dims,
                    HIVE_GGUF_MAX_DIMS);
    if (type < 0 || type >= HIVE_TYPE_COUNT || hive_type_block_size(type) <= 0)
        return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': unknown type %d", name, type);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name)) return fail(w, HIVE_ERR_INVAL, "gguf writer: duplicate tensor '%s'", name);
    *t = (struct wtensor){.type = type, .n_dims = n_dims};
    int64_t n_elems = 1;
    for (int d = 0; d < HIVE_GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
        if (t->ne[d] < 0 || __builtin_mul_overflow(n_elems, t->ne[d], &n_elems))
            return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': bad shape", name);
    }
    int64_t block = hive_type_block_size(type);
    if (t->ne[0] % block)
        return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                    name, t->ne[0], hive_type_name(type), block);
    uint64_t size = 0;
    if (n_elems && __builtin_mul_overflow(hive_type_row_bytes(type, t->ne[0]), (uint64_t)(n_elems / t->ne[0]), &size))
        return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': size overflows", name);
    t->n_bytes = size;
    *n_bytes = size;
    t->name = strdup(name);
    if (!t->name || grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors)) {
        free(t->name);
        return fail(w, HIVE_ERR_NOMEM, "gguf writer: out of memory for tensor '%s'", name);
    }
    return HIVE_OK;
}

int hive_gguf_writer_add_tensor(hive_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                                const void *data, uint64_t n_bytes) {
    struct wtensor t;
    uint64_t want;
    int rc = add_tensor(w, name, type, n_dims, ne, &want, &t);
    if (rc) return rc;
    if (want != n_bytes || (!data && n_bytes)) {
        free(t.name);
        return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': %" PRIu64 " bytes given, its type and shape need %" PRIu64,
                    name, n_bytes, want);
    }
    t.data = data;
    w->tensors[w->n_tensors++] = t;
    return HIVE_OK;
}

int hive_gguf_writer_add_tensor_fill(hive_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                                     hive_gguf_fill_fn fill, void *ctx) {
    struct wtensor t;
    uint64_t want;
    if (!fill) return fail(w, HIVE_ERR_INVAL, "gguf writer: tensor '%s': no fill function", name ? name : "");
    int rc = add_tensor(w, name, type, n_dims, ne, &want, &t);
    if (rc) return rc;
    t.fill = fill;
    t.fill_ctx = ctx;
    w->tensors[w->n_tensors++] = t;
    return HIVE_OK;
}

/* ---- write ---- */

/* A growable byte buffer for the header (metadata + tensor infos). */
struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
};

static void buf_put(struct buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void buf_u32(struct buf *b, uint32_t v) {
    uint8_t e[4];
    gguf_put_u32(e, v);
    buf_put(b, e, 4);
}

static void buf_u64(struct buf *b, uint64_t v) {
    uint8_t e[8];
    gguf_put_u64(e, v);
    buf_put(b, e, 8);
}

static void buf_str(struct buf *b, const char *s) {
    size_t n = strlen(s);
    buf_u64(b, n);
    buf_put(b, s, n);
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (align - n % align) % align; }

/* general.alignment when the caller set it (u32, power of two), else 32. */
static int alignment_of(const hive_gguf_writer *w, uint64_t *align, char *err) {
    *align = HIVE_GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment")) continue;
        if (w->kvs[i].type != HIVE_GGUF_UINT32)
            return hive_errf(err, HIVE_ERR_INVAL, "gguf writer: general.alignment must be a uint32");
        uint32_t a = gguf_get_u32(w->kvs[i].value);
        if (a == 0 || (a & (a - 1)) || a > (1u << 30))
            return hive_errf(err, HIVE_ERR_INVAL, "gguf writer: general.alignment %" PRIu32 " is not a power of two", a);
        *align = a;
    }
    return HIVE_OK;
}

static int build_header(hive_gguf_writer *w, uint64_t align, struct buf *b, char *err) {
    buf_put(b, "GGUF", 4);
    buf_u32(b, 3);
    buf_u64(b, (uint64_t)w->n_tensors);
    buf_u64(b, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        buf_str(b, w->kvs[i].key);
        buf_u32(b, (uint32_t)w->kvs[i].type);
        buf_put(b, w->kvs[i].value, (size_t)w->kvs[i].n_value);
    }
    uint64_t offset = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        struct wtensor *t = &w->tensors[i];
        buf_str(b, t->name);
        buf_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) buf_u64(b, (uint64_t)t->ne[d]);
        buf_u32(b, (uint32_t)t->type);
        t->offset = offset;
        buf_u64(b, offset);
        offset += t->n_bytes + pad_to(t->n_bytes, align);
    }
    static const uint8_t zeros[64];
    uint64_t pad = pad_to(b->n, align);
    while (pad) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        buf_put(b, zeros, k);
        pad -= k;
    }
    if (b->oom) return hive_errf(err, HIVE_ERR_NOMEM, "gguf writer: out of memory for the header");
    return HIVE_OK;
}

static int write_bytes(FILE *f, const void *p, uint64_t n, const char *path, char *err) {
    const uint8_t *b = p;
    while (n) { /* fwrite's size_t may be narrower than a tensor on 32-bit hosts */
        size_t k = n > (1u << 30) ? (1u << 30) : (size_t)n;
        if (fwrite(b, 1, k, f) != k) return hive_errf(err, HIVE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        b += k;
        n -= k;
    }
    return HIVE_OK;
}

static int write_padding(FILE *f, uint64_t n, const char *path, char *err) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int rc = write_bytes(f, zeros, k, path, err);
        if (rc) return rc;
        n -= k;
    }
    return HIVE_OK;
}

/* Streams a fill tensor through a reusable chunk buffer. */
static int write_filled(FILE *f, const struct wtensor *t, void **chunk, size_t *chunk_cap, const char *path, char *err) {
    if (t->n_bytes == 0) return HIVE_OK;
    int64_t n_rows = t->ne[1] * t->ne[2] * t->ne[3];
    uint64_t row_bytes = t->n_bytes / (uint64_t)n_rows;
    int64_t rows_per_chunk = row_bytes >= FILL_CHUNK_BYTES ? 1 : (int64_t)(FILL_CHUNK_BYTES / row_bytes);
    if (rows_per_chunk > n_rows) rows_per_chunk = n_rows;
    uint64_t need = row_bytes * (uint64_t)rows_per_chunk;
    if (need > *chunk_cap) {
        void *p = need <= SIZE_MAX ? malloc((size_t)need) : NULL;
        if (!p) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte chunk of '%s'", path, need, t->name);
        free(*chunk);
        *chunk = p;
        *chunk_cap = (size_t)need;
    }
    for (int64_t r = 0; r < n_rows; r += rows_per_chunk) {
        int64_t n = n_rows - r < rows_per_chunk ? n_rows - r : rows_per_chunk;
        char ferr[HIVE_ERR_LEN] = "";
        int rc = t->fill(t->fill_ctx, r, n, *chunk, ferr);
        if (rc) return hive_errf(err, rc, "%s: tensor '%s': %s", path, t->name, ferr[0] ? ferr : hive_status_name(rc));
        rc = write_bytes(f, *chunk, row_bytes * (uint64_t)n, path, err);
        if (rc) return rc;
    }
    return HIVE_OK;
}

static int write_file(hive_gguf_writer *w, FILE *f, const struct buf *header, uint64_t align, const char *path, char *err) {
    int rc = write_bytes(f, header->p, header->n, path, err);
    void *chunk = NULL;
    size_t chunk_cap = 0;
    for (int64_t i = 0; !rc && i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        rc = t->fill ? write_filled(f, t, &chunk, &chunk_cap, path, err) : write_bytes(f, t->data, t->n_bytes, path, err);
        if (!rc) rc = write_padding(f, pad_to(t->n_bytes, align), path, err);
    }
    free(chunk);
    return rc;
}

int hive_gguf_writer_write(hive_gguf_writer *w, const char *path, char *err) {
    if (w->first_error[0]) return hive_errf(err, HIVE_ERR_INVAL, "%s: not written: %s", path, w->first_error);
    uint64_t align;
    int rc = alignment_of(w, &align, err);
    if (rc) return rc;
    struct buf header = {0};
    rc = build_header(w, align, &header, err);
    if (rc) {
        free(header.p);
        return rc;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(header.p);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = hive_errf(err, HIVE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        rc = write_file(w, f, &header, align, tmp, err);
        if (fclose(f) != 0 && !rc) rc = hive_errf(err, HIVE_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        if (!rc && hive_rename_replace(tmp, path) != 0) /* rename() does not replace on Windows */
            rc = hive_errf(err, HIVE_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        if (rc) remove(tmp);
    }
    free(tmp);
    free(header.p);
    return rc;
}
