/* tokenizer.h - tokenizers from GGUF metadata and chat templates.
 *
 * tokenizer.ggml.model "llama" = SentencePiece (scores, byte fallback);
 * "gpt2" = byte-level BPE with merges and a pre-tokenizer chosen by
 * tokenizer.ggml.pre (gpt2, llama3/llama-bpe, qwen2, deepseek-llm, falcon,
 * starcoder, ...). */
#ifndef HIVE_TOKENIZER_H
#define HIVE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"
#include "hive/gguf.h"

typedef struct hive_tokenizer hive_tokenizer;

/* HIVE_ERR_FORMAT with "no tokenizer" in err when the file has none. */
int hive_tokenizer_load(hive_tokenizer **out, const hive_gguf *g, char *err);
void hive_tokenizer_free(hive_tokenizer *t);

int32_t hive_tokenizer_n_vocab(const hive_tokenizer *t);
int32_t hive_tokenizer_bos(const hive_tokenizer *t); /* -1 if none */
int32_t hive_tokenizer_eos(const hive_tokenizer *t); /* -1 if none */
int hive_tokenizer_add_bos(const hive_tokenizer *t); /* tokenizer.ggml.add_bos_token or model default */
/* End of generation: eos, eot, im_end and the like. */
int hive_tokenizer_is_eog(const hive_tokenizer *t, int32_t id);

/* Tokenizes text[0..len). add_special: prepend BOS when the model wants it.
 * parse_special: recognise special/control token texts like "<|im_end|>".
 * Writes at most cap ids to out and returns the total count (like snprintf:
 * a result > cap means out was too small), or -1 on invalid input. */
int hive_tokenize(const hive_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                  int32_t *out, int cap);

/* The bytes a token stands for (SentencePiece: "\xe2\x96\x81" -> ' ',
 * <0xAB> -> byte 0xAB; byte-level BPE: bytes from the unicode mapping).
 * Control tokens give "" unless special is set. Returns the length (may
 * exceed cap, like snprintf; buf is not NUL-terminated). */
int hive_token_to_piece(const hive_tokenizer *t, int32_t id, int special, char *buf, int cap);

/* ---- chat templates ---- */
enum hive_chat_template {
    HIVE_CHAT_NONE = 0, /* plain completion */
    HIVE_CHAT_LLAMA2,
    HIVE_CHAT_LLAMA3,
    HIVE_CHAT_CHATML,   /* qwen, smollm, ... */
    HIVE_CHAT_MISTRAL,
    HIVE_CHAT_ZEPHYR,
};

struct hive_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* Detects the family from tokenizer.chat_template; HIVE_CHAT_NONE if absent
 * or unrecognised. */
int hive_chat_template_detect(const hive_gguf *g);
int hive_chat_template_from_name(const char *name); /* "llama3", "chatml", ...; -1 if unknown */
/* Formats messages; add_assistant appends the assistant prefix. Returns the
 * length written (snprintf-like; buf always NUL-terminated when cap > 0). */
int hive_chat_format(int tmpl, const struct hive_chat_msg *msgs, int n_msgs, int add_assistant, char *buf,
                     size_t cap);

#endif
