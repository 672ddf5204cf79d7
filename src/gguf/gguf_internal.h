/* gguf_internal.h - private door between the GGUF reader and writer (and the
 * model maker): raw access to an encoded metadata value so it can be copied
 * byte for byte. Not part of the public API. */
#ifndef HIVE_GGUF_INTERNAL_H
#define HIVE_GGUF_INTERNAL_H

#include <stdint.h>

#include "hive/gguf.h"

/* The encoded value of key i exactly as stored in the file, without the key
 * and without the u32 type tag:
 *   scalar: the value | string: u64 len, bytes | array: u32 elem type, u64 n, elements
 * Returns HIVE_OK or HIVE_ERR_INVAL for a bad index. */
int gguf_kv_raw(const hive_gguf *g, int64_t i, const uint8_t **bytes, uint64_t *n_bytes);

/* Little-endian stores used by the writer. */
static inline void gguf_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void gguf_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t gguf_get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static inline uint64_t gguf_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
