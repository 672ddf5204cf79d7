/* gguf.h - GGUF reader (mmap, versions 2 and 3) and writer.
 *
 * Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
 *   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | kv... | tensor infos... | pad | data
 * Every count, length, offset and alignment is checked against the file size
 * before use; a bad file yields HIVE_ERR_FORMAT and a one-line message naming
 * the file and the problem. */
#ifndef HIVE_GGUF_H
#define HIVE_GGUF_H

#include <stdint.h>
#include <stddef.h>

#include "hive/core.h"

enum hive_gguf_vtype {
    HIVE_GGUF_UINT8 = 0, HIVE_GGUF_INT8 = 1, HIVE_GGUF_UINT16 = 2, HIVE_GGUF_INT16 = 3,
    HIVE_GGUF_UINT32 = 4, HIVE_GGUF_INT32 = 5, HIVE_GGUF_FLOAT32 = 6, HIVE_GGUF_BOOL = 7,
    HIVE_GGUF_STRING = 8, HIVE_GGUF_ARRAY = 9, HIVE_GGUF_UINT64 = 10, HIVE_GGUF_INT64 = 11,
    HIVE_GGUF_FLOAT64 = 12,
};

#define HIVE_GGUF_MAX_DIMS 4
#define HIVE_GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the mapping: NOT NUL-terminated. */
struct hive_str {
    const char *ptr;
    uint64_t len;
};

struct hive_gguf_tensor {
    struct hive_str name;
    int type;                          /* enum hive_type value (ggml numbering) */
    int n_dims;
    int64_t ne[HIVE_GGUF_MAX_DIMS];    /* ne[0] is the contiguous (row) dimension; unused dims = 1 */
    uint64_t offset;                   /* relative to the start of the data section */
    uint64_t n_bytes;                  /* size of the data, from type and shape */
    const void *data;                  /* points into the mapping */
};

typedef struct hive_gguf hive_gguf;

/* Opens and validates a file. On failure *out is NULL and err says why. */
int hive_gguf_open(hive_gguf **out, const char *path, char *err);
void hive_gguf_close(hive_gguf *g);

uint32_t hive_gguf_version(const hive_gguf *g);
const char *hive_gguf_path(const hive_gguf *g);
uint64_t hive_gguf_file_size(const hive_gguf *g);
uint64_t hive_gguf_alignment(const hive_gguf *g);
uint64_t hive_gguf_data_offset(const hive_gguf *g); /* file offset of the data section */
const void *hive_gguf_mapping(const hive_gguf *g); /* whole file */

/* Opens a GGUF image that is already in memory. data is NOT copied and must
 * outlive g; name is used in messages. Same checks as hive_gguf_open. */
int hive_gguf_open_buffer(hive_gguf **out, const char *name, const void *data, uint64_t size, char *err);

/* 1 if s holds exactly the bytes of the C string c. */
int hive_str_eq(struct hive_str s, const char *c);
/* "uint32", "string", "array", ... or "unknown". */
const char *hive_gguf_vtype_name(int vtype);
/* Bytes of one value of a fixed-size vtype; 0 for STRING, ARRAY, unknown. */
size_t hive_gguf_vtype_size(int vtype);

/* ---- metadata ---- */
int64_t hive_gguf_n_kv(const hive_gguf *g);
int64_t hive_gguf_find_kv(const hive_gguf *g, const char *key); /* index or -1 */
struct hive_str hive_gguf_kv_key(const hive_gguf *g, int64_t i);
int hive_gguf_kv_type(const hive_gguf *g, int64_t i);           /* enum hive_gguf_vtype */
int hive_gguf_kv_array_type(const hive_gguf *g, int64_t i);     /* element type, for arrays */
uint64_t hive_gguf_kv_array_len(const hive_gguf *g, int64_t i); /* 0 for non-arrays */

/* Typed getters by key. Return HIVE_OK, or HIVE_ERR_INVAL when the key is
 * missing or of an incompatible type (any integer type converts to any other
 * when the value fits; float32/float64 convert to each other). */
