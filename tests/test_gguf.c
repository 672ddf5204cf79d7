/* test_gguf.c - GGUF reader and writer: round trips of every value type,
 * the real files in ../shared/models, and hostile inputs (truncations, byte
 * flips, crafted headers) that must be refused without reading out of
 * bounds. Hostile images are opened from exact-size heap copies so that
 * ASan catches any read past the end. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <unistd.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/mkmodel.h"
#include "hive/tensor.h"

static char tmpdir[64];

static const char *tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static void remove_tmp_files(void) {
    static const char *names[] = {"rt.gguf", "rt64.gguf", "bad.gguf", "small.gguf", "trunc.gguf", "empty.gguf", "mk1.gguf", "mk2.gguf", "mk3.gguf"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(p, sizeof p, names[i]));
    rmdir(tmpdir);
}

/* ---- a tiny independent encoder for crafted images ---- */

struct enc {
    uint8_t *p;
    size_t n, cap;
};

static void e_raw(struct enc *e, const void *src, size_t n) {
    if (e->n + n > e->cap) {
        e->cap = (e->n + n) * 2 + 64;
        e->p = realloc(e->p, e->cap);
        if (!e->p) abort();
    }
    if (n) memcpy(e->p + e->n, src, n);
    e->n += n;
}
static void e_u8(struct enc *e, uint8_t v) { e_raw(e, &v, 1); }
static void e_u32(struct enc *e, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    e_raw(e, b, 4);
}
static void e_u64(struct enc *e, uint64_t v) {
    e_u32(e, (uint32_t)v);
    e_u32(e, (uint32_t)(v >> 32));
}
static void e_str(struct enc *e, const char *s) {
    e_u64(e, strlen(s));
    e_raw(e, s, strlen(s));
}
static void e_pad(struct enc *e, size_t align) {
    while (e->n % align) e_u8(e, 0);
}
static void e_header(struct enc *e, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    e_raw(e, "GGUF", 4);
    e_u32(e, version);
    e_u64(e, n_tensors);
    e_u64(e, n_kv);
}

/* Opens an exact-size heap copy of the image; returns the status and puts
 * the message in err. */
static int open_image(const uint8_t *img, size_t n, char *err) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, img, n);
    hive_gguf *g = NULL;
    err[0] = 0;
    int rc = hive_gguf_open_buffer(&g, "crafted.gguf", n ? copy : NULL, n, err);
    if (rc == HIVE_OK) {
        CHECK(g != NULL);
        hive_gguf_close(g);
    } else {
        CHECK(g == NULL);
    }
    free(copy);
    return rc;
}

/* Expects a crafted image to be refused as FORMAT with a message that names
 * the file and contains `needle`. */
#define EXPECT_REFUSED(e, needle)                                                                  \
    do {                                                                                           \
        char err_[HIVE_ERR_LEN];                                                                   \
        int rc_ = open_image((e)->p, (e)->n, err_);                                                \
        CHECKF(rc_ == HIVE_ERR_FORMAT, "rc %d (%s) for case '%s'", rc_, err_, needle);             \
        CHECKF(strstr(err_, "crafted.gguf") && strstr(err_, needle), "message '%s' lacks '%s'", err_, needle); \
        CHECKF(!strchr(err_, '\n'), "multi-line message '%s'", err_);                             \
        free((e)->p);                                                                              \
        *(e) = (struct enc){0};                                                                    \
    } while (0)

/* One tensor of given raw fields followed by data_bytes of data. */
static void craft_tensor(struct enc *e, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset,
                         size_t data_bytes) {
    e_header(e, 3, 1, 0);
    e_str(e, "t");
    e_u32(e, n_dims);
    for (uint32_t d = 0; d < n_dims && d < 4; d++) e_u64(e, ne[d]);
    e_u32(e, type);
    e_u64(e, offset);
    e_pad(e, 32);
    for (size_t i = 0; i < data_bytes; i++) e_u8(e, (uint8_t)i);
}

