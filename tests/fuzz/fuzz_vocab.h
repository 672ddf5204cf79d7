/* fuzz_vocab.h - small vocabularies built in-process for the tokenizer
 * targets, so that replaying needs no file from ../shared:
 *   0     SentencePiece: `hive mkmodel`'s built-in vocab (<unk> <s> </s>,
 *         256 byte tokens, words and letter groups with scores)
 *   1..7  byte-level BPE ("gpt2"): the 256 GPT-2 byte characters, merges
 *         of common English pairs, <|endoftext|> <|im_start|> <|im_end|>
 *         (control) and one user-defined word, with each pre-tokenizer
 *         family (default, llama-bpe, qwen2, deepseek-llm, deepseek-coder,
 *         falcon, starcoder)
 * and, after those, each GGUF named in $HIVE_FUZZ_VOCABS (':'-separated;
 * campaigns add llama.cpp's vocab files there). */
#ifndef HIVE_FUZZ_VOCAB_H
#define HIVE_FUZZ_VOCAB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hive/gguf.h"
#include "hive/mkmodel.h"
#include "hive/tokenizer.h"

#define FUZZ_MAX_VOCABS 24

struct fuzz_vocabs {
    int n;
    hive_gguf *g[FUZZ_MAX_VOCABS];
    hive_tokenizer *t[FUZZ_MAX_VOCABS];
};

/* GPT-2's byte -> character map, as UTF-8 into out (NUL-terminated). */
static inline void fuzz_byte_char(int b, char out[4]) {
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = b;
    } else {
        int n = 0; /* the n-th byte outside those ranges maps to 256 + n */
        for (int c = 0; c < b; c++)
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static inline int fuzz_vocab_add(struct fuzz_vocabs *v, const char *path) {
    char err[HIVE_ERR_LEN];
    if (v->n >= FUZZ_MAX_VOCABS) return -1;
    hive_gguf *g;
    if (hive_gguf_open(&g, path, err)) {
        fprintf(stderr, "fuzz: %s\n", err);
        return -1;
    }
    hive_tokenizer *t;
    if (hive_tokenizer_load(&t, g, err)) {
        fprintf(stderr, "fuzz: %s\n", err);
        hive_gguf_close(g);
        return -1;
    }
    v->g[v->n] = g;
    v->t[v->n++] = t;
    return 0;
}

static inline int fuzz_bpe_write(const char *path, const char *pre) {
    static const char *const merges[] = {"Ġ t", "h e", "Ġt he", "i n", "e r", "a n", "Ġ a", "o n", "r e",
                                         "Ġ s", "Ġ w", "o r", "e n", "Ġ o", "in g", "Ġ b", "Ġ c", "a t",
                                         "i s", "Ġ 1", "1 2", "Ġ Ġ", "ĠĠ Ġ", "Ċ Ċ", "l l", "e d"};
    enum { N_MERGES = sizeof merges / sizeof merges[0] };
    static const char *const extra[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "hive"};
    const char *toks[256 + N_MERGES + 4];
    char store[256 + N_MERGES][16];
    int32_t types[256 + N_MERGES + 4];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        fuzz_byte_char(b, store[n]);
        types[n] = 1;
        toks[n] = store[n];
        n++;
    }
    for (int i = 0; i < N_MERGES; i++) {
        const char *sp = strchr(merges[i], ' ');
        snprintf(store[n], sizeof store[n], "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
        types[n] = 1;
        toks[n] = store[n];
        n++;
    }
    for (int i = 0; i < 4; i++) {
        types[n] = i < 3 ? 3 : 4; /* control, user-defined */
        toks[n++] = extra[i];
    }
    hive_gguf_writer *w = hive_gguf_writer_new();
    if (!w) return -1;
    hive_gguf_writer_set_str(w, "general.architecture", "llama");
    hive_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    hive_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    hive_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    hive_gguf_writer_set_array(w, "tokenizer.ggml.token_type", HIVE_GGUF_INT32, types, (uint64_t)n);
    hive_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, N_MERGES);
    hive_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 4));
    hive_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 4));
    hive_gguf_writer_set_str(w, "tokenizer.chat_template", "{% for m in messages %}<|im_start|>{% endfor %}");
    char err[HIVE_ERR_LEN];
    int rc = hive_gguf_writer_write(w, path, err);
    hive_gguf_writer_free(w);
    return rc ? -1 : 0;
}

/* Builds the vocabularies once (in a temporary directory, removed again:
 * the mappings stay valid). Aborts when the built-in ones fail. */
static inline const struct fuzz_vocabs *fuzz_vocabs_get(void) {
    static struct fuzz_vocabs v;
    static int done;
    if (done) return &v;
    done = 1;
    char dir[] = "/tmp/hive-fuzz-vocab-XXXXXX", path[64], err[HIVE_ERR_LEN];
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/spm.gguf", dir);
    struct hive_mkmodel_opts o;
    memset(&o, 0, sizeof o);
    o.dim = 8;
    o.n_layers = 1;
    o.n_heads = 2;
    o.ff = 8;
    o.n_threads = 1;
    if (hive_mkmodel(&o, path, err) || fuzz_vocab_add(&v, path)) abort();
    unlink(path);
    static const char *const pres[] = {"default", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder",
                                       "falcon", "starcoder"};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        snprintf(path, sizeof path, "%s/bpe-%zu.gguf", dir, i);
        if (fuzz_bpe_write(path, pres[i]) || fuzz_vocab_add(&v, path)) abort();
        unlink(path);
    }
    rmdir(dir);
    const char *env = getenv("HIVE_FUZZ_VOCABS");
    if (env) {
        char *list = strdup(env), *save = NULL;
        for (char *p = list ? strtok_r(list, ":", &save) : NULL; p; p = strtok_r(NULL, ":", &save))
            fuzz_vocab_add(&v, p);
        free(list);
    }
    return &v;
}

#endif
