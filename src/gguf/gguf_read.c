/* gguf_read.c - GGUF reader: maps a file (or takes a buffer), validates every
 * count, length, type and offset against the bytes that are really there, and
 * indexes metadata and tensors for O(1) lookup.
 *
 * Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), all little-endian:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   kv:     string key | u32 vtype | value
 *   string: u64 len | len bytes (no NUL)
 *   array:  u32 elem vtype | u64 n | n values
 *   tensor: string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset
 *   padding to general.alignment (default 32) | tensor data
 *
 * Not supported on purpose: version 1 (32-bit counts), big-endian files,
 * nested arrays (no known producer writes them). */
#include "hive/gguf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf_internal.h"
#include "hive/tensor.h"

#include "hive/os.h"

/* Smallest encodings, used to refuse counts that cannot fit in the bytes left
 * before anything is allocated for them. */
#define MIN_KV_BYTES 13     /* u64 key len + u32 vtype + 1-byte value */
#define MIN_TENSOR_BYTES 24 /* u64 name len + u32 n_dims + u32 type + u64 offset */
#define HEADER_BYTES 24

struct kv {
    struct hive_str key;
    int type;                /* enum hive_gguf_vtype */
    int elem_type;           /* arrays: element vtype; -1 otherwise */
    uint64_t n;              /* arrays: element count; 0 otherwise */
    const uint8_t *val;      /* scalar: the value; string: its bytes; array: first element */
    uint64_t str_len;        /* strings: length */
    struct hive_str *strs;   /* string arrays: one entry per element (owned) */
    uint64_t raw_begin;      /* file offsets of the encoded value (after the type tag) */
    uint64_t raw_end;
};

struct hive_gguf {
    char *path;
    const uint8_t *base;
    uint64_t size;
    int owns_mapping;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    struct kv *kvs;
    int64_t n_kv;
    struct hive_gguf_tensor *tensors;
    int64_t n_tensors;
    int64_t *kv_slots;       /* open-addressing hash: index or -1 */
    uint64_t kv_cap;         /* power of two */
    int64_t *tensor_slots;
    uint64_t tensor_cap;
};

/* ---- small helpers ---- */

int hive_str_eq(struct hive_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

const char *hive_gguf_vtype_name(int vtype) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return vtype >= 0 && vtype <= HIVE_GGUF_FLOAT64 ? names[vtype] : "unknown";
}

