/* fuzz_weights.c - the weight-transfer messages as a node receives them
 * (QUERY, META, TENSOR, CHUNK, TENSOR_END, WEIGHTS_END), driving the real
 * receiving end (src/cluster/weights.c) the way node.c's handle_weights
 * does, into a private cache directory. The input is a sequence of frames:
 *   u8 type | u16 length | payload
 * A TENSOR_END whose payload is one byte gets the right hash of the bytes
 * sent for the tensor (a fuzzer cannot find BLAKE2b hashes), so transfers
 * can complete: the stage file written is then verified and listed like a
 * cached stage (stage_file_verify, hive_model_stage_tensors) and removed.
 * Seeds: the transfer of a tiny model's stage (make_corpus). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cluster/cluster_internal.h"
#include "fuzz.h"
#include "hive/model.h"

#define ROOM (1u << 20) /* this node's memory budget for the stage */

static void count_tensor(void *arg, const struct hive_gguf_tensor *t) {
    (void)t;
    (*(int *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[] = "/tmp/hive-fuzz-weights-XXXXXX";
    static int init;
    if (!init) {
        hive_log_set_level(HIVE_LOG_ERROR);
        if (sodium_init() < 0 || !mkdtemp(dir)) abort();
        init = 1;
    }
    char err[HIVE_ERR_LEN];
    struct fuzz_in in = {data, size, 0};
    struct proto_query query;
    int have_query = 0;
    struct weights_rx *rx = NULL;
    crypto_generichash_state hs; /* the harness's own hash of the current tensor */
    crypto_generichash_init(&hs, NULL, 0, HIVE_HASH_BYTES);
    while (fuzz_left(&in) >= 3) {
        uint8_t type = fuzz_u8(&in);
        size_t len;
        const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &len);
        int rc = HIVE_OK;
        if (type == MSG_QUERY) {
            have_query = proto_query_decode(p, len, &query) == 0 && query.first <= 64 && query.last <= 64;
        } else if (type == MSG_META) {
            weights_rx_free(rx);
            rx = NULL;
            struct hive_rbuf r;
            hive_rbuf_init(&r, p, len);
            uint32_t n_tensors = hive_rbuf_u32(&r);
            uint64_t total = hive_rbuf_u64(&r);
            size_t meta_len = hive_rbuf_left(&r);
            const uint8_t *meta = hive_rbuf_bytes(&r, meta_len);
            if (!r.bad && have_query) {
                rc = weights_rx_begin(&rx, dir, query.model, (int)query.first, (int)query.last, meta, meta_len,
                                      n_tensors, total, ROOM, err);
                if (!rc) weights_rx_set_cache_max(rx, 4 * ROOM);
            }
        } else if (!rx) {
            continue;
        } else if (type == MSG_TENSOR) {
            struct proto_tensor t;
            rc = proto_tensor_decode(p, len, &t) ? HIVE_ERR_PROTO : weights_rx_tensor(rx, &t, err);
            crypto_generichash_init(&hs, NULL, 0, HIVE_HASH_BYTES);
        } else if (type == MSG_CHUNK) {
            rc = weights_rx_chunk(rx, p, len, err);
            if (!rc) crypto_generichash_update(&hs, p, len);
        } else if (type == MSG_TENSOR_END) {
            uint8_t h[HIVE_HASH_BYTES];
            if (len == 1) {
                crypto_generichash_final(&hs, h, sizeof h);
                p = h;
                len = sizeof h;
            }
            rc = weights_rx_tensor_end(rx, p, len, err);
        } else if (type == MSG_WEIGHTS_END) {
            char path[2304] = "";
            rc = weights_rx_finish(rx, path, sizeof path, err);
            weights_rx_free(rx);
            rx = NULL;
            if (rc == HIVE_OK) {
                FUZZ_ASSERT(stage_file_verify(path, query.model, (int)query.first, (int)query.last, err) == HIVE_OK);
                hive_gguf *g;
                if (hive_gguf_open(&g, path, err) == HIVE_OK) {
                    int n = 0;
                    hive_model_stage_tensors(g, (int)query.first, (int)query.last, count_tensor, &n, err);
                    hive_gguf_close(g);
                }
                unlink(path);
            }
            continue;
        }
        if (rc) {
            weights_rx_free(rx);
            rx = NULL;
        }
    }
    weights_rx_free(rx);
    return 0;
}
