/* fuzz_gguf.c - the GGUF reader: hive_gguf_open_buffer on the input, then a
 * walk of every key (each typed getter, string and numeric arrays) and every
 * tensor (lookup by its own name, data pointer inside the image), then what
 * reads metadata without loading: hyper-parameters, the stage tensor lists
 * and byte counts, the chat template detection.
 * Seeds: truncated real headers and tiny synthetic models (make_corpus.sh). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "hive/gguf.h"
#include "hive/model.h"
#include "hive/tokenizer.h"

static void count_tensor(void *arg, const struct hive_gguf_tensor *t) {
    (void)t;
    (*(int64_t *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        hive_log_set_level(HIVE_LOG_ERROR);
        init = 1;
    }
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open_buffer(&g, "fuzz", data, size, err) != HIVE_OK) {
        FUZZ_ASSERT(g == NULL);
        return 0;
    }
    const uint8_t *base = hive_gguf_mapping(g);
    uint64_t fsize = hive_gguf_file_size(g);
    FUZZ_ASSERT(fsize == size);
    FUZZ_ASSERT(hive_gguf_data_offset(g) <= fsize);

    volatile uint64_t sink = 0;
    char key[256], cbuf[64];
    for (int64_t i = 0; i < hive_gguf_n_kv(g); i++) {
        struct hive_str k = hive_gguf_kv_key(g, i);
        FUZZ_ASSERT(k.len == 0 || ((const uint8_t *)k.ptr >= base && (const uint8_t *)k.ptr + k.len <= base + fsize));
        if (k.len >= sizeof key || memchr(k.ptr, 0, k.len)) continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        FUZZ_ASSERT(hive_gguf_find_kv(g, key) >= 0);
        sink += (uint64_t)hive_gguf_kv_type(g, i) + (uint64_t)hive_gguf_kv_array_type(g, i) +
                hive_gguf_kv_array_len(g, i);
        sink += hive_gguf_vtype_name(hive_gguf_kv_type(g, i))[0];
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f;
        int b;
        struct hive_str s;
        if (!hive_gguf_get_u32(g, key, &u32)) sink += u32;
        if (!hive_gguf_get_i32(g, key, &i32)) sink += (uint64_t)i32;
        if (!hive_gguf_get_u64(g, key, &u64)) sink += u64;
        if (!hive_gguf_get_i64(g, key, &i64)) sink += (uint64_t)i64;
        if (!hive_gguf_get_f32(g, key, &f)) sink += f == f;
        if (!hive_gguf_get_bool(g, key, &b)) sink += (uint64_t)b;
        if (!hive_gguf_get_str(g, key, &s) && s.len) sink += (uint8_t)s.ptr[s.len - 1];
        if (!hive_gguf_get_cstr(g, key, cbuf, sizeof cbuf)) sink += strlen(cbuf);
        const struct hive_str *strs;
        uint64_t n;
        if (!hive_gguf_get_str_array(g, key, &strs, &n))
            for (uint64_t j = 0; j < n; j++)
                if (strs[j].len) sink += (uint8_t)strs[j].ptr[strs[j].len - 1];
        int et;
        const void *arr;
        if (!hive_gguf_get_array(g, key, &et, &arr, &n) && n) {
            size_t es = hive_gguf_vtype_size(et);
            if (es) {
                uint8_t last[8] = {0};
                memcpy(last, (const uint8_t *)arr + (n - 1) * es, es); /* the last element lies in the image */
                sink += last[0];
            }
        }
    }
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        FUZZ_ASSERT(t != NULL);
        FUZZ_ASSERT(t->n_bytes <= fsize);
        const uint8_t *d = t->data;
        FUZZ_ASSERT(d >= base && d + t->n_bytes <= base + fsize);
        if (t->n_bytes) sink += d[t->n_bytes - 1];
        if (t->name.len < sizeof key && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(key, t->name.ptr, t->name.len);
            key[t->name.len] = '\0';
            FUZZ_ASSERT(hive_gguf_find_tensor(g, key) != NULL);
        }
    }

    struct hive_hparams hp;
    if (hive_model_read_hparams(g, &hp, err) == HIVE_OK) {
        int64_t n = 0;
        int mid = hp.n_layer / 2;
        hive_model_stage_tensors(g, 0, hp.n_layer, count_tensor, &n, err);
        FUZZ_ASSERT(n <= hive_gguf_n_tensors(g) + 1);
        hive_model_stage_tensors(g, mid, hp.n_layer, count_tensor, &n, err);
        sink += hive_model_stage_bytes(g, 0, mid) + hive_model_stage_bytes(g, mid, hp.n_layer);
    }
    sink += (uint64_t)hive_chat_template_detect(g);
    (void)sink;
    hive_gguf_close(g);
    return 0;
}