static void test_crafted(void) {
    struct enc e = {0};
    char err[HIVE_ERR_LEN];

    /* a minimal valid image written by the independent encoder */
    e_header(&e, 3, 1, 2);
    e_str(&e, "general.architecture");
    e_u32(&e, HIVE_GGUF_STRING);
    e_str(&e, "llama");
    e_str(&e, "a.list");
    e_u32(&e, HIVE_GGUF_ARRAY);
    e_u32(&e, HIVE_GGUF_INT16);
    e_u64(&e, 3);
    e_u32(&e, 0xfffe0001u); /* int16 1, -2 */
    e_raw(&e, "\x05\x00", 2);
    e_str(&e, "w");
    e_u32(&e, 2);
    e_u64(&e, 4);
    e_u64(&e, 2);
    e_u32(&e, HIVE_TYPE_F32);
    e_u64(&e, 0);
    e_pad(&e, 32);
    for (int i = 0; i < 8; i++) {
        float f = (float)i * 0.5f;
        e_raw(&e, &f, 4);
    }
    {
        hive_gguf *g = NULL;
        int rc = hive_gguf_open_buffer(&g, "crafted.gguf", e.p, e.n, err);
        CHECKF(rc == HIVE_OK, "%s", err);
        if (g) {
            char arch[16];
            CHECK(hive_gguf_get_cstr(g, "general.architecture", arch, sizeof arch) == HIVE_OK && !strcmp(arch, "llama"));
            int et;
            const void *d;
            uint64_t n;
            CHECK(hive_gguf_get_array(g, "a.list", &et, &d, &n) == HIVE_OK && et == HIVE_GGUF_INT16 && n == 3);
            int16_t v[3];
            memcpy(v, d, sizeof v);
            CHECK(v[0] == 1 && v[1] == -2 && v[2] == 5);
            const struct hive_gguf_tensor *t = hive_gguf_find_tensor(g, "w");
            CHECK(t && t->ne[0] == 4 && t->ne[1] == 2 && t->n_bytes == 32 && t->n_dims == 2);
            CHECK(t && hive_gguf_data_offset(g) % 32 == 0 && t->data == e.p + hive_gguf_data_offset(g));
            float f7;
            if (t) memcpy(&f7, (const char *)t->data + 28, 4);
            CHECK(t && f7 == 3.5f);
            hive_gguf_close(g);
        }
        free(e.p);
        e = (struct enc){0};
    }

    /* magic, version, empty */
    e_raw(&e, "GGUX", 4);
    e_u32(&e, 3);
    e_u64(&e, 0);
    e_u64(&e, 0);
    EXPECT_REFUSED(&e, "magic");
    EXPECT_REFUSED(&e, "empty");
    e_raw(&e, "GGU", 3);
    EXPECT_REFUSED(&e, "magic");
    e_header(&e, 1, 0, 0);
    EXPECT_REFUSED(&e, "version 1");
    e_header(&e, 0, 0, 0);
    EXPECT_REFUSED(&e, "version 0");
    e_header(&e, 4, 0, 0);
    EXPECT_REFUSED(&e, "version 4");
    e_header(&e, 0x03000000u, 0, 0);
    EXPECT_REFUSED(&e, "byte-swapped");
    e_raw(&e, "GGUF\x03\x00\x00\x00", 8);
    EXPECT_REFUSED(&e, "truncated");

    /* a valid header with nothing else is a valid (empty) file */
    e_header(&e, 2, 0, 0);
    CHECK(open_image(e.p, e.n, err) == HIVE_OK);
    free(e.p);
    e = (struct enc){0};

    /* absurd counts are refused before anything is allocated for them */
    e_header(&e, 3, UINT64_MAX, 0);
    EXPECT_REFUSED(&e, "tensors");
    e_header(&e, 3, 1ull << 40, 1);
    e_str(&e, "k");
    e_u32(&e, HIVE_GGUF_UINT32);
    e_u32(&e, 1);
    EXPECT_REFUSED(&e, "tensors");
    e_header(&e, 3, 0, UINT64_MAX);
    EXPECT_REFUSED(&e, "metadata keys cannot fit");
    e_header(&e, 3, 0, 1ull << 33);
    EXPECT_REFUSED(&e, "metadata keys cannot fit");
    e_header(&e, 3, 2, 0); /* two tensors promised, one key-less header */
    EXPECT_REFUSED(&e, "tensors");

    /* string lengths */
    e_header(&e, 3, 0, 1);
    e_u64(&e, UINT64_MAX);
    e_raw(&e, "abcdefghijklmnop", 16);
    EXPECT_REFUSED(&e, "metadata key");
    e_header(&e, 3, 0, 1);
    e_u64(&e, 17);
    e_raw(&e, "abcdefghijklmnop", 16);
    EXPECT_REFUSED(&e, "metadata key");
    e_header(&e, 3, 0, 1);
    e_str(&e, "k");
    e_u32(&e, HIVE_GGUF_STRING);
    e_u64(&e, (1ull << 63) + 5);
    e_raw(&e, "xxxxxxxxxxxxxxxx", 16);
    EXPECT_REFUSED(&e, "string value");

    /* value types */
    e_header(&e, 3, 0, 1);
    e_str(&e, "k");
    e_u32(&e, 13);
    e_u64(&e, 0);
    EXPECT_REFUSED(&e, "unknown value type 13");
    e_header(&e, 3, 0, 1);
    e_str(&e, "k");
    e_u32(&e, HIVE_GGUF_BOOL);
    e_u8(&e, 2);
    e_raw(&e, "padpadpadpadpad", 15);
    EXPECT_REFUSED(&e, "bool");
    e_header(&e, 3, 0, 1);
    e_str(&e, "k");
    e_u32(&e, HIVE_GGUF_UINT64);
    e_u32(&e, 7); /* 4 of 8 bytes */
    EXPECT_REFUSED(&e, "truncated");

    /* arrays */
    static const struct { uint32_t type; uint64_t n; const char *needle; } arrays[] = {
        {HIVE_GGUF_UINT8, UINT64_MAX, "cannot fit"},
        {HIVE_GGUF_UINT64, (UINT64_MAX / 8) + 2, "cannot fit"}, /* n * 8 wraps to a small number */
        {HIVE_GGUF_FLOAT32, 1ull << 62, "cannot fit"},
        {HIVE_GGUF_STRING, UINT64_MAX / 2, "cannot fit"},
        {HIVE_GGUF_STRING, 3, "string array element"},
        {HIVE_GGUF_ARRAY, 1, "nested"},
        {HIVE_GGUF_FLOAT64 + 1, 1, "unknown type"},
        {0xffffffffu, 1, "unknown type"},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        e_header(&e, 3, 0, 1);
        e_str(&e, "arr");
        e_u32(&e, HIVE_GGUF_ARRAY);
        e_u32(&e, arrays[i].type);
        e_u64(&e, arrays[i].n);
        e_u64(&e, 1); /* one short string / some bytes */
        e_raw(&e, "zzzzzzzzzzzzzzzzzzzzzzzz", 24);
        EXPECT_REFUSED(&e, arrays[i].needle);
    }

    /* duplicates */
    e_header(&e, 3, 0, 2);
    for (int i = 0; i < 2; i++) {
        e_str(&e, "dup.key");
        e_u32(&e, HIVE_GGUF_UINT32);
        e_u32(&e, (uint32_t)i);
    }
    EXPECT_REFUSED(&e, "duplicate metadata key 'dup.key'");
    e_header(&e, 3, 2, 0);
    for (int i = 0; i < 2; i++) {
        e_str(&e, "same");
        e_u32(&e, 1);
        e_u64(&e, 8);
        e_u32(&e, HIVE_TYPE_F32);
        e_u64(&e, (uint64_t)i * 32);
    }
    e_pad(&e, 32);
    e_raw(&e, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64);
    EXPECT_REFUSED(&e, "duplicate tensor name 'same'");

    /* alignment */
    static const struct { uint32_t type; uint64_t v; const char *needle; } aligns[] = {
        {HIVE_GGUF_UINT32, 0, "power of two"},
        {HIVE_GGUF_UINT32, 48, "power of two"},
        {HIVE_GGUF_UINT64, 1ull << 40, "power of two"},
    };
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        e_header(&e, 3, 0, 1);
        e_str(&e, "general.alignment");
        e_u32(&e, aligns[i].type);
        if (aligns[i].type == HIVE_GGUF_UINT32) e_u32(&e, (uint32_t)aligns[i].v);
        else e_u64(&e, aligns[i].v);
        EXPECT_REFUSED(&e, aligns[i].needle);
    }
    e_header(&e, 3, 0, 1);
    e_str(&e, "general.alignment");
    e_u32(&e, HIVE_GGUF_STRING);
    e_str(&e, "32");
    EXPECT_REFUSED(&e, "must be an integer");

    /* tensor infos */
    const uint64_t ne2[2] = {8, 2};
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, 0, 64);
    CHECK(open_image(e.p, e.n, err) == HIVE_OK);
    free(e.p);
    e = (struct enc){0};
    craft_tensor(&e, 0, ne2, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "0 dimensions");
    const uint64_t ne5[5] = {1, 1, 1, 1, 1};
    craft_tensor(&e, 5, ne5, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "5 dimensions");
    craft_tensor(&e, 0x80000000u, ne5, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "dimensions");
    const uint64_t neg[2] = {8, 1ull << 63};
    craft_tensor(&e, 2, neg, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "negative");
    const uint64_t huge[4] = {1ull << 32, 1ull << 32, 1ull << 32, 2};
    craft_tensor(&e, 4, huge, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "overflows");
    const uint64_t big[2] = {1ull << 20, 1ull << 20}; /* fits int64, bytes do not fit the file */
    craft_tensor(&e, 2, big, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "outside");
    const uint64_t bytes_wrap[2] = {1ull << 32, (1ull << 30) + 1}; /* elements fit, 4-byte size wraps */
    craft_tensor(&e, 2, bytes_wrap, HIVE_TYPE_F32, 0, 64);
    EXPECT_REFUSED(&e, "overflows");
    const uint32_t bad_types[] = {4, 5, 31, 39, 40, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        char needle[48];
        snprintf(needle, sizeof needle, "unknown type id %" PRIu32, bad_types[i]);
        craft_tensor(&e, 2, ne2, bad_types[i], 0, 64);
        EXPECT_REFUSED(&e, needle);
    }
    const uint64_t q8[2] = {33, 1}; /* not a whole q8_0 block */
    craft_tensor(&e, 2, q8, HIVE_TYPE_Q8_0, 0, 64);
    EXPECT_REFUSED(&e, "block size");
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, 16, 96);
    EXPECT_REFUSED(&e, "not a multiple of the alignment");
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, 32, 64); /* 64 bytes from 32 = 96 > 64 */
    EXPECT_REFUSED(&e, "outside");
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, UINT64_MAX - 31, 64); /* offset + size wraps */
    EXPECT_REFUSED(&e, "outside");
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, 0, 63);
    EXPECT_REFUSED(&e, "outside");
    craft_tensor(&e, 2, ne2, HIVE_TYPE_F32, 0, 0); /* no data section at all */
    EXPECT_REFUSED(&e, "outside");

    /* overlapping tensors */
    e_header(&e, 3, 2, 0);
    const char *names[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        e_str(&e, names[i]);
        e_u32(&e, 1);
        e_u64(&e, 16);
        e_u32(&e, HIVE_TYPE_F32);
        e_u64(&e, (uint64_t)i * 32); /* 64 bytes each, 32 apart */
    }
    e_pad(&e, 32);
    for (int i = 0; i < 96; i++) e_u8(&e, 1);
    EXPECT_REFUSED(&e, "overlap");
}

/* ---- writer -> reader round trip ---- */

struct fill_ctx {
    int64_t row_len;
    int calls;
    int fail_at_row; /* -1: never */
};

/* Row r of a (rows, row_len) f32 tensor: r * 1000 + c. */
static int fill_rows(void *ctx, int64_t first_row, int64_t n_rows, void *dst, char *err) {
    struct fill_ctx *f = ctx;
    f->calls++;
    float *out = dst;
    for (int64_t r = 0; r < n_rows; r++) {
        if (first_row + r == f->fail_at_row) return hive_errf(err, HIVE_ERR_IO, "fill failed at row %" PRId64, first_row + r);
        for (int64_t c = 0; c < f->row_len; c++) out[r * f->row_len + c] = (float)((first_row + r) * 1000 + c);
    }
    return HIVE_OK;
}

