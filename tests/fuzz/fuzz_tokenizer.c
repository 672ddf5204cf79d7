/* fuzz_tokenizer.c - tokenizers both ways, both special-token modes.
 * Input "GGUF...": the vocabulary itself is the input (hive_tokenizer_load on
 * a GGUF image), then a fixed text goes through it. Otherwise:
 *   u8 vocab (index into fuzz_vocab.h's list, modulo) | u8 flags | text
 * The text is tokenized with add_special and parse_special in all four
 * combinations (with a short output array too, which must report the full
 * count), every result detokenized with and without specials, and the input
 * bytes read as token ids (some out of range) detokenized and turned into
 * pieces. Seeds: llama.cpp's tokenizer test texts, chat-formatted text. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "fuzz_vocab.h"

#define MAX_IDS 4096

static void both_ways(const hive_tokenizer *t, const char *text, size_t len, int32_t *ids, char *buf, int cap) {
    int n_vocab = hive_tokenizer_n_vocab(t);
    for (int mode = 0; mode < 4; mode++) {
        int add = mode & 1, parse = mode >> 1;
        int n = hive_tokenize(t, text, len, add, parse, ids, MAX_IDS);
        if (n < 0) continue;
        int32_t few[3];
        int n2 = hive_tokenize(t, text, len, add, parse, few, 3);
        FUZZ_ASSERT(n2 == n); /* snprintf-like count, the same tokens */
        if (n > MAX_IDS) continue;
        for (int i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < n_vocab);
        for (int i = 0; i < n && i < 3; i++) FUZZ_ASSERT(few[i] == ids[i]);
        for (int special = 0; special < 2; special++) {
            int m = hive_detokenize(t, ids, n, special, buf, cap);
            FUZZ_ASSERT(m >= 0);
            if (m < cap) FUZZ_ASSERT(buf[m] == '\0');
            char small[5];
            int m2 = hive_detokenize(t, ids, n, special, small, sizeof small);
            FUZZ_ASSERT(m2 == m);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int32_t *ids;
    static char *buf;
    const int cap = 1 << 16;
    if (!ids) {
        hive_log_set_level(HIVE_LOG_ERROR);
        ids = malloc(MAX_IDS * sizeof *ids);
        buf = malloc((size_t)cap);
        if (!ids || !buf) abort();
    }
    char err[HIVE_ERR_LEN];
    if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        hive_gguf *g;
        if (hive_gguf_open_buffer(&g, "fuzz", data, size, err)) return 0;
        hive_tokenizer *t;
        if (hive_tokenizer_load(&t, g, err) == HIVE_OK) {
            static const char text[] = " Hello world! <|im_start|>user\n<s>1234 \xe2\x96\x81\xc3\xa9\xff</s>  \n\n";
            both_ways(t, text, sizeof text - 1, ids, buf, cap);
            int n_vocab = hive_tokenizer_n_vocab(t);
            for (int32_t id = 0; id < n_vocab && id < 512; id++) {
                char piece[8];
                int m = hive_token_to_piece(t, id, id & 1, piece, sizeof piece);
                FUZZ_ASSERT(m >= 0);
            }
            hive_tokenizer_free(t);
        }
        hive_gguf_close(g);
        return 0;
    }
    const struct fuzz_vocabs *v = fuzz_vocabs_get();
    struct fuzz_in in = {data, size, 0};
    const hive_tokenizer *t = v->t[fuzz_u8(&in) % v->n];
    uint8_t flags = fuzz_u8(&in);
    size_t len;
    const char *text = (const char *)fuzz_bytes(&in, fuzz_left(&in), &len);
    both_ways(t, text, len, ids, buf, cap);

    /* The bytes as ids: -1 .. n_vocab + 1 must be refused or rendered. */
    int n_vocab = hive_tokenizer_n_vocab(t);
    int n = 0;
    for (size_t i = 0; i + 1 < len && n < MAX_IDS; i += 2) {
        uint32_t raw = (uint32_t)(uint8_t)text[i] | (uint32_t)(uint8_t)text[i + 1] << 8;
        ids[n++] = (int32_t)(raw % (uint32_t)(n_vocab + 3)) - 1;
    }
    int all_valid = 1;
    for (int i = 0; i < n; i++) {
        char piece[16];
        int m = hive_token_to_piece(t, ids[i], flags & 1, piece, (int)(flags >> 4));
        if (ids[i] < 0 || ids[i] >= n_vocab) all_valid = 0;
        else FUZZ_ASSERT(m >= 0);
    }
    int m = hive_detokenize(t, ids, n, flags & 2, buf, cap);
    if (all_valid) FUZZ_ASSERT(m >= 0);
    return 0;
}