size_t hive_gguf_vtype_size(int vtype) {
    switch (vtype) {
    case HIVE_GGUF_UINT8: case HIVE_GGUF_INT8: case HIVE_GGUF_BOOL: return 1;
    case HIVE_GGUF_UINT16: case HIVE_GGUF_INT16: return 2;
    case HIVE_GGUF_UINT32: case HIVE_GGUF_INT32: case HIVE_GGUF_FLOAT32: return 4;
    case HIVE_GGUF_UINT64: case HIVE_GGUF_INT64: case HIVE_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static uint64_t hash_bytes(const void *p, uint64_t n) {
    /* FNV-1a, 64-bit */
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Capacity for n entries at load <= 1/2; n is bounded by the file size. */
static uint64_t slot_capacity(int64_t n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    return cap;
}

/* Inserts index i with name s; returns the index already holding s, or -1. */
static int64_t slots_insert(int64_t *slots, uint64_t cap, struct hive_str s, int64_t i,
                            struct hive_str (*name_of)(const hive_gguf *, int64_t), const hive_gguf *g) {
    uint64_t h = hash_bytes(s.ptr, s.len) & (cap - 1);
    for (;;) {
        int64_t j = slots[h];
        if (j < 0) {
            slots[h] = i;
            return -1;
        }
        struct hive_str o = name_of(g, j);
        if (o.len == s.len && (s.len == 0 || !memcmp(o.ptr, s.ptr, s.len))) return j;
        h = (h + 1) & (cap - 1);
    }
}

static int64_t slots_find(const int64_t *slots, uint64_t cap, const char *name,
                          struct hive_str (*name_of)(const hive_gguf *, int64_t), const hive_gguf *g) {
    if (!slots || !name) return -1;
    uint64_t n = strlen(name);
    uint64_t h = hash_bytes(name, n) & (cap - 1);
    for (;;) {
        int64_t j = slots[h];
        if (j < 0) return -1;
        struct hive_str o = name_of(g, j);
        if (o.len == n && (n == 0 || !memcmp(o.ptr, name, n))) return j;
        h = (h + 1) & (cap - 1);
    }
}

static struct hive_str kv_name(const hive_gguf *g, int64_t i) { return g->kvs[i].key; }
static struct hive_str tensor_name(const hive_gguf *g, int64_t i) { return g->tensors[i].name; }

/* Prints at most 48 bytes of a name from the file, with non-printables as '?',
 * so a hostile name cannot garble the one-line message. */
static const char *printable(struct hive_str s, char buf[64]) {
    uint64_t n = s.len < 48 ? s.len : 48;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[i] = ch >= 32 && ch < 127 ? (char)ch : '?';
    }
    if (s.len > 48) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    return buf;
}

/* ---- cursor over the image ---- */

struct cursor {
    const uint8_t *base;
    uint64_t pos;
    uint64_t size;
    const char *name; /* file name for messages */
    char *err;
};

static uint64_t left(const struct cursor *c) { return c->size - c->pos; }

static int need(struct cursor *c, uint64_t n, const char *what) {
    if (n <= left(c)) return HIVE_OK;
    return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: truncated: %s at offset %" PRIu64 " needs %" PRIu64
                     " bytes but only %" PRIu64 " remain", c->name, what, c->pos, n, left(c));
}

static int read_u32(struct cursor *c, uint32_t *v, const char *what) {
    int rc = need(c, 4, what);
    if (rc) return rc;
    *v = gguf_get_u32(c->base + c->pos);
    c->pos += 4;
    return HIVE_OK;
}

static int read_u64(struct cursor *c, uint64_t *v, const char *what) {
    int rc = need(c, 8, what);
    if (rc) return rc;
    *v = gguf_get_u64(c->base + c->pos);
    c->pos += 8;
    return HIVE_OK;
}

static int read_str(struct cursor *c, struct hive_str *s, const char *what) {
    uint64_t len;
    int rc = read_u64(c, &len, what);
    if (rc) return rc;
    if (len > left(c))
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: %s at offset %" PRIu64 " claims %" PRIu64
                         " bytes but only %" PRIu64 " remain", c->name, what, c->pos - 8, len, left(c));
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return HIVE_OK;
}

/* ---- metadata ---- */

static int check_bools(struct cursor *c, const uint8_t *p, uint64_t n, struct hive_str key) {
    char nb[64];
    for (uint64_t i = 0; i < n; i++)
        if (p[i] > 1)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s': bool value %u is neither 0 nor 1",
                             c->name, printable(key, nb), p[i]);
    return HIVE_OK;
}

/* Reads an array of strings in two passes: the first proves every element is
 * in the file, so the index allocated in the second is backed by real bytes. */
static int read_str_array(struct cursor *c, struct kv *kv) {
    char nb[64];
    if (kv->n > left(c) / 8)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s': array of %" PRIu64
                         " strings cannot fit in the %" PRIu64 " bytes left", c->name,
                         printable(kv->key, nb), kv->n, left(c));
    uint64_t start = c->pos;
    for (uint64_t i = 0; i < kv->n; i++) {
        struct hive_str s;
        int rc = read_str(c, &s, "string array element");
        if (rc) return rc;
    }
    kv->strs = hive_malloc_array(kv->n, sizeof *kv->strs);
    if (!kv->strs) return hive_errf(c->err, HIVE_ERR_NOMEM, "%s: out of memory for %" PRIu64 " strings",
                                    c->name, kv->n);
    c->pos = start;
    for (uint64_t i = 0; i < kv->n; i++) {
        int rc = read_str(c, &kv->strs[i], "string array element");
        if (rc) return rc; /* cannot happen: pass one succeeded */
    }
    return HIVE_OK;
}