static void check_all_kv_types(const hive_gguf *g) {
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f;
    int b;
    CHECK(hive_gguf_get_u32(g, "t.u8", &u32) == HIVE_OK && u32 == 200);
    CHECK(hive_gguf_get_i32(g, "t.i8", &i32) == HIVE_OK && i32 == -100);
    CHECK(hive_gguf_get_u32(g, "t.u16", &u32) == HIVE_OK && u32 == 65000);
    CHECK(hive_gguf_get_i32(g, "t.i16", &i32) == HIVE_OK && i32 == -32000);
    CHECK(hive_gguf_get_u32(g, "t.u32", &u32) == HIVE_OK && u32 == 4000000000u);
    CHECK(hive_gguf_get_i32(g, "t.i32", &i32) == HIVE_OK && i32 == -2000000000);
    CHECK(hive_gguf_get_f32(g, "t.f32", &f) == HIVE_OK && f == 1.5f);
    CHECK(hive_gguf_get_bool(g, "t.bool", &b) == HIVE_OK && b == 1);
    CHECK(hive_gguf_get_bool(g, "t.bool0", &b) == HIVE_OK && b == 0);
    CHECK(hive_gguf_get_u64(g, "t.u64", &u64) == HIVE_OK && u64 == 0xfedcba9876543210ull);
    CHECK(hive_gguf_get_i64(g, "t.i64", &i64) == HIVE_OK && i64 == -0x123456789abcdefll);
    CHECK(hive_gguf_get_f32(g, "t.f64", &f) == HIVE_OK && f == 0.25f);
    char s[64];
    CHECK(hive_gguf_get_cstr(g, "t.str", s, sizeof s) == HIVE_OK && !strcmp(s, "hello, gguf"));
    CHECK(hive_gguf_get_cstr(g, "t.str", s, 6) == HIVE_OK && !strcmp(s, "hello"));
    CHECK(hive_gguf_get_cstr(g, "t.empty", s, sizeof s) == HIVE_OK && !strcmp(s, ""));
    /* replaced value */
    CHECK(hive_gguf_get_u32(g, "t.replaced", &u32) == HIVE_OK && u32 == 2);
    /* conversions and refusals */
    CHECK(hive_gguf_get_i32(g, "t.u8", &i32) == HIVE_OK && i32 == 200);
    CHECK(hive_gguf_get_u64(g, "t.u16", &u64) == HIVE_OK && u64 == 65000);
    CHECK(hive_gguf_get_u32(g, "t.i8", &u32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_u64(g, "t.i64", &u64) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_i32(g, "t.u32", &i32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_u32(g, "t.u64", &u32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_i64(g, "t.u64", &i64) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_u32(g, "t.str", &u32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_u32(g, "t.f32", &u32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_bool(g, "t.u8", &b) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_u32(g, "no.such.key", &u32) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_f32(g, "t.i32", &f) == HIVE_OK && f == -2000000000.0f);
    struct hive_str hs;
    CHECK(hive_gguf_get_str(g, "t.u8", &hs) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_find_kv(g, "t.str") >= 0 && hive_gguf_find_kv(g, "t.st") < 0 && hive_gguf_find_kv(g, "") < 0);
    int64_t k = hive_gguf_find_kv(g, "t.i16");
    CHECK(k >= 0 && hive_gguf_kv_type(g, k) == HIVE_GGUF_INT16 && hive_str_eq(hive_gguf_kv_key(g, k), "t.i16"));
    CHECK(hive_gguf_kv_type(g, -1) == -1 && hive_gguf_kv_type(g, hive_gguf_n_kv(g)) == -1);

    /* arrays of every numeric type */
    static const int types[] = {HIVE_GGUF_UINT8, HIVE_GGUF_INT8, HIVE_GGUF_UINT16, HIVE_GGUF_INT16, HIVE_GGUF_UINT32,
                                HIVE_GGUF_INT32, HIVE_GGUF_FLOAT32, HIVE_GGUF_BOOL, HIVE_GGUF_UINT64, HIVE_GGUF_INT64,
                                HIVE_GGUF_FLOAT64};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        char key[32];
        snprintf(key, sizeof key, "arr.%s", hive_gguf_vtype_name(types[t]));
        int et;
        const void *data;
        uint64_t n;
        CHECKF(hive_gguf_get_array(g, key, &et, &data, &n) == HIVE_OK, "%s", key);
        CHECK(et == types[t] && n == 5);
        size_t es = hive_gguf_vtype_size(types[t]);
        for (uint64_t i = 0; i < 5 && et == types[t]; i++) {
            uint8_t want[8] = {0}, got[8] = {0};
            memcpy(got, (const uint8_t *)data + i * es, es);
            /* the writer was given element i = (i + 1) * 3 of that type, little-endian */
            uint64_t v = types[t] == HIVE_GGUF_BOOL ? (i & 1) : (i + 1) * 3;
            if (types[t] == HIVE_GGUF_FLOAT32) {
                float x = (float)v;
                memcpy(want, &x, 4);
            } else if (types[t] == HIVE_GGUF_FLOAT64) {
                double x = (double)v;
                memcpy(want, &x, 8);
            } else {
                memcpy(want, &v, es);
            }
            CHECKF(!memcmp(want, got, es), "%s[%" PRIu64 "]", key, i);
        }
        int64_t idx = hive_gguf_find_kv(g, key);
        CHECK(hive_gguf_kv_type(g, idx) == HIVE_GGUF_ARRAY && hive_gguf_kv_array_type(g, idx) == types[t] &&
              hive_gguf_kv_array_len(g, idx) == 5);
    }
    const struct hive_str *strs;
    uint64_t n;
    CHECK(hive_gguf_get_str_array(g, "arr.string", &strs, &n) == HIVE_OK && n == 4);
    if (n == 4) {
        CHECK(hive_str_eq(strs[0], "zero") && hive_str_eq(strs[1], "") && hive_str_eq(strs[2], "\xe2\x96\x81two") &&
              hive_str_eq(strs[3], "<0x0A>"));
    }
    CHECK(hive_gguf_get_str_array(g, "arr.empty", &strs, &n) == HIVE_OK && n == 0);
    int et;
    const void *data;
    CHECK(hive_gguf_get_array(g, "arr.string", &et, &data, &n) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_get_str_array(g, "arr.uint8", &strs, &n) == HIVE_ERR_INVAL);
}

static void set_all_kv_types(hive_gguf_writer *w) {
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    int64_t i64 = -0x123456789abcdefll;
    double f64 = 0.25;
    CHECK(hive_gguf_writer_set_u32(w, "t.replaced", 1) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.u8", HIVE_GGUF_UINT8, &u8) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.i8", HIVE_GGUF_INT8, &i8) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.u16", HIVE_GGUF_UINT16, &u16) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.i16", HIVE_GGUF_INT16, &i16) == HIVE_OK);
    CHECK(hive_gguf_writer_set_u32(w, "t.u32", 4000000000u) == HIVE_OK);
    CHECK(hive_gguf_writer_set_i32(w, "t.i32", -2000000000) == HIVE_OK);
    CHECK(hive_gguf_writer_set_f32(w, "t.f32", 1.5f) == HIVE_OK);
    CHECK(hive_gguf_writer_set_bool(w, "t.bool", 7) == HIVE_OK);
    CHECK(hive_gguf_writer_set_bool(w, "t.bool0", 0) == HIVE_OK);
    CHECK(hive_gguf_writer_set_str(w, "t.str", "hello, gguf") == HIVE_OK);
    CHECK(hive_gguf_writer_set_str(w, "t.empty", "") == HIVE_OK);
    CHECK(hive_gguf_writer_set_u64(w, "t.u64", 0xfedcba9876543210ull) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.i64", HIVE_GGUF_INT64, &i64) == HIVE_OK);
    CHECK(hive_gguf_writer_set_scalar(w, "t.f64", HIVE_GGUF_FLOAT64, &f64) == HIVE_OK);
    CHECK(hive_gguf_writer_set_u32(w, "t.replaced", 2) == HIVE_OK);
    static const int types[] = {HIVE_GGUF_UINT8, HIVE_GGUF_INT8, HIVE_GGUF_UINT16, HIVE_GGUF_INT16, HIVE_GGUF_UINT32,
                                HIVE_GGUF_INT32, HIVE_GGUF_FLOAT32, HIVE_GGUF_BOOL, HIVE_GGUF_UINT64, HIVE_GGUF_INT64,
                                HIVE_GGUF_FLOAT64};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint8_t buf[5 * 8];
        size_t es = hive_gguf_vtype_size(types[t]);
        for (uint64_t i = 0; i < 5; i++) {
            uint64_t v = types[t] == HIVE_GGUF_BOOL ? (i & 1) : (i + 1) * 3;
            if (types[t] == HIVE_GGUF_FLOAT32) {
                float x = (float)v;
                memcpy(buf + i * es, &x, 4);
            } else if (types[t] == HIVE_GGUF_FLOAT64) {
                double x = (double)v;
                memcpy(buf + i * es, &x, 8);
            } else {
                memcpy(buf + i * es, &v, es); /* little-endian host */
            }
        }
        char key[32];
        snprintf(key, sizeof key, "arr.%s", hive_gguf_vtype_name(types[t]));
        CHECK(hive_gguf_writer_set_array(w, key, types[t], buf, 5) == HIVE_OK);
    }
    const char *strs[] = {"zero", "", "\xe2\x96\x81two", "<0x0A>"};
    CHECK(hive_gguf_writer_set_str_array(w, "arr.string", strs, 4) == HIVE_OK);
    CHECK(hive_gguf_writer_set_str_array(w, "arr.empty", NULL, 0) == HIVE_OK);
}

/* Tensors: several types and ranks, one produced by a fill callback. */
struct tensors {
    float a[7];              /* f32 [7] (size not a multiple of 32: padding) */
    uint16_t b[4 * 3];       /* f16 [4, 3] */
    uint8_t c[2 * 34 * 2];   /* q8_0 [64, 2]: 2 blocks of 34 bytes per row */
    float d[2 * 3 * 2 * 2];  /* f32 [2, 3, 2, 2] */
};

static void make_tensors(struct tensors *t) {
    for (int i = 0; i < 7; i++) t->a[i] = (float)i - 3.25f;
    for (int i = 0; i < 12; i++) t->b[i] = hive_f32_to_f16((float)i / 8);
    for (int i = 0; i < (int)sizeof t->c; i++) t->c[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 24; i++) t->d[i] = (float)(i * i);
}

static void add_tensors(hive_gguf_writer *w, const struct tensors *t, struct fill_ctx *fc) {
    int64_t ne_a[1] = {7}, ne_b[2] = {4, 3}, ne_c[2] = {64, 2}, ne_d[4] = {2, 3, 2, 2}, ne_e[2] = {5, 1000};
    CHECK(hive_gguf_writer_add_tensor(w, "a", HIVE_TYPE_F32, 1, ne_a, t->a, sizeof t->a) == HIVE_OK);
    CHECK(hive_gguf_writer_add_tensor(w, "blk.0.b", HIVE_TYPE_F16, 2, ne_b, t->b, sizeof t->b) == HIVE_OK);
    CHECK(hive_gguf_writer_add_tensor(w, "c", HIVE_TYPE_Q8_0, 2, ne_c, t->c, sizeof t->c) == HIVE_OK);
    CHECK(hive_gguf_writer_add_tensor(w, "d", HIVE_TYPE_F32, 4, ne_d, t->d, sizeof t->d) == HIVE_OK);
    CHECK(hive_gguf_writer_add_tensor_fill(w, "e", HIVE_TYPE_F32, 2, ne_e, fill_rows, fc) == HIVE_OK);
}

static void check_tensors(const hive_gguf *g, const struct tensors *t, uint64_t align) {
    CHECK(hive_gguf_n_tensors(g) == 5);
    const struct hive_gguf_tensor *x;
    CHECK((x = hive_gguf_find_tensor(g, "a")) && x->type == HIVE_TYPE_F32 && x->n_dims == 1 && x->ne[0] == 7 &&
          x->ne[1] == 1 && x->n_bytes == sizeof t->a && !memcmp(x->data, t->a, sizeof t->a));
    CHECK((x = hive_gguf_find_tensor(g, "blk.0.b")) && x->type == HIVE_TYPE_F16 && x->n_dims == 2 && x->ne[1] == 3 &&
          !memcmp(x->data, t->b, sizeof t->b));
    CHECK((x = hive_gguf_find_tensor(g, "c")) && x->type == HIVE_TYPE_Q8_0 && x->n_bytes == sizeof t->c &&
          !memcmp(x->data, t->c, sizeof t->c));
    CHECK((x = hive_gguf_find_tensor(g, "d")) && x->n_dims == 4 && x->ne[3] == 2 && !memcmp(x->data, t->d, sizeof t->d));
    CHECK((x = hive_gguf_find_tensor(g, "e")) && x->ne[0] == 5 && x->ne[1] == 1000 && x->n_bytes == 5 * 1000 * 4);
    if (x) {
        int bad = 0;
        for (int64_t r = 0; r < 1000; r++)
            for (int64_t c = 0; c < 5; c++) {
                float v;
                memcpy(&v, (const char *)x->data + (r * 5 + c) * 4, 4);
                bad += v != (float)(r * 1000 + c);
            }
        CHECK(bad == 0);
    }
    CHECK(hive_gguf_find_tensor(g, "nope") == NULL && hive_gguf_find_tensor(g, "blk.0.") == NULL);
    CHECK(hive_gguf_tensor(g, -1) == NULL && hive_gguf_tensor(g, 5) == NULL && hive_gguf_tensor(g, 0) != NULL);
    CHECK(hive_gguf_alignment(g) == align && hive_gguf_data_offset(g) % align == 0);
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        x = hive_gguf_tensor(g, i);
        CHECK(x->offset % align == 0);
        CHECK((const char *)x->data == (const char *)hive_gguf_mapping(g) + hive_gguf_data_offset(g) + x->offset);
    }
    /* insertion order is kept */
    CHECK(hive_str_eq(hive_gguf_tensor(g, 0)->name, "a") && hive_str_eq(hive_gguf_tensor(g, 4)->name, "e"));
}

static void test_round_trip(void) {
    char path[128], path64[128], copy[128], err[HIVE_ERR_LEN];
    struct tensors t;
    struct fill_ctx fc = {.row_len = 5, .fail_at_row = -1};
    make_tensors(&t);

    hive_gguf_writer *w = hive_gguf_writer_new();
    set_all_kv_types(w);
    add_tensors(w, &t, &fc);
    CHECKF(hive_gguf_writer_write(w, tmp_path(path, sizeof path, "rt.gguf"), err) == HIVE_OK, "%s", err);
    CHECK(fc.calls >= 1);
    CHECK(access(tmp_path(copy, sizeof copy, "rt.gguf.tmp"), F_OK) != 0); /* renamed away */
    hive_gguf_writer_free(w);

    /* the header bytes, read independently of the reader */
    size_t n;
    uint8_t *bytes = check_read_file(path, &n);
    CHECK(bytes && n > 24 && !memcmp(bytes, "GGUF", 4) && bytes[4] == 3 && bytes[5] == 0 && bytes[8] == 5 && bytes[16] == 28);
    CHECK(n % 32 == 0); /* the last tensor is padded too */
    free(bytes);

    hive_gguf *g = NULL;
    CHECKF(hive_gguf_open(&g, path, err) == HIVE_OK, "%s", err);
    if (g) {
        CHECK(hive_gguf_version(g) == 3 && hive_gguf_n_kv(g) == 28 && !strcmp(hive_gguf_path(g), path));
        CHECK(hive_gguf_file_size(g) == n);
        /* keys in insertion order; the replaced key keeps its first place */
        CHECK(hive_str_eq(hive_gguf_kv_key(g, 0), "t.replaced") && hive_str_eq(hive_gguf_kv_key(g, 1), "t.u8"));
        check_all_kv_types(g);
        check_tensors(g, &t, 32);

        /* copy every key into a new writer, with alignment 64 */
        hive_gguf_writer *w2 = hive_gguf_writer_new();
        for (int64_t i = 0; i < hive_gguf_n_kv(g); i++) CHECK(hive_gguf_writer_copy_kv(w2, g, i) == HIVE_OK);
        CHECK(hive_gguf_writer_set_u32(w2, "general.alignment", 64) == HIVE_OK);
        fc.calls = 0;
        add_tensors(w2, &t, &fc);
        CHECKF(hive_gguf_writer_write(w2, tmp_path(path64, sizeof path64, "rt64.gguf"), err) == HIVE_OK, "%s", err);
        hive_gguf_writer_free(w2);
        hive_gguf *g2 = NULL;
        CHECKF(hive_gguf_open(&g2, path64, err) == HIVE_OK, "%s", err);
        if (g2) {
            CHECK(hive_gguf_n_kv(g2) == 29);
            check_all_kv_types(g2);
            check_tensors(g2, &t, 64);
            hive_gguf_close(g2);
        }
        hive_gguf_close(g);
    }
    remove(path64);

    /* writer errors: reported at once and again by write(), nothing written */
    w = hive_gguf_writer_new();
    int64_t ne[2] = {4, 3};
    CHECK(hive_gguf_writer_add_tensor(w, "x", HIVE_TYPE_F16, 2, ne, t.b, sizeof t.b - 2) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_writer_add_tensor(w, "x", HIVE_TYPE_F16, 2, ne, t.b, sizeof t.b) == HIVE_OK);
    CHECK(hive_gguf_writer_add_tensor(w, "x", HIVE_TYPE_F16, 2, ne, t.b, sizeof t.b) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_writer_add_tensor(w, "y", HIVE_TYPE_F16, 5, ne, t.b, sizeof t.b) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_writer_add_tensor(w, "z", 4, 2, ne, t.b, sizeof t.b) == HIVE_ERR_INVAL);
    int64_t ne33[1] = {33};
    CHECK(hive_gguf_writer_add_tensor(w, "q", HIVE_TYPE_Q8_0, 1, ne33, t.c, 34) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_writer_set_array(w, "s", HIVE_GGUF_STRING, t.a, 1) == HIVE_ERR_INVAL);
    CHECK(hive_gguf_writer_write(w, tmp_path(path, sizeof path, "bad.gguf"), err) == HIVE_ERR_INVAL);
    CHECKF(strstr(err, "bytes given"), "%s", err);
    CHECK(access(path, F_OK) != 0);
    hive_gguf_writer_free(w);

    /* a failing fill callback: error propagates, no file and no .tmp left */
    w = hive_gguf_writer_new();
    struct fill_ctx bad = {.row_len = 5, .fail_at_row = 700};
    int64_t ne_e[2] = {5, 1000};
    CHECK(hive_gguf_writer_add_tensor_fill(w, "e", HIVE_TYPE_F32, 2, ne_e, fill_rows, &bad) == HIVE_OK);
    CHECK(hive_gguf_writer_write(w, path, err) == HIVE_ERR_IO);
    CHECKF(strstr(err, "fill failed at row 700"), "%s", err);
    CHECK(access(path, F_OK) != 0);
    CHECK(access(tmp_path(copy, sizeof copy, "bad.gguf.tmp"), F_OK) != 0);
    hive_gguf_writer_free(w);

    /* an unwritable destination */
    w = hive_gguf_writer_new();
    CHECK(hive_gguf_writer_write(w, "/nonexistent-dir/x.gguf", err) == HIVE_ERR_IO);
    CHECKF(strstr(err, "/nonexistent-dir/x.gguf"), "%s", err);
    hive_gguf_writer_free(w);

    /* a file with no tensors and no padding after the metadata opens */
    w = hive_gguf_writer_new();
    CHECK(hive_gguf_writer_set_str(w, "general.architecture", "llama") == HIVE_OK);
    CHECK(hive_gguf_writer_write(w, path, err) == HIVE_OK);
    hive_gguf_writer_free(w);
    bytes = check_read_file(path, &n);
    size_t unpadded = 24 + 8 + strlen("general.architecture") + 4 + 8 + 5;
    CHECK(bytes && n == 96 && unpadded < n);
    if (bytes) {
        char e2[HIVE_ERR_LEN];
        CHECKF(open_image(bytes, unpadded, e2) == HIVE_OK, "%s", e2);
    }
    free(bytes);
    remove(path);
}

/* ---- hostile inputs derived from a valid file ---- */

static uint64_t rng_state = 0x243f6a8885a308d3ull; /* fixed seed: failures are reproducible */
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Touches every byte a caller could legally reach, so ASan sees any
 * pointer or length that escaped validation. */
static unsigned walk(const hive_gguf *g) {
    unsigned sum = 0;
    for (int64_t i = 0; i < hive_gguf_n_kv(g); i++) {
        struct hive_str k = hive_gguf_kv_key(g, i);
        for (uint64_t j = 0; j < k.len; j++) sum += (uint8_t)k.ptr[j];
        char key[80];
        if (k.len >= sizeof key) continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        uint64_t u;
        float f;
        struct hive_str s;
        const struct hive_str *strs;
        const void *data;
        uint64_t n;
        int et, b;
        if (hive_gguf_get_u64(g, key, &u) == HIVE_OK) sum += (unsigned)u;
        if (hive_gguf_get_f32(g, key, &f) == HIVE_OK) sum += f > 0;
        if (hive_gguf_get_bool(g, key, &b) == HIVE_OK) sum += (unsigned)b;
        if (hive_gguf_get_str(g, key, &s) == HIVE_OK)
            for (uint64_t j = 0; j < s.len; j++) sum += (uint8_t)s.ptr[j];
        if (hive_gguf_get_str_array(g, key, &strs, &n) == HIVE_OK)
            for (uint64_t a = 0; a < n; a++)
                for (uint64_t j = 0; j < strs[a].len; j++) sum += (uint8_t)strs[a].ptr[j];
        if (hive_gguf_get_array(g, key, &et, &data, &n) == HIVE_OK) {
            size_t bytes = n * hive_gguf_vtype_size(et);
            for (size_t j = 0; j < bytes; j++) sum += ((const uint8_t *)data)[j];
        }
    }
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        for (uint64_t j = 0; j < t->name.len; j++) sum += (uint8_t)t->name.ptr[j];
        if (t->n_bytes) sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->n_bytes - 1];
    }
    return sum;
}

