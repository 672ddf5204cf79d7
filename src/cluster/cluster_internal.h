/* cluster_internal.h - pieces of src/cluster shared between its files:
 * the stage-file cache and the two ends of a weight transfer. */
#ifndef HIVE_CLUSTER_INTERNAL_H
#define HIVE_CLUSTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hive/cluster.h"
#include "hive/gguf.h"
#include "hive/net.h"
#include "proto.h"

/* ---- stage files ----
 * A stage file is a GGUF with every metadata KV of the original model, only
 * the tensors of one stage, and three extra keys:
 *   hive.stage.model  (string) hex BLAKE2b of the original file
 *   hive.stage.first / hive.stage.last (uint32)
 *   hive.stage.hashes (uint8 array) BLAKE2b-256 of each tensor's bytes, in
 *                     tensor order, 32 bytes each
 * It lives at <cache>/stages/<model hex>-<first>-<last>.gguf. */
void stage_cache_path(const char *cache_dir, const uint8_t model[HIVE_HASH_BYTES], int first, int last,
                      char *buf, size_t cap);
/* Opens path and checks the keys and every tensor hash. HIVE_OK when the
 * file is intact and is the stage asked for; it then counts as used now
 * (mtime set), the last in line for eviction. */
int stage_file_verify(const char *path, const uint8_t model[HIVE_HASH_BYTES], int first, int last, char *err);

/* ---- receiving end (node) ---- */
struct weights_rx;
/* Starts a transfer of n_tensors tensors, total_bytes in all (<= max_bytes),
 * whose metadata is the GGUF image meta[0..meta_len) (copied). */
int weights_rx_begin(struct weights_rx **out, const char *cache_dir, const uint8_t model[HIVE_HASH_BYTES],
                     int first, int last, const uint8_t *meta, size_t meta_len, uint32_t n_tensors,
                     uint64_t total_bytes, uint64_t max_bytes, char *err);
int weights_rx_tensor(struct weights_rx *rx, const struct proto_tensor *t, char *err);
int weights_rx_chunk(struct weights_rx *rx, const uint8_t *p, size_t n, char *err);
int weights_rx_tensor_end(struct weights_rx *rx, const uint8_t *hash, size_t hash_len, char *err);
/* Cap for the cache trim after this transfer's file is written (0: the
 * default, hive_cache_default_max). */
void weights_rx_set_cache_max(struct weights_rx *rx, uint64_t max_bytes);
/* Writes the stage file (then trims the cache, never evicting this file);
 * its path goes to path_out. */
int weights_rx_finish(struct weights_rx *rx, char *path_out, size_t cap, char *err);
void weights_rx_free(struct weights_rx *rx);

/* ---- sending end (head) ---- */
/* GGUF image with every KV of g and no tensors (malloc'd). */
int weights_meta_image(const hive_gguf *g, uint8_t **out, size_t *len, char *err);

typedef void (*weights_progress_fn)(void *arg, uint64_t done, uint64_t total);
/* Streams META, the stage's tensors in chunks with per-tensor hashes, and
 * WEIGHTS_END, then waits for the node's OK. *sent gets the tensor bytes. */
int weights_send(hive_link *l, const hive_gguf *g, const uint8_t *meta, size_t meta_len, int first, int last,
                 weights_progress_fn progress, void *arg, uint64_t *sent, int timeout_ms, char *err);

#endif