static int read_value(struct cursor *c, struct kv *kv) {
    char nb[64];
    size_t esize = hive_gguf_vtype_size(kv->type);
    if (esize) {
        int rc = need(c, esize, "metadata value");
        if (rc) return rc;
        kv->val = c->base + c->pos;
        c->pos += esize;
        return kv->type == HIVE_GGUF_BOOL ? check_bools(c, kv->val, 1, kv->key) : HIVE_OK;
    }
    if (kv->type == HIVE_GGUF_STRING) {
        struct hive_str s;
        int rc = read_str(c, &s, "string value");
        if (rc) return rc;
        kv->val = (const uint8_t *)s.ptr;
        kv->str_len = s.len;
        return HIVE_OK;
    }
    if (kv->type != HIVE_GGUF_ARRAY)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s' has unknown value type %d", c->name,
                         printable(kv->key, nb), kv->type);
    uint32_t et;
    int rc = read_u32(c, &et, "array element type");
    if (rc) return rc;
    rc = read_u64(c, &kv->n, "array length");
    if (rc) return rc;
    if (et == HIVE_GGUF_ARRAY)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s' is a nested array (not supported)", c->name,
                         printable(kv->key, nb));
    if (et > HIVE_GGUF_FLOAT64)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s' is an array of unknown type %" PRIu32, c->name,
                         printable(kv->key, nb), et);
    kv->elem_type = (int)et;
    if (et == HIVE_GGUF_STRING) return read_str_array(c, kv);
    esize = hive_gguf_vtype_size((int)et);
    if (kv->n > left(c) / esize)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s': array of %" PRIu64 " %s values cannot fit in the %"
                         PRIu64 " bytes left", c->name, printable(kv->key, nb), kv->n,
                         hive_gguf_vtype_name((int)et), left(c));
    kv->val = c->base + c->pos;
    c->pos += kv->n * esize;
    return et == HIVE_GGUF_BOOL ? check_bools(c, kv->val, kv->n, kv->key) : HIVE_OK;
}

/* Grows *arr (elements of elem bytes) to hold at least want; a declared count
 * is never trusted for the allocation size, only the entries really parsed. */
static int grow(void **arr, uint64_t *cap, uint64_t want, size_t elem) {
    if (want <= *cap) return HIVE_OK;
    uint64_t ncap = *cap ? *cap * 2 : 16;
    if (ncap < want) ncap = want;
    if (ncap > SIZE_MAX / elem) return HIVE_ERR_NOMEM;
    void *p = realloc(*arr, (size_t)(ncap * elem));
    if (!p) return HIVE_ERR_NOMEM;
    memset((char *)p + *cap * elem, 0, (size_t)((ncap - *cap) * elem));
    *arr = p;
    *cap = ncap;
    return HIVE_OK;
}

/* Builds the name -> index table; refuses duplicates. */
static int build_index(hive_gguf *g, int64_t **slots, uint64_t *cap, int64_t n,
                       struct hive_str (*name_of)(const hive_gguf *, int64_t), const char *what, char *err) {
    *cap = slot_capacity(n);
    *slots = hive_malloc_array(*cap, sizeof **slots);
    if (!*slots) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory for the %s index", g->path, what);
    memset(*slots, 0xff, *cap * sizeof **slots);
    for (int64_t i = 0; i < n; i++) {
        char nb[64];
        if (slots_insert(*slots, *cap, name_of(g, i), i, name_of, g) >= 0)
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: duplicate %s '%s'", g->path, what, printable(name_of(g, i), nb));
    }
    return HIVE_OK;
}

static int read_metadata(hive_gguf *g, struct cursor *c, uint64_t n_kv) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&g->kvs, &cap, i + 1, sizeof *g->kvs))
            return hive_errf(c->err, HIVE_ERR_NOMEM, "%s: out of memory for metadata", c->name);
        g->n_kv = (int64_t)i + 1; /* from here on kv i is owned by g (strs freed on close) */
        struct kv *kv = &g->kvs[i];
        char nb[64];
        uint32_t type;
        kv->elem_type = -1;
        int rc = read_str(c, &kv->key, "metadata key");
        if (rc) return rc;
        rc = read_u32(c, &type, "metadata value type");
        if (rc) return rc;
        if (type > HIVE_GGUF_FLOAT64)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: key '%s' has unknown value type %" PRIu32, c->name,
                             printable(kv->key, nb), type);
        kv->type = (int)type;
        kv->raw_begin = c->pos;
        rc = read_value(c, kv);
        if (rc) return rc;
        kv->raw_end = c->pos;
    }
    return build_index(g, &g->kv_slots, &g->kv_cap, g->n_kv, kv_name, "metadata key", c->err);
}