static int open_walk(const uint8_t *img, size_t n, char *err, unsigned *sum) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, img, n);
    hive_gguf *g = NULL;
    int rc = hive_gguf_open_buffer(&g, "fuzz.gguf", n ? copy : NULL, n, err);
    if (rc == HIVE_OK) {
        *sum += walk(g);
        hive_gguf_close(g);
    }
    free(copy);
    return rc;
}

static void test_hostile(int small) {
    char path[128], err[HIVE_ERR_LEN];
    struct tensors t;
    struct fill_ctx fc = {.row_len = 5, .fail_at_row = -1};
    make_tensors(&t);
    hive_gguf_writer *w = hive_gguf_writer_new();
    set_all_kv_types(w);
    int64_t ne_a[1] = {7}, ne_b[2] = {4, 3}, ne_c[2] = {64, 2}, ne_e[2] = {5, 20};
    hive_gguf_writer_add_tensor(w, "a", HIVE_TYPE_F32, 1, ne_a, t.a, sizeof t.a);
    hive_gguf_writer_add_tensor(w, "blk.0.b", HIVE_TYPE_F16, 2, ne_b, t.b, sizeof t.b);
    hive_gguf_writer_add_tensor(w, "c", HIVE_TYPE_Q8_0, 2, ne_c, t.c, sizeof t.c);
    hive_gguf_writer_add_tensor_fill(w, "e", HIVE_TYPE_F32, 2, ne_e, fill_rows, &fc);
    CHECKF(hive_gguf_writer_write(w, tmp_path(path, sizeof path, "small.gguf"), err) == HIVE_OK, "%s", err);
    hive_gguf_writer_free(w);
    size_t n;
    uint8_t *img = check_read_file(path, &n);
    CHECK(img != NULL);
    if (!img) return;

    /* where the last tensor's data ends: any shorter prefix must be refused */
    hive_gguf *g = NULL;
    uint64_t data_end = 0;
    uint8_t *exact = malloc(n); /* exactly n bytes, so ASan sees any read past the end */
    if (exact) memcpy(exact, img, n);
    CHECK(exact && hive_gguf_open_buffer(&g, "small", exact, n, err) == HIVE_OK);
    if (g) {
        for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
            const struct hive_gguf_tensor *x = hive_gguf_tensor(g, i);
            if (hive_gguf_data_offset(g) + x->offset + x->n_bytes > data_end)
                data_end = hive_gguf_data_offset(g) + x->offset + x->n_bytes;
        }
        hive_gguf_close(g);
    }
    free(exact);
    CHECK(data_end > 0 && data_end <= n);

    /* (a) every truncation */
    unsigned sum = 0;
    int refused = 0;
    for (size_t len = 0; len < n; len++) {
        int rc = open_walk(img, len, err, &sum);
        if (len < data_end) {
            CHECKF(rc == HIVE_ERR_FORMAT, "truncated to %zu of %zu opened", len, n);
            refused += rc == HIVE_ERR_FORMAT;
        } else {
            CHECKF(rc == HIVE_OK, "truncated to %zu (only padding removed): %s", len, err);
        }
    }
    CHECK(refused == (int)data_end);

    /* the same through real files (mmap path) at a few lengths */
    for (size_t len = 0; len < n; len += n / 7 + 1) {
        char tp[128];
        FILE *f = fopen(tmp_path(tp, sizeof tp, "trunc.gguf"), "wb");
        fwrite(img, 1, len, f);
        fclose(f);
        g = NULL;
        int rc = hive_gguf_open(&g, tp, err);
        CHECK(rc == HIVE_ERR_FORMAT && g == NULL && strstr(err, tp));
        remove(tp);
    }

    /* (b) random byte flips; a flip that leaves a valid file must still be safe to walk */
    int iters = small ? 3000 : 30000, opened = 0;
    uint8_t *mut = malloc(n);
    for (int it = 0; it < iters; it++) {
        memcpy(mut, img, n);
        int flips = 1 + (int)(rng_next() % 4);
        for (int k = 0; k < flips; k++) {
            uint64_t r = rng_next();
            /* bias towards the header, where structure lives */
            size_t pos = (r & 1) ? (size_t)((r >> 8) % n) : (size_t)((r >> 8) % (n < 600 ? n : 600));
            uint8_t v = (uint8_t)(r >> 40);
            switch ((r >> 50) % 4) {
            case 0: mut[pos] ^= (uint8_t)(1u << (v & 7)); break;
            case 1: mut[pos] = v; break;
            case 2: mut[pos] = 0xff; break;
            default: mut[pos] = 0; break;
            }
        }
        err[0] = 0;
        int rc = open_walk(mut, n, err, &sum);
        CHECKF(rc == HIVE_OK || rc == HIVE_ERR_FORMAT, "flip iteration %d: rc %d %s", it, rc, err);
        if (rc == HIVE_OK) opened++;
        else CHECKF(strstr(err, "fuzz.gguf") && !strchr(err, '\n'), "message '%s'", err);
    }
    /* most flips land in tensor data or values and leave a valid file;
     * many land in structure and must be refused */
    CHECKF(opened > iters / 10 && opened < iters, "opened %d of %d", opened, iters);
    printf("fuzz: %zu truncations, %d flipped images (%d still valid), checksum %u\n", n, iters, opened, sum);
    free(mut);
    free(img);
    remove(path);
}