int hive_gguf_get_u32(const hive_gguf *g, const char *key, uint32_t *out);
int hive_gguf_get_i32(const hive_gguf *g, const char *key, int32_t *out);
int hive_gguf_get_u64(const hive_gguf *g, const char *key, uint64_t *out);
int hive_gguf_get_i64(const hive_gguf *g, const char *key, int64_t *out);
/* Also accepts integer values (converted). */
int hive_gguf_get_f32(const hive_gguf *g, const char *key, float *out);
int hive_gguf_get_bool(const hive_gguf *g, const char *key, int *out);
int hive_gguf_get_str(const hive_gguf *g, const char *key, struct hive_str *out);
/* Copies a string value into buf (NUL-terminated, truncated to cap-1). */
int hive_gguf_get_cstr(const hive_gguf *g, const char *key, char *buf, size_t cap);

/* Arrays. For a string array, *strs points to n entries owned by g.
 * For numeric arrays, *data points into the mapping (little-endian, possibly
 * unaligned: read with memcpy), *elem_type is the element type. */
int hive_gguf_get_str_array(const hive_gguf *g, const char *key, const struct hive_str **strs, uint64_t *n);
int hive_gguf_get_array(const hive_gguf *g, const char *key, int *elem_type, const void **data, uint64_t *n);

/* ---- tensors ---- */
int64_t hive_gguf_n_tensors(const hive_gguf *g);
const struct hive_gguf_tensor *hive_gguf_tensor(const hive_gguf *g, int64_t i);
const struct hive_gguf_tensor *hive_gguf_find_tensor(const hive_gguf *g, const char *name); /* NULL if absent */

/* ---- writer ----
 * Builds a file in memory-light fashion: tensor data is referenced, not
 * copied, until hive_gguf_writer_write(). Version 3, alignment 32. Keys are
 * written in insertion order; setting an existing key replaces its value. */
typedef struct hive_gguf_writer hive_gguf_writer;

hive_gguf_writer *hive_gguf_writer_new(void);
void hive_gguf_writer_free(hive_gguf_writer *w);
int hive_gguf_writer_set_u32(hive_gguf_writer *w, const char *key, uint32_t v);
int hive_gguf_writer_set_i32(hive_gguf_writer *w, const char *key, int32_t v);
int hive_gguf_writer_set_u64(hive_gguf_writer *w, const char *key, uint64_t v);
int hive_gguf_writer_set_f32(hive_gguf_writer *w, const char *key, float v);
int hive_gguf_writer_set_bool(hive_gguf_writer *w, const char *key, int v);
int hive_gguf_writer_set_str(hive_gguf_writer *w, const char *key, const char *v);
/* Any fixed-size vtype (uint8 ... float64, bool); v points to one value of
 * that type in host order (bool: one byte, 0 or 1). */
int hive_gguf_writer_set_scalar(hive_gguf_writer *w, const char *key, int vtype, const void *v);
int hive_gguf_writer_set_str_array(hive_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Numeric array of elem_type (not STRING/ARRAY); data is copied. */
int hive_gguf_writer_set_array(hive_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
/* Copies key i of g (any type, arrays included) into w. */
int hive_gguf_writer_copy_kv(hive_gguf_writer *w, const hive_gguf *g, int64_t i);
/* Adds a tensor; data must stay valid until write. n_bytes must equal the
 * size implied by type and shape. */
int hive_gguf_writer_add_tensor(hive_gguf_writer *w, const char *name, int type, int n_dims,
                                const int64_t *ne, const void *data, uint64_t n_bytes);
/* Adds a tensor whose data is produced while writing, so a model larger than
 * memory can be written: fill(ctx, first_row, n_rows, dst) must write rows
 * [first_row, first_row + n_rows) into dst, each row being
 * hive_type_row_bytes(type, ne[0]) bytes (a tensor has ne[1]*ne[2]*ne[3]
 * rows). It is called in ascending row order with chunks of a few MiB and
 * returns HIVE_OK or an error code with a message in err. */
typedef int (*hive_gguf_fill_fn)(void *ctx, int64_t first_row, int64_t n_rows, void *dst, char *err);
int hive_gguf_writer_add_tensor_fill(hive_gguf_writer *w, const char *name, int type, int n_dims,
                                     const int64_t *ne, hive_gguf_fill_fn fill, void *ctx);
/* Writes path.tmp and renames it to path. A set/add call that failed earlier
 * makes this fail with that call's message. */
int hive_gguf_writer_write(hive_gguf_writer *w, const char *path, char *err);

#endif