/* ---- tensors ---- */

static int read_tensor_info(hive_gguf *g, struct cursor *c, struct hive_gguf_tensor *t) {
    char nb[64];
    uint32_t n_dims, type;
    int rc = read_str(c, &t->name, "tensor name");
    if (rc) return rc;
    rc = read_u32(c, &n_dims, "tensor n_dims");
    if (rc) return rc;
    if (n_dims < 1 || n_dims > HIVE_GGUF_MAX_DIMS)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: tensor '%s' has %" PRIu32 " dimensions (must be 1..%d)",
                         g->path, printable(t->name, nb), n_dims, HIVE_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < HIVE_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        rc = read_u64(c, &ne, "tensor dimension");
        if (rc) return rc;
        if (ne > (uint64_t)INT64_MAX)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: tensor '%s' dimension %" PRIu32 " is negative (%" PRId64 ")",
                             g->path, printable(t->name, nb), d, (int64_t)ne);
        t->ne[d] = (int64_t)ne;
    }
    rc = read_u32(c, &type, "tensor type");
    if (rc) return rc;
    if (type >= HIVE_TYPE_COUNT || hive_type_block_size((int)type) <= 0)
        return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: tensor '%s' has unknown type id %" PRIu32, g->path,
                         printable(t->name, nb), type);
    t->type = (int)type;
    return read_u64(c, &t->offset, "tensor offset");
}

/* Size of a tensor from its type and shape; refuses overflow and rows that
 * are not whole blocks. */
static int tensor_size(hive_gguf *g, struct hive_gguf_tensor *t, char *err) {
    char nb[64];
    int64_t n_elems = 1;
    for (int d = 0; d < HIVE_GGUF_MAX_DIMS; d++)
        if (__builtin_mul_overflow(n_elems, t->ne[d], &n_elems))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: tensor '%s' shape [%" PRId64 ", %" PRId64 ", %" PRId64
                             ", %" PRId64 "] overflows int64", g->path, printable(t->name, nb), t->ne[0], t->ne[1],
                             t->ne[2], t->ne[3]);
    int64_t block = hive_type_block_size(t->type);
    if (t->ne[0] % block)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: tensor '%s' row length %" PRId64 " is not a multiple of the %s block size %" PRId64,
                         g->path, printable(t->name, nb), t->ne[0], hive_type_name(t->type), block);
    if (n_elems == 0) {
        t->n_bytes = 0;
        return HIVE_OK;
    }
    uint64_t row = hive_type_row_bytes(t->type, t->ne[0]);
    uint64_t rows = (uint64_t)(n_elems / t->ne[0]);
    if (row == 0 || __builtin_mul_overflow(row, rows, &t->n_bytes))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: tensor '%s' byte size overflows", g->path, printable(t->name, nb));
    return HIVE_OK;
}

struct extent {
    uint64_t begin, end;
    int64_t index;
};

static int extent_cmp(const void *a, const void *b) {
    const struct extent *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Tensor data must not overlap: two tensors sharing bytes is a corrupt or
 * hostile file, whatever the reader would do with it. */
static int check_overlap(hive_gguf *g, char *err) {
    if (g->n_tensors < 2) return HIVE_OK;
    struct extent *ex = hive_malloc_array((size_t)g->n_tensors, sizeof *ex);
    if (!ex) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", g->path);
    for (int64_t i = 0; i < g->n_tensors; i++)
        ex[i] = (struct extent){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].n_bytes, i};
    qsort(ex, (size_t)g->n_tensors, sizeof *ex, extent_cmp);
    int rc = HIVE_OK;
    uint64_t end = 0;
    int64_t prev = -1;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        if (ex[i].begin == ex[i].end) continue; /* empty tensors occupy nothing */
        if (prev >= 0 && ex[i].begin < end) {
            char a[64], b[64];
            rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", g->path,
                           printable(g->tensors[prev].name, a), printable(g->tensors[ex[i].index].name, b));
            break;
        }
        end = ex[i].end;
        prev = ex[i].index;
    }
    free(ex);
    return rc;
}