/* ---- the real files ---- */

static void test_shared_models(void) {
    char path[512], err[HIVE_ERR_LEN];
    if (!shared_dir()) {
        printf("SKIP part: ../shared not found\n");
        return;
    }
    hive_gguf *g = NULL;
    CHECKF(hive_gguf_open(&g, shared_path(path, sizeof path, "models/stories260K.gguf"), err) == HIVE_OK, "%s", err);
    if (g) {
        uint32_t v;
        char s[32];
        float eps;
        CHECK(hive_gguf_version(g) == 3 && hive_gguf_n_tensors(g) == 48 && hive_gguf_n_kv(g) == 19);
        CHECK(hive_gguf_get_cstr(g, "general.architecture", s, sizeof s) == HIVE_OK && !strcmp(s, "llama"));
        CHECK(hive_gguf_get_u32(g, "llama.block_count", &v) == HIVE_OK && v == 5);
        CHECK(hive_gguf_get_u32(g, "llama.embedding_length", &v) == HIVE_OK && v == 64);
        CHECK(hive_gguf_get_u32(g, "llama.feed_forward_length", &v) == HIVE_OK && v == 172);
        CHECK(hive_gguf_get_u32(g, "llama.attention.head_count", &v) == HIVE_OK && v == 8);
        CHECK(hive_gguf_get_u32(g, "llama.attention.head_count_kv", &v) == HIVE_OK && v == 4);
        CHECK(hive_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v) == HIVE_OK && v == 1);
        CHECK(hive_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) == HIVE_OK && fabsf(eps - 1e-5f) < 1e-9f);
        const struct hive_str *tok;
        uint64_t n;
        CHECK(hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &tok, &n) == HIVE_OK && n == 512);
        if (n == 512) CHECK(hive_str_eq(tok[0], "<unk>") && hive_str_eq(tok[1], "<s>") && hive_str_eq(tok[3], "<0x00>"));
        int et;
        const void *data;
        CHECK(hive_gguf_get_array(g, "tokenizer.ggml.scores", &et, &data, &n) == HIVE_OK && et == HIVE_GGUF_FLOAT32 && n == 512);
        const struct hive_gguf_tensor *t = hive_gguf_find_tensor(g, "token_embd.weight");
        CHECK(t && t->type == HIVE_TYPE_F32 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512 &&
              t->n_bytes == 64 * 512 * 4);
        t = hive_gguf_find_tensor(g, "blk.0.ffn_down.weight");
        CHECK(t && t->ne[0] == 172 && t->ne[1] == 64);
        /* the data pointer agrees with an independent read of the file */
        if (t) {
            size_t fn;
            uint8_t *bytes = check_read_file(path, &fn);
            uint64_t at = hive_gguf_data_offset(g) + t->offset;
            CHECK(bytes && fn == hive_gguf_file_size(g) && at + t->n_bytes <= fn && !memcmp(bytes + at, t->data, t->n_bytes));
            free(bytes);
        }
        CHECK(hive_gguf_find_tensor(g, "blk.4.ffn_norm.weight") && !hive_gguf_find_tensor(g, "blk.5.ffn_norm.weight"));
        hive_gguf_close(g);
    }

    CHECKF(hive_gguf_open(&g, shared_path(path, sizeof path, "models/llama-2-tiny-random.gguf"), err) == HIVE_OK, "%s", err);
    if (g) {
        uint32_t v;
        const struct hive_str *tok;
        uint64_t n;
        CHECK(hive_gguf_get_u32(g, "llama.embedding_length", &v) == HIVE_OK && v == 8);
        CHECK(hive_gguf_get_u32(g, "general.file_type", &v) == HIVE_OK && v == 1);
        CHECK(hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &tok, &n) == HIVE_OK && n == 32000);
        const struct hive_gguf_tensor *t = hive_gguf_find_tensor(g, "output.weight");
        CHECK(t && t->type == HIVE_TYPE_F16 && t->ne[0] == 8 && t->ne[1] == 32000 && t->n_bytes == 8 * 32000 * 2);
        CHECK(hive_gguf_n_tensors(g) == 12);
        hive_gguf_close(g);
    }

    g = (hive_gguf *)1;
    int rc = hive_gguf_open(&g, shared_path(path, sizeof path, "models/bad/tinyllamas-stories-260k-f32.ggufv1.gguf"), err);
    CHECK(rc == HIVE_ERR_FORMAT && g == NULL);
    CHECKF(strstr(err, "version 1") && strstr(err, "tinyllamas-stories-260k-f32.ggufv1.gguf"), "%s", err);
}

