/* fuzz_model.c - the model loader and a short forward pass: the input is a
 * GGUF file (through a memfd, since hive_model_load takes a path). A file
 * that loads gets a context of 8 positions and a forward pass of two
 * tokens, the whole model and then split in two ranges, with and without
 * copied weights. Seeds: tiny `hive mkmodel` models (make_corpus.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "hive/core.h"
#include "hive/model.h"

/* Bigger models are loaded but not run: a forward pass over them is slow,
 * not wrong. */
#define RUN_MAX_FLOATS (1 << 20)

static void run(hive_model *m, hive_pool *pool, const uint8_t *data, size_t size) {
    char err[HIVE_ERR_LEN];
    const struct hive_hparams *hp = hive_model_hparams(m);
    int first = hive_model_first_layer(m), last = hive_model_last_layer(m);
    if ((int64_t)hp->n_vocab * 2 > RUN_MAX_FLOATS || (int64_t)hp->n_embd * 2 > RUN_MAX_FLOATS) return;
    hive_ctx *c = NULL;
    if (hive_ctx_create(&c, m, first, last, 8, pool, err) != HIVE_OK) return;
    int32_t tok[2] = {size ? data[size / 2] : 1, size ? data[size - 1] : 2};
    for (int i = 0; i < 2; i++) tok[i] %= hp->n_vocab;
    int64_t n_out = hive_forward_out_floats(c, 2, 1);
    float *out = n_out > 0 ? malloc((size_t)n_out * sizeof *out) : NULL;
    float *hidden = calloc((size_t)hp->n_embd * 2, sizeof *hidden);
    if (out && hidden) {
        if (first == 0) {
            hive_forward(c, tok, NULL, 2, 0, out, 1, err);
            hive_forward(c, tok, NULL, 1, 2, out, 1, err); /* one more position */
        } else {
            for (int i = 0; i < hp->n_embd * 2; i++) hidden[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
            hive_forward(c, NULL, hidden, 2, 0, out, 1, err);
        }
        int32_t bad = hp->n_vocab; /* refused, changes nothing */
        if (first == 0) FUZZ_ASSERT(hive_forward(c, &bad, NULL, 1, 0, out, 0, err) != HIVE_OK);
    }
    free(out);
    free(hidden);
    hive_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static hive_pool *pool;
    static int fd = -1;
    static char path[64];
    char err[HIVE_ERR_LEN];
    if (fd < 0) {
        hive_log_set_level(HIVE_LOG_ERROR);
        pool = hive_pool_create(1);
        fd = memfd_create("fuzz-model", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();

    struct hive_model_opts o = hive_model_default_opts();
    o.copy_weights = size & 1;
    hive_model *m = NULL;
    if (hive_model_load(&m, path, &o, err) != HIVE_OK) {
        FUZZ_ASSERT(m == NULL);
        return 0;
    }
    int n_layer = hive_model_hparams(m)->n_layer;
    run(m, pool, data, size);
    hive_model_free(m);
    /* The same file as two stages. */
    int mid = n_layer / 2;
    for (int part = 0; part < 2; part++) {
        o.first_layer = part ? mid : 0;
        o.last_layer = part ? -1 : mid;
        if (hive_model_load(&m, path, &o, err) != HIVE_OK) continue;
        run(m, pool, data, size);
        hive_model_free(m);
    }
    return 0;
}