static int read_tensors(hive_gguf *g, struct cursor *c, uint64_t n_tensors) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (grow((void **)&g->tensors, &cap, i + 1, sizeof *g->tensors))
            return hive_errf(c->err, HIVE_ERR_NOMEM, "%s: out of memory for tensor infos", c->name);
        int rc = read_tensor_info(g, c, &g->tensors[i]);
        if (rc) return rc;
        g->n_tensors = (int64_t)i + 1;
    }
    int rc = build_index(g, &g->tensor_slots, &g->tensor_cap, g->n_tensors, tensor_name, "tensor name", c->err);
    if (rc) return rc;
    /* The data section starts at the next multiple of the alignment. A file
     * without tensors may end before that padding. */
    uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
    if (pad > left(c)) {
        if (n_tensors)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: truncated: data section padding at offset %" PRIu64
                             " needs %" PRIu64 " bytes but only %" PRIu64 " remain", c->name, c->pos, pad, left(c));
        pad = left(c);
    }
    g->data_offset = c->pos + pad;
    uint64_t data_size = g->size - g->data_offset;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        char nb[64];
        struct hive_gguf_tensor *t = &g->tensors[i];
        int rc = tensor_size(g, t, c->err);
        if (rc) return rc;
        if (t->offset % g->alignment)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                             c->name, printable(t->name, nb), t->offset, g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return hive_errf(c->err, HIVE_ERR_FORMAT, "%s: tensor '%s' data [%" PRIu64 ", +%" PRIu64
                             ") lies outside the %" PRIu64 "-byte data section (file truncated?)",
                             c->name, printable(t->name, nb), t->offset, t->n_bytes, data_size);
        t->data = g->base + g->data_offset + t->offset;
    }
    return check_overlap(g, c->err);
}

/* ---- open / close ---- */

static int read_alignment(hive_gguf *g, char *err) {
    g->alignment = HIVE_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = hive_gguf_find_kv(g, "general.alignment");
    if (i < 0) return HIVE_OK;
    uint64_t a;
    if (hive_gguf_get_u64(g, "general.alignment", &a) != HIVE_OK)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: general.alignment has type %s (must be an integer)", g->path,
                         hive_gguf_vtype_name(g->kvs[i].type));
    if (a == 0 || (a & (a - 1)) || a > (1u << 30))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: general.alignment %" PRIu64 " is not a power of two up to 2^30",
                         g->path, a);
    g->alignment = a;
    return HIVE_OK;
}

static int parse(hive_gguf *g, char *err) {
    struct cursor c = {.base = g->base, .pos = 0, .size = g->size, .name = g->path, .err = err};
    if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0) {
        if (g->size == 0) return hive_errf(err, HIVE_ERR_FORMAT, "%s: empty file (not GGUF)", g->path);
        if (g->size >= 4 && !memcmp(g->base, "FUGG", 4))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: big-endian GGUF is not supported", g->path);
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: not a GGUF file (bad magic)", g->path);
    }
    c.pos = 4;
    int rc = read_u32(&c, &g->version, "version");
    if (rc) return rc;
    if (g->version == 1)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: GGUF version 1 is not supported (only 2 and 3)", g->path);
    if ((g->version & 0xffff) == 0 && (g->version >> 16))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: GGUF version %" PRIu32 " looks byte-swapped (big-endian file?): not supported",
                         g->path, g->version);
    if (g->version != 2 && g->version != 3)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: GGUF version %" PRIu32 " is not supported (only 2 and 3)", g->path,
                         g->version);
    uint64_t n_tensors, n_kv;
    rc = read_u64(&c, &n_tensors, "tensor count");
    if (rc) return rc;
    rc = read_u64(&c, &n_kv, "metadata key count");
    if (rc) return rc;
    if (n_kv > left(&c) / MIN_KV_BYTES)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: %" PRIu64 " metadata keys cannot fit in the %" PRIu64 " bytes left",
                         g->path, n_kv, left(&c));
    if (n_tensors > left(&c) / MIN_TENSOR_BYTES || n_tensors + n_kv > (left(&c) / MIN_KV_BYTES))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: %" PRIu64 " tensors and %" PRIu64 " keys cannot fit in the %"
                         PRIu64 " bytes left", g->path, n_tensors, n_kv, left(&c));
    rc = read_metadata(g, &c, n_kv);
    if (rc) return rc;
    rc = read_alignment(g, err);
    if (rc) return rc;
    if (n_tensors > left(&c) / MIN_TENSOR_BYTES)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: %" PRIu64 " tensors cannot fit in the %" PRIu64 " bytes left",
                         g->path, n_tensors, left(&c));
    return read_tensors(g, &c, n_tensors);
}