static void test_open_errors(void) {
    char path[128], err[HIVE_ERR_LEN];
    hive_gguf *g = (hive_gguf *)1;
    CHECK(hive_gguf_open(&g, "/nonexistent/model.gguf", err) == HIVE_ERR_IO && g == NULL);
    CHECKF(strstr(err, "/nonexistent/model.gguf"), "%s", err);
    CHECK(hive_gguf_open(&g, tmpdir, err) == HIVE_ERR_IO && g == NULL);
    CHECKF(strstr(err, "not a regular file"), "%s", err);
    FILE *f = fopen(tmp_path(path, sizeof path, "empty.gguf"), "wb");
    fclose(f);
    CHECK(hive_gguf_open(&g, path, err) == HIVE_ERR_FORMAT && g == NULL);
    CHECKF(strstr(err, path) && strstr(err, "empty"), "%s", err);
    f = fopen(path, "wb");
    fputs("{\"not\": \"gguf\", \"but\": \"long enough to have a header\"}", f);
    fclose(f);
    CHECK(hive_gguf_open(&g, path, err) == HIVE_ERR_FORMAT && g == NULL);
    CHECKF(strstr(err, "bad magic"), "%s", err);
    remove(path);
    hive_gguf_close(NULL);
}

/* ---- the model maker ---- */

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *pa = check_read_file(a, &na), *pb = check_read_file(b, &nb);
    int eq = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return eq;
}

/* Mean and standard deviation of a tensor, dequantized. */
static void tensor_stats(const struct hive_gguf_tensor *t, double *mean, double *std) {
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    uint64_t row_bytes = t->n_bytes / (uint64_t)rows;
    float *row = malloc((size_t)t->ne[0] * sizeof *row);
    double s = 0, ss = 0;
    for (int64_t r = 0; r < rows; r++) {
        hive_dequantize_row(t->type, (const uint8_t *)t->data + (uint64_t)r * row_bytes, row, t->ne[0]);
        for (int64_t c = 0; c < t->ne[0]; c++) {
            s += row[c];
            ss += (double)row[c] * row[c];
        }
    }
    double n = (double)rows * (double)t->ne[0];
    *mean = s / n;
    *std = sqrt(ss / n - *mean * *mean);
    free(row);
}

