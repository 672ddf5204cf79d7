/* tokenizer.h - tokenizers from GGUF metadata and chat templates.
 *
 * tokenizer.ggml.model "llama" = SentencePiece (scores, byte fallback);
 * "gpt2" = byte-level BPE with merges and a pre-tokenizer chosen by
 * tokenizer.ggml.pre (gpt-2/default, mpt, gpt-neox, llama3/llama-bpe, qwen2,
 * deepseek-llm, deepseek-coder, falcon, starcoder, refact, ...; unknown
 * names fall back to gpt-2's with a warning). Matches llama.cpp / Hugging
 * Face on llama.cpp's vocabulary test vectors. No Unicode normalization
 * (Qwen's NFC step is skipped: pass NFC text). */
#ifndef HIVE_TOKENIZER_H
#define HIVE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"
#include "hive/gguf.h"

/* A loaded tokenizer is read-only: any number of threads may tokenize and
 * decode with it at once. It keeps no reference to the hive_gguf. */
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

/* Tokenizes text[0..len). add_special: prepend BOS (append EOS) when the
 * model wants it. parse_special: recognise control token texts like
 * "<|im_end|>"; user-defined tokens (added non-special words) always match.
 * Invalid UTF-8 is encoded through byte tokens, never rejected. Writes at most cap ids to out and returns the total count (like snprintf:
 * a result > cap means out was too small), or -1 on invalid input. */
int hive_tokenize(const hive_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                  int32_t *out, int cap);

/* The bytes a token stands for (SentencePiece: "\xe2\x96\x81" -> ' ',
 * <0xAB> -> byte 0xAB; byte-level BPE: bytes from the unicode mapping).
 * Control tokens give "" unless special is set. Returns the length (may
 * exceed cap, like snprintf; buf is not NUL-terminated). */
int hive_token_to_piece(const hive_tokenizer *t, int32_t id, int special, char *buf, int cap);

/* Concatenates the pieces of ids[0..n) into buf and NUL-terminates it (when
 * cap > 0). For SentencePiece models that add a dummy prefix, one leading
 * space is dropped from the first non-empty piece, so that
 * detokenize(tokenize(s)) == s. Returns the
 * full length (snprintf-like: >= cap means truncated), -1 on bad arguments. */
int hive_detokenize(const hive_tokenizer *t, const int32_t *ids, int n, int special, char *buf, int cap);

/* Id of the token whose text (as stored, e.g. "<|im_end|>" or "\xe2\x96\x81the")
 * is exactly text[0..len), or -1. */
int32_t hive_tokenizer_find(const hive_tokenizer *t, const char *text, size_t len);
/* The stored text of a token (not NUL-terminated; *len gets its length), or
 * NULL for an id outside the vocabulary. */
const char *hive_tokenizer_token_text(const hive_tokenizer *t, int32_t id, size_t *len);

/* Converts a Hugging Face tokenizer.json (byte-level BPE models) into a
 * vocab-only GGUF: tokenizer.ggml.model "gpt2", tokens with added_tokens at
 * their ids (special ones as control tokens, others user-defined), merges,
 * pre (e.g. "llama-bpe", "qwen2"; NULL = "default"), bos/eos/add_bos and
 * tokenizer.chat_template when known. bos/eos/add_bos/chat_template come
 * from a tokenizer_config.json beside the file (same name with
 * "tokenizer.json" replaced by "tokenizer_config.json") when there is one,
 * else from well-known token names. */
int hive_vocab_from_tokenizer_json(const char *json_path, const char *pre, const char *out_gguf, char *err);

/* ---- chat templates ----
 * The formatted text never contains the leading BOS: tokenize it with
 * add_special = 1 (which prepends BOS when the model wants it) and
 * parse_special = 1 (so "<|im_start|>" etc. become their control tokens).
 * Turn separators that are BOS/EOS texts inside a conversation (llama2's
 * "</s><s>[INST]", mistral's "</s>", zephyr's "</s>") are included. */
enum hive_chat_template {
    HIVE_CHAT_NONE = 0, /* plain completion */
    HIVE_CHAT_LLAMA2,
    HIVE_CHAT_LLAMA3,
    HIVE_CHAT_CHATML,   /* qwen, smollm, ... */
    HIVE_CHAT_MISTRAL,
    HIVE_CHAT_ZEPHYR,
    HIVE_CHAT_PHI3,     /* <|user|> ... <|end|> */
};

struct hive_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
};

/* Detects the family from tokenizer.chat_template; HIVE_CHAT_NONE if absent
 * or unrecognised. */
int hive_chat_template_detect(const hive_gguf *g);
int hive_chat_template_from_name(const char *name); /* "llama3", "chatml", ...; -1 if unknown */
const char *hive_chat_template_name(int tmpl);      /* inverse of the above; "unknown" if none */
/* Formats messages; add_assistant appends the assistant prefix. Returns the
 * length written (snprintf-like; buf always NUL-terminated when cap > 0). */
int hive_chat_format(int tmpl, const struct hive_chat_msg *msgs, int n_msgs, int add_assistant, char *buf,
                     size_t cap);

#endif