static hive_gguf *new_handle(const char *name) {
    hive_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->path = strdup(name ? name : "(buffer)");
    if (!g->path) {
        free(g);
        return NULL;
    }
    g->alignment = HIVE_GGUF_DEFAULT_ALIGNMENT;
    return g;
}

static int map_file(hive_gguf *g, const char *path, char *err) {
    const void *base = NULL;
    uint64_t size = 0;
    int rc = hive_map_file(path, &base, &size, err);
    if (rc) return rc;
    if (size > SIZE_MAX) {
        hive_unmap_file(base, size);
        return hive_errf(err, HIVE_ERR_IO, "%s: too large to map on this system", path);
    }
    g->size = size;
    g->base = base; /* NULL for an empty file: parse() reports it */
    g->owns_mapping = base != NULL;
    return HIVE_OK;
}

static void unmap_file(hive_gguf *g) { hive_unmap_file(g->base, g->size); }

static int finish_open(hive_gguf **out, hive_gguf *g, char *err) {
    static const uint8_t empty[1];
    if (!g->base) g->base = empty; /* empty file: parse() refuses it without reading */
    int rc = parse(g, err);
    if (rc) {
        hive_gguf_close(g);
        return rc;
    }
    *out = g;
    return HIVE_OK;
}

int hive_gguf_open(hive_gguf **out, const char *path, char *err) {
    *out = NULL;
    hive_gguf *g = new_handle(path);
    if (!g) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", path);
    int rc = map_file(g, path, err);
    if (rc) {
        hive_gguf_close(g);
        return rc;
    }
    return finish_open(out, g, err);
}

int hive_gguf_open_buffer(hive_gguf **out, const char *name, const void *data, uint64_t size, char *err) {
    *out = NULL;
    hive_gguf *g = new_handle(name);
    if (!g) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", name ? name : "(buffer)");
    g->base = size ? data : NULL;
    g->size = size;
    return finish_open(out, g, err);
}

void hive_gguf_close(hive_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].strs);
    free(g->kvs);
    free(g->kv_slots);
    free(g->tensors);
    free(g->tensor_slots);
    if (g->owns_mapping) unmap_file(g);
    free(g->path);
    free(g);
}

/* ---- accessors ---- */

uint32_t hive_gguf_version(const hive_gguf *g) { return g->version; }
const char *hive_gguf_path(const hive_gguf *g) { return g->path; }
uint64_t hive_gguf_file_size(const hive_gguf *g) { return g->size; }
uint64_t hive_gguf_alignment(const hive_gguf *g) { return g->alignment; }
uint64_t hive_gguf_data_offset(const hive_gguf *g) { return g->data_offset; }
const void *hive_gguf_mapping(const hive_gguf *g) { return g->base; }

int64_t hive_gguf_n_kv(const hive_gguf *g) { return g->n_kv; }

int64_t hive_gguf_find_kv(const hive_gguf *g, const char *key) {
    return slots_find(g->kv_slots, g->kv_cap, key, kv_name, g);
}

static const struct kv *kv_at(const hive_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL;
}

struct hive_str hive_gguf_kv_key(const hive_gguf *g, int64_t i) {
    const struct kv *kv = kv_at(g, i);
    return kv ? kv->key : (struct hive_str){NULL, 0};
}

