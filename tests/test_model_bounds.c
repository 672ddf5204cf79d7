/* test_model_bounds.c - the model loader and the stage listings bound their
 * work by the tensors a file holds, not by what its metadata declares
 * (issue 13, found by fuzzing; the fuzz inputs are under
 * tests/fuzz/regress/{model,gguf}/).
 *   - hive_model_load on a small file declaring 419 million layers or a
 *     2^30 embedding fails with FORMAT before allocating for them;
 *   - hive_model_stage_tensors / hive_model_stage_bytes on a file declaring
 *     16 million layers return at once with the right answer;
 *   - on a real (synthetic) model they list exactly the tensors of a range,
 *     in order, as before. */
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/mkmodel.h"
#include "hive/model.h"

/* A llama file with one real layer's worth of tensors (dim 8) but metadata
 * saying n_layer layers of width n_embd. */
static void write_liar(const char *path, uint32_t n_layer, uint32_t n_embd) {
    hive_gguf_writer *w = hive_gguf_writer_new();
    hive_gguf_writer_set_str(w, "general.architecture", "llama");
    hive_gguf_writer_set_u32(w, "llama.block_count", n_layer);
    hive_gguf_writer_set_u32(w, "llama.embedding_length", n_embd);
    hive_gguf_writer_set_u32(w, "llama.feed_forward_length", 8);
    hive_gguf_writer_set_u32(w, "llama.attention.head_count", 2);
    hive_gguf_writer_set_u32(w, "llama.vocab_size", 4);
    static float data[64];
    int64_t ne1[1] = {8}, ne2[2] = {8, 8};
    hive_gguf_writer_add_tensor(w, "token_embd.weight", 0, 2, (int64_t[]){8, 4}, data, 8 * 4 * 4);
    hive_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", 0, 1, ne1, data, 8 * 4);
    hive_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 0, 2, ne2, data, 64 * 4);
    /* a tensor of the last declared layer, so a listing must reach it */
    char name[64];
    snprintf(name, sizeof name, "blk.%u.ffn_norm.weight", n_layer - 1);
    hive_gguf_writer_add_tensor(w, name, 0, 1, ne1, data, 8 * 4);
    char err[HIVE_ERR_LEN];
    int rc = hive_gguf_writer_write(w, path, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    hive_gguf_writer_free(w);
}

struct names {
    char list[4096];
    int n;
};
static void add_name(void *arg, const struct hive_gguf_tensor *t) {
    struct names *s = arg;
    size_t l = strlen(s->list);
    snprintf(s->list + l, sizeof s->list - l, "%.*s ", (int)t->name.len, t->name.ptr);
    s->n++;
}

int main(void) {
    char dir[512], path[640], err[HIVE_ERR_LEN];
    CHECK(check_temp_dir(dir, sizeof dir, "hive-test-bounds-") != NULL);
    snprintf(path, sizeof path, "%s/liar.gguf", dir);

    /* 1. The loader: 419 million layers (117 GB of vectors before the fix),
     * then a 2^30 embedding over 2 layers. */
    uint32_t lies[][2] = {{419430400u, 8}, {2, 1u << 30}, {16u << 20, 4096}};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        write_liar(path, lies[i][0], lies[i][1]);
        hive_model *m = NULL;
        struct hive_model_opts mo = hive_model_default_opts();
        if (i == 1) mo.last_layer = 0; /* the embedding alone: only its shape can tell */
        int64_t t0 = hive_now_us();
        int rc = hive_model_load(&m, path, &mo, err);
        int64_t us = hive_now_us() - t0;
        CHECKF(rc == HIVE_ERR_FORMAT && m == NULL, "lie %zu: rc %d: %s", i, rc, err);
        CHECKF(strstr(err, "tensor") != NULL, "lie %zu: message should be about tensors: %s", i, err);
        CHECKF(us < 500000, "lie %zu: load took %lld us", i, (long long)us);
    }

    /* 2. The stage listings on 16 million declared layers: they visit the
     * layers that have tensors (0 and the last), nothing else. */
    write_liar(path, 16u << 20, 8);
    hive_gguf *g;
    CHECK(hive_gguf_open(&g, path, err) == HIVE_OK);
    struct names s = {"", 0};
    int64_t t0 = hive_now_us();
    int rc = hive_model_stage_tensors(g, 0, 16 << 20, add_name, &s, err);
    uint64_t bytes = hive_model_stage_bytes(g, 0, 16 << 20);
    uint64_t bytes_mid = hive_model_stage_bytes(g, 1, (16 << 20) - 1);
    int64_t us = hive_now_us() - t0;
    CHECKF(rc == HIVE_OK, "%s", err);
    CHECKF(s.n == 4, "listed %d: %s", s.n, s.list);
    CHECKF(!strcmp(s.list, "token_embd.weight blk.0.attn_norm.weight blk.0.attn_q.weight "
                           "blk.16777215.ffn_norm.weight "),
           "%s", s.list);
    /* tied head: the embedding counts whole, as the output matrix */
    CHECKF(bytes == 128 + 32 + 256 + 32, "stage bytes %llu", (unsigned long long)bytes);
    CHECK(bytes_mid == 0);
    CHECKF(us < 500000, "listing took %lld us", (long long)us);
    CHECK(hive_model_stage_tensors(g, 0, (16 << 20) + 1, add_name, &s, err) == HIVE_ERR_INVAL);
    CHECK(hive_model_stage_tensors(g, -1, 3, add_name, &s, err) == HIVE_ERR_INVAL);
    hive_gguf_close(g);

    /* 3. A real model: each range lists its tensors in the fixed order. */
    struct hive_mkmodel_opts o;
    memset(&o, 0, sizeof o);
    o.dim = 8;
    o.n_layers = 12;
    o.n_heads = 2;
    o.ff = 8;
    o.vocab = 262;
    o.n_threads = 1;
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    CHECK(hive_mkmodel(&o, path, err) == HIVE_OK);
    CHECK(hive_gguf_open(&g, path, err) == HIVE_OK);
    memset(&s, 0, sizeof s);
    CHECK(hive_model_stage_tensors(g, 9, 12, add_name, &s, err) == HIVE_OK);
    CHECKF(s.n == 3 * 9 + 2, "listed %d", s.n);
    CHECKF(!strncmp(s.list, "blk.9.attn_norm.weight blk.9.attn_q.weight", 42), "%s", s.list);
    CHECKF(strstr(s.list, "blk.11.ffn_down.weight output_norm.weight output.weight ") != NULL, "%s", s.list);
    memset(&s, 0, sizeof s);
    CHECK(hive_model_stage_tensors(g, 0, 12, add_name, &s, err) == HIVE_OK);
    CHECKF(s.n == 1 + 12 * 9 + 2, "listed %d", s.n);
    hive_gguf_close(g);
    hive_model *m;
    CHECKF(hive_model_load(&m, path, NULL, err) == HIVE_OK, "%s", err);
    hive_model_free(m);
    struct hive_model_opts mo = hive_model_default_opts();
    mo.first_layer = 5;
    mo.last_layer = 5; /* an empty range in the middle loads too */
    CHECKF(hive_model_load(&m, path, &mo, err) == HIVE_OK, "%s", err);
    hive_model_free(m);

    unlink(path);
    snprintf(path, sizeof path, "%s/liar.gguf", dir);
    unlink(path);
    rmdir(dir);
    return check_result("test_model_bounds");
}