/* The tensor list llama.cpp expects for each arch, written out by hand. */
static void check_model_layout(const hive_gguf *g, const char *arch, int64_t dim, int64_t n_layers, int64_t n_heads,
                               int64_t n_kv, int64_t ff, int64_t vocab) {
    int64_t hd = dim / n_heads;
    int qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
    int64_t want = 2 + !qwen3 + n_layers * (9 + 3 * qwen2 + 2 * qwen3);
    CHECKF(hive_gguf_n_tensors(g) == want, "%s: %" PRId64 " tensors, want %" PRId64, arch, hive_gguf_n_tensors(g), want);
    struct { const char *name; int64_t ne0, ne1; } t[] = {
        {"token_embd.weight", dim, vocab}, {"output_norm.weight", dim, 1}, {"blk.%d.attn_norm.weight", dim, 1},
        {"blk.%d.attn_q.weight", dim, n_heads * hd}, {"blk.%d.attn_k.weight", dim, n_kv * hd},
        {"blk.%d.attn_v.weight", dim, n_kv * hd}, {"blk.%d.attn_output.weight", n_heads * hd, dim},
        {"blk.%d.ffn_norm.weight", dim, 1}, {"blk.%d.ffn_gate.weight", dim, ff}, {"blk.%d.ffn_up.weight", dim, ff},
        {"blk.%d.ffn_down.weight", ff, dim},
        {qwen3 ? "token_embd.weight" : "output.weight", dim, vocab},
        {qwen2 ? "blk.%d.attn_q.bias" : "token_embd.weight", qwen2 ? n_heads * hd : dim, qwen2 ? 1 : vocab},
        {qwen2 ? "blk.%d.attn_v.bias" : "token_embd.weight", qwen2 ? n_kv * hd : dim, qwen2 ? 1 : vocab},
        {qwen3 ? "blk.%d.attn_q_norm.weight" : "token_embd.weight", qwen3 ? hd : dim, qwen3 ? 1 : vocab},
        {qwen3 ? "blk.%d.attn_k_norm.weight" : "token_embd.weight", qwen3 ? hd : dim, qwen3 ? 1 : vocab},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int64_t l = 0; l < n_layers; l++) {
            char name[64];
            snprintf(name, sizeof name, t[i].name, (int)l);
            const struct hive_gguf_tensor *x = hive_gguf_find_tensor(g, name);
            CHECKF(x && x->ne[0] == t[i].ne0 && x->ne[1] == t[i].ne1 && x->n_dims == (t[i].ne1 == 1 ? 1 : 2), "%s %s", arch, name);
            if (x && x->n_dims == 1) CHECKF(x->type == HIVE_TYPE_F32, "%s: vectors stay f32", name);
        }
    CHECK(!qwen3 || hive_gguf_find_tensor(g, "output.weight") == NULL);
    CHECK(qwen2 || hive_gguf_find_tensor(g, "blk.0.attn_k.bias") == NULL);
    char s[32], key[96];
    uint32_t v;
    CHECK(hive_gguf_get_cstr(g, "general.architecture", s, sizeof s) == HIVE_OK && !strcmp(s, arch));
    const struct { const char *suffix; int64_t want; } hp[] = {
        {"embedding_length", dim}, {"block_count", n_layers}, {"attention.head_count", n_heads},
        {"attention.head_count_kv", n_kv}, {"feed_forward_length", ff}, {"vocab_size", vocab}};
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        snprintf(key, sizeof key, "%s.%s", arch, hp[i].suffix);
        CHECKF(hive_gguf_get_u32(g, key, &v) == HIVE_OK && v == hp[i].want, "%s", key);
    }
    float theta, eps;
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    CHECK(hive_gguf_get_f32(g, key, &theta) == HIVE_OK && theta == (strcmp(arch, "llama") ? 1e6f : 1e4f));
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    CHECK(hive_gguf_get_f32(g, key, &eps) == HIVE_OK && eps == (strcmp(arch, "llama") ? 1e-6f : 1e-5f));
    CHECK(!strcmp(arch, "llama") == (hive_gguf_get_u32(g, "llama.rope.dimension_count", &v) == HIVE_OK && v == hd));
    const struct hive_str *tok;
    uint64_t n;
    CHECK(hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &tok, &n) == HIVE_OK && (int64_t)n == vocab);
}