int hive_gguf_kv_type(const hive_gguf *g, int64_t i) {
    const struct kv *kv = kv_at(g, i);
    return kv ? kv->type : -1;
}

int hive_gguf_kv_array_type(const hive_gguf *g, int64_t i) {
    const struct kv *kv = kv_at(g, i);
    return kv ? kv->elem_type : -1;
}

uint64_t hive_gguf_kv_array_len(const hive_gguf *g, int64_t i) {
    const struct kv *kv = kv_at(g, i);
    return kv && kv->type == HIVE_GGUF_ARRAY ? kv->n : 0;
}

int gguf_kv_raw(const hive_gguf *g, int64_t i, const uint8_t **bytes, uint64_t *n_bytes) {
    const struct kv *kv = kv_at(g, i);
    if (!kv) return HIVE_ERR_INVAL;
    *bytes = g->base + kv->raw_begin;
    *n_bytes = kv->raw_end - kv->raw_begin;
    return HIVE_OK;
}

/* A numeric scalar widened to one of three forms. */
enum num_kind { NUM_UNSIGNED, NUM_SIGNED, NUM_FLOAT, NUM_NONE };
struct num {
    enum num_kind kind;
    uint64_t u;
    int64_t i;
    double f;
};

static struct num read_num(const struct kv *kv) {
    struct num n = {.kind = NUM_NONE};
    if (!kv) return n;
    const uint8_t *p = kv->val;
    switch (kv->type) {
    case HIVE_GGUF_UINT8: n.kind = NUM_UNSIGNED; n.u = p[0]; break;
    case HIVE_GGUF_UINT16: n.kind = NUM_UNSIGNED; n.u = (uint64_t)p[0] | (uint64_t)p[1] << 8; break;
    case HIVE_GGUF_UINT32: n.kind = NUM_UNSIGNED; n.u = gguf_get_u32(p); break;
    case HIVE_GGUF_UINT64: n.kind = NUM_UNSIGNED; n.u = gguf_get_u64(p); break;
    case HIVE_GGUF_INT8: n.kind = NUM_SIGNED; n.i = (int8_t)p[0]; break;
    case HIVE_GGUF_INT16: n.kind = NUM_SIGNED; n.i = (int16_t)(uint16_t)((uint16_t)p[0] | (uint16_t)p[1] << 8); break;
    case HIVE_GGUF_INT32: n.kind = NUM_SIGNED; n.i = (int32_t)gguf_get_u32(p); break;
    case HIVE_GGUF_INT64: n.kind = NUM_SIGNED; n.i = (int64_t)gguf_get_u64(p); break;
    case HIVE_GGUF_FLOAT32: {
        uint32_t bits = gguf_get_u32(p);
        float f;
        memcpy(&f, &bits, 4);
        n.kind = NUM_FLOAT;
        n.f = f;
        break;
    }
    case HIVE_GGUF_FLOAT64: {
        uint64_t bits = gguf_get_u64(p);
        memcpy(&n.f, &bits, 8);
        n.kind = NUM_FLOAT;
        break;
    }
    default: break;
    }
    return n;
}

/* Integer value within [lo, hi] (as signed) or [0, uhi] (as unsigned). */
static int get_int(const hive_gguf *g, const char *key, int64_t lo, uint64_t uhi, uint64_t *u, int64_t *s) {
    struct num n = read_num(kv_at(g, hive_gguf_find_kv(g, key)));
    if (n.kind == NUM_UNSIGNED) {
        if (n.u > uhi) return HIVE_ERR_INVAL;
        *u = n.u;
        *s = (int64_t)n.u; /* uhi <= INT64_MAX whenever the caller reads *s */
        return HIVE_OK;
    }
    if (n.kind == NUM_SIGNED) {
        if (n.i < lo || (n.i > 0 && (uint64_t)n.i > uhi)) return HIVE_ERR_INVAL;
        *u = (uint64_t)n.i;
        *s = n.i;
        return HIVE_OK;
    }
    return HIVE_ERR_INVAL;
}

int hive_gguf_get_u32(const hive_gguf *g, const char *key, uint32_t *out) {
    uint64_t u;
    int64_t s;
    int rc = get_int(g, key, 0, UINT32_MAX, &u, &s);
    if (!rc) *out = (uint32_t)u;
    return rc;
}

int hive_gguf_get_i32(const hive_gguf *g, const char *key, int32_t *out) {
    uint64_t u;
    int64_t s;
    int rc = get_int(g, key, INT32_MIN, INT32_MAX, &u, &s);
    if (!rc) *out = (int32_t)s;
    return rc;
}

int hive_gguf_get_u64(const hive_gguf *g, const char *key, uint64_t *out) {
    uint64_t u;
    int64_t s;
    int rc = get_int(g, key, 0, UINT64_MAX, &u, &s);
    if (!rc) *out = u;
    return rc;
}

int hive_gguf_get_i64(const hive_gguf *g, const char *key, int64_t *out) {
    uint64_t u;
    int64_t s;
    int rc = get_int(g, key, INT64_MIN, INT64_MAX, &u, &s);
    if (!rc) *out = s;
    return rc;
}

int hive_gguf_get_f32(const hive_gguf *g, const char *key, float *out) {
    struct num n = read_num(kv_at(g, hive_gguf_find_kv(g, key)));
    switch (n.kind) {
    case NUM_FLOAT: *out = (float)n.f; return HIVE_OK;
    case NUM_UNSIGNED: *out = (float)n.u; return HIVE_OK;
    case NUM_SIGNED: *out = (float)n.i; return HIVE_OK;
    default: return HIVE_ERR_INVAL;
    }
}

int hive_gguf_get_bool(const hive_gguf *g, const char *key, int *out) {
    const struct kv *kv = kv_at(g, hive_gguf_find_kv(g, key));
    if (!kv || kv->type != HIVE_GGUF_BOOL) return HIVE_ERR_INVAL;
    *out = kv->val[0] != 0;
    return HIVE_OK;
}

int hive_gguf_get_str(const hive_gguf *g, const char *key, struct hive_str *out) {
    const struct kv *kv = kv_at(g, hive_gguf_find_kv(g, key));
    if (!kv || kv->type != HIVE_GGUF_STRING) return HIVE_ERR_INVAL;
    out->ptr = (const char *)kv->val;
    out->len = kv->str_len;
    return HIVE_OK;
}

int hive_gguf_get_cstr(const hive_gguf *g, const char *key, char *buf, size_t cap) {
    struct hive_str s;
    if (cap == 0) return HIVE_ERR_INVAL;
    int rc = hive_gguf_get_str(g, key, &s);
    if (rc) return rc;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    if (n) memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return HIVE_OK;
}

int hive_gguf_get_str_array(const hive_gguf *g, const char *key, const struct hive_str **strs, uint64_t *n) {
    const struct kv *kv = kv_at(g, hive_gguf_find_kv(g, key));
    if (!kv || kv->type != HIVE_GGUF_ARRAY || kv->elem_type != HIVE_GGUF_STRING) return HIVE_ERR_INVAL;
    *strs = kv->strs;
    *n = kv->n;
    return HIVE_OK;
}

int hive_gguf_get_array(const hive_gguf *g, const char *key, int *elem_type, const void **data, uint64_t *n) {
    const struct kv *kv = kv_at(g, hive_gguf_find_kv(g, key));
    if (!kv || kv->type != HIVE_GGUF_ARRAY || kv->elem_type == HIVE_GGUF_STRING) return HIVE_ERR_INVAL;
    *elem_type = kv->elem_type;
    *data = kv->val;
    *n = kv->n;
    return HIVE_OK;
}

int64_t hive_gguf_n_tensors(const hive_gguf *g) { return g->n_tensors; }

const struct hive_gguf_tensor *hive_gguf_tensor(const hive_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct hive_gguf_tensor *hive_gguf_find_tensor(const hive_gguf *g, const char *name) {
    int64_t i = slots_find(g->tensor_slots, g->tensor_cap, name, tensor_name, g);
    return i >= 0 ? &g->tensors[i] : NULL;
}