static void test_mkmodel(int small) {
    char p1[128], p2[128], p3[128], err[HIVE_ERR_LEN];
    tmp_path(p1, sizeof p1, "mk1.gguf");
    tmp_path(p2, sizeof p2, "mk2.gguf");
    tmp_path(p3, sizeof p3, "mk3.gguf");
    static const char *arches[] = {"llama", "qwen2", "qwen3"};
    for (int a = 0; a < 3; a++) {
        struct hive_mkmodel_stats st = {0};
        struct hive_mkmodel_opts o = {.arch = arches[a], .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                      .ff = 96, .vocab = 300, .seed = 7, .stats = &st};
        CHECKF(hive_mkmodel(&o, p1, err) == HIVE_OK, "%s", err);
        hive_gguf *g = NULL;
        CHECKF(hive_gguf_open(&g, p1, err) == HIVE_OK, "%s", err);
        if (!g) continue;
        check_model_layout(g, arches[a], 64, 2, 4, 2, 96, 300);
        CHECK(st.n_tensors == hive_gguf_n_tensors(g) && st.n_bytes == hive_gguf_file_size(g));
        double mean, std;
        tensor_stats(hive_gguf_find_tensor(g, "token_embd.weight"), &mean, &std);
        CHECKF(fabs(mean) < 0.002 && fabs(std - 0.02) < 0.001, "token_embd mean %g std %g", mean, std);
        tensor_stats(hive_gguf_find_tensor(g, "blk.1.ffn_norm.weight"), &mean, &std);
        CHECKF(fabs(mean - 1) < 0.01 && std > 0.01 && std < 0.03, "ffn_norm mean %g std %g", mean, std);
        hive_gguf_close(g);
    }

    /* built-in vocab: unique pieces, specials, byte tokens, scores */
    struct hive_mkmodel_opts o = {.dim = 32, .n_layers = 1, .n_heads = 2, .vocab = 2000, .seed = 3};
    CHECKF(hive_mkmodel(&o, p1, err) == HIVE_OK, "%s", err);
    hive_gguf *g = NULL;
    CHECKF(hive_gguf_open(&g, p1, err) == HIVE_OK, "%s", err);
    if (g) {
        const struct hive_str *tok;
        uint64_t n;
        int et;
        const void *types, *scores;
        char model[16];
        uint32_t v;
        int b;
        CHECK(hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &tok, &n) == HIVE_OK && n == 2000);
        CHECK(hive_gguf_get_cstr(g, "tokenizer.ggml.model", model, sizeof model) == HIVE_OK && !strcmp(model, "llama"));
        CHECK(hive_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &v) == HIVE_OK && v == 1);
        CHECK(hive_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &v) == HIVE_OK && v == 2);
        CHECK(hive_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &v) == HIVE_OK && v == 0);
        CHECK(hive_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == HIVE_OK && b == 1);
        CHECK(hive_gguf_get_array(g, "tokenizer.ggml.token_type", &et, &types, &n) == HIVE_OK && et == HIVE_GGUF_INT32 && n == 2000);
        CHECK(hive_gguf_get_array(g, "tokenizer.ggml.scores", &et, &scores, &n) == HIVE_OK && et == HIVE_GGUF_FLOAT32 && n == 2000);
        if (n == 2000) {
            CHECK(hive_str_eq(tok[0], "<unk>") && hive_str_eq(tok[1], "<s>") && hive_str_eq(tok[2], "</s>"));
            CHECK(hive_str_eq(tok[3], "<0x00>") && hive_str_eq(tok[3 + 0x41], "<0x41>") && hive_str_eq(tok[258], "<0xFF>"));
            int32_t ty[4];
            memcpy(&ty[0], (const int32_t *)types + 0, 4);
            memcpy(&ty[1], (const int32_t *)types + 1, 4);
            memcpy(&ty[2], (const int32_t *)types + 100, 4);
            memcpy(&ty[3], (const int32_t *)types + 1000, 4);
            CHECK(ty[0] == 2 && ty[1] == 3 && ty[2] == 6 && ty[3] == 1);
            CHECK(hive_str_eq(tok[259], "\xe2\x96\x81")); /* the word boundary itself */
            int dups = 0, word_starts = 0;
            for (uint64_t i = 0; i < n; i++) {
                word_starts += tok[i].len > 3 && !memcmp(tok[i].ptr, "\xe2\x96\x81", 3);
                for (uint64_t j = i + 1; j < n; j++)
                    dups += tok[i].len == tok[j].len && !memcmp(tok[i].ptr, tok[j].ptr, tok[i].len);
            }
            CHECK(dups == 0 && word_starts > 100);
            float s1, s2;
            memcpy(&s1, (const float *)scores + 300, 4);
            memcpy(&s2, (const float *)scores + 1999, 4);
            CHECK(s1 > s2);
        }
        hive_gguf_close(g);
    }

    /* same seed -> same bytes, whatever the thread count; another seed differs */
    o = (struct hive_mkmodel_opts){.type = "q8_0", .dim = 64, .n_layers = 2, .n_heads = 4, .ff = 128, .seed = 11, .n_threads = 1};
    CHECKF(hive_mkmodel(&o, p1, err) == HIVE_OK, "%s", err);
    o.n_threads = 3;
    CHECKF(hive_mkmodel(&o, p2, err) == HIVE_OK, "%s", err);
    CHECK(files_equal(p1, p2));
    o.seed = 12;
    CHECKF(hive_mkmodel(&o, p2, err) == HIVE_OK, "%s", err);
    CHECK(!files_equal(p1, p2));

    /* a quantized model holds the same numbers as the f32 model of the same seed */
    static const struct { const char *type; int id; double tol; } quants[] = {
        {"f16", HIVE_TYPE_F16, 1e-4}, {"bf16", HIVE_TYPE_BF16, 5e-4}, {"q8_0", HIVE_TYPE_Q8_0, 1e-3},
        {"q4_0", HIVE_TYPE_Q4_0, 0.02}, {"q5_1", HIVE_TYPE_Q5_1, 0.01}, {"q4_k", HIVE_TYPE_Q4_K, 0.02},
        {"q6_k", HIVE_TYPE_Q6_K, 0.005}, {"q2_k", HIVE_TYPE_Q2_K, 0.05},
    };
    o = (struct hive_mkmodel_opts){.type = "f32", .dim = 256, .n_layers = 1, .n_heads = 4, .ff = 256, .seed = 5};
    CHECKF(hive_mkmodel(&o, p1, err) == HIVE_OK, "%s", err);
    hive_gguf *gf = NULL;
    CHECKF(hive_gguf_open(&gf, p1, err) == HIVE_OK, "%s", err);
    for (size_t q = 0; gf && q < sizeof quants / sizeof quants[0]; q++) {
        if (hive_type_block_size(quants[q].id) <= 0) {
            printf("note: %s not in this build yet, skipped\n", quants[q].type);
            continue;
        }
        o.type = quants[q].type;
        CHECKF(hive_mkmodel(&o, p2, err) == HIVE_OK, "%s: %s", quants[q].type, err);
        hive_gguf *gq = NULL;
        if (hive_gguf_open(&gq, p2, err) != HIVE_OK) continue;
        const struct hive_gguf_tensor *a = hive_gguf_find_tensor(gf, "blk.0.ffn_up.weight");
        const struct hive_gguf_tensor *b = hive_gguf_find_tensor(gq, "blk.0.ffn_up.weight");
        CHECK(a && b && b->type == quants[q].id && a->type == HIVE_TYPE_F32);
        if (a && b) {
            float *row = malloc(256 * sizeof *row);
            double max_err = 0;
            for (int64_t r = 0; r < b->ne[1]; r++) {
                hive_dequantize_row(b->type, (const uint8_t *)b->data + (uint64_t)r * (b->n_bytes / (uint64_t)b->ne[1]), row, 256);
                for (int c = 0; c < 256; c++) {
                    float want;
                    memcpy(&want, (const float *)a->data + r * 256 + c, 4);
                    if (fabs(row[c] - want) > max_err) max_err = fabs(row[c] - want);
                }
            }
            CHECKF(max_err < quants[q].tol, "%s: max error %g", quants[q].type, max_err);
            free(row);
        }
        const struct hive_gguf_tensor *norm = hive_gguf_find_tensor(gq, "output_norm.weight");
        CHECK(norm && norm->type == HIVE_TYPE_F32 && !memcmp(norm->data, hive_gguf_find_tensor(gf, "output_norm.weight")->data, 256 * 4));
        hive_gguf_close(gq);
    }
    hive_gguf_close(gf);

    /* Q4_K_M on the reference shape: ../shared/reference says llama.cpp made
     * synth-llama-q4_k_m.gguf with Q4_K x25 and Q6_K x5 */
    if (hive_type_block_size(HIVE_TYPE_Q4_K) > 0 && hive_type_block_size(HIVE_TYPE_Q6_K) > 0) {
        o = (struct hive_mkmodel_opts){.type = "q4_k_m", .n_threads = small ? 1 : 0};
        CHECKF(hive_mkmodel(&o, p1, err) == HIVE_OK, "%s", err);
        if (hive_gguf_open(&g, p1, err) == HIVE_OK) {
            int n4 = 0, n6 = 0;
            for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
                n4 += hive_gguf_tensor(g, i)->type == HIVE_TYPE_Q4_K;
                n6 += hive_gguf_tensor(g, i)->type == HIVE_TYPE_Q6_K;
            }
            CHECKF(n4 == 25 && n6 == 5, "q4_k_m: %d q4_k, %d q6_k", n4, n6);
            CHECK(hive_gguf_find_tensor(g, "output.weight")->type == HIVE_TYPE_Q6_K);
            CHECK(hive_gguf_find_tensor(g, "blk.3.ffn_down.weight")->type == HIVE_TYPE_Q6_K);
            CHECK(hive_gguf_find_tensor(g, "blk.0.attn_v.weight")->type == HIVE_TYPE_Q4_K);
            uint32_t ft;
            CHECK(hive_gguf_get_u32(g, "general.file_type", &ft) == HIVE_OK && ft == 15);
            check_model_layout(g, "llama", 256, 4, 8, 4, 768, 512);
            hive_gguf_close(g);
        }
    }

    /* vocab copied from the real model */
    char spath[512];
    if (shared_dir()) {
        o = (struct hive_mkmodel_opts){.dim = 32, .n_layers = 1, .n_heads = 2, .ff = 64,
                                       .vocab_from = shared_path(spath, sizeof spath, "models/stories260K.gguf")};
        CHECKF(hive_mkmodel(&o, p3, err) == HIVE_OK, "%s", err);
        hive_gguf *src = NULL;
        g = NULL;
        if (hive_gguf_open(&g, p3, err) == HIVE_OK && hive_gguf_open(&src, spath, err) == HIVE_OK) {
            const struct hive_str *a, *b;
            uint64_t na, nb;
            CHECK(hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &a, &na) == HIVE_OK);
            CHECK(hive_gguf_get_str_array(src, "tokenizer.ggml.tokens", &b, &nb) == HIVE_OK);
            CHECK(na == 512 && nb == 512);
            int same = 1;
            for (uint64_t i = 0; i < na && na == nb; i++) same &= a[i].len == b[i].len && !memcmp(a[i].ptr, b[i].ptr, a[i].len);
            CHECK(same);
            uint32_t v;
            CHECK(hive_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &v) == HIVE_OK && v == 4294967295u);
            CHECK(hive_gguf_find_tensor(g, "token_embd.weight")->ne[1] == 512);
        }
        hive_gguf_close(g);
        hive_gguf_close(src);
        o.vocab = 1000;
        CHECK(hive_mkmodel(&o, p3, err) == HIVE_ERR_INVAL && strstr(err, "disagrees"));
    }

    /* bad options say what is wrong */
    static const struct { struct hive_mkmodel_opts o; int rc; const char *needle; } bad[] = {
        {{.dim = 100, .n_heads = 3}, HIVE_ERR_INVAL, "not divisible by heads"},
        {{.dim = 80, .n_heads = 4, .type = "q4_0", .ff = 64}, HIVE_ERR_INVAL, "dim 80 is not a multiple of the q4_0 block size 32"},
        {{.dim = 256, .ff = 100, .type = "q4_k"}, HIVE_ERR_INVAL, "ff 100 is not a multiple"},
        {{.n_heads = 8, .n_kv_heads = 3}, HIVE_ERR_INVAL, "kv-heads"},
        {{.vocab = 100}, HIVE_ERR_INVAL, "too small"},
        {{.arch = "gpt9"}, HIVE_ERR_INVAL, "unknown arch"},
        {{.type = "q8_1"}, HIVE_ERR_INVAL, "unknown type"},
        {{.dim = -4}, HIVE_ERR_INVAL, "dim -4 is out of range"},
        {{.n_layers = 100000}, HIVE_ERR_INVAL, "layers"},
        {{.dim = 64, .n_heads = 4, .head_dim = 15}, HIVE_ERR_INVAL, "odd"},
        {{.vocab_from = "/nonexistent.gguf"}, HIVE_ERR_IO, "/nonexistent.gguf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = hive_mkmodel(&bad[i].o, p3, err);
        CHECKF(rc == bad[i].rc && strstr(err, bad[i].needle), "case %zu: rc %d '%s'", i, rc, err);
    }
    CHECK(hive_mkmodel_preset(&o, "tinyllama-1.1b", err) == HIVE_OK && o.dim == 2048 && o.n_layers == 22 &&
          o.n_kv_heads == 4 && o.ff == 5632 && o.vocab == 32000);
    CHECK(hive_mkmodel_preset(&o, "gpt-5", err) == HIVE_ERR_INVAL && strstr(err, "gpt-5"));
}

int main(void) {
    const char *scale = getenv("HIVE_TEST_SCALE");
    int small = scale && !strcmp(scale, "small");
    if (!check_temp_dir(tmpdir, sizeof tmpdir, "hive-gguf-")) return 1;
    test_open_errors();
    test_crafted();
    test_round_trip();
    test_hostile(small);
    test_shared_models();
    test_mkmodel(small);
    remove_tmp_files();
    return check_result("test_gguf");
}
