/* tok_internal.h - the tokenizer object shared by the files of
 * src/tokenizer (load/lookup in tokenizer.c, SentencePiece in spm.c,
 * byte-level BPE in bpe.c, pre-tokenizers in pretok.c). Not a public API. */
#ifndef HIVE_TOKENIZER_INTERNAL_H
#define HIVE_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hive/tokenizer.h"

enum tok_kind { TOK_SPM = 1, TOK_BPE = 2 };

/* tokenizer.ggml.token_type values. */
enum tok_type {
    TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3,
    TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6,
};

/* Pre-tokenizer families (tokenizer.ggml.pre maps onto these). */
enum tok_pre {
    PRE_GPT2 = 0,       /* gpt-2, mpt, gpt-neox, olmo, default */
    PRE_LLAMA3,         /* llama-bpe, llama3, dbrx, smaug-bpe */
    PRE_QWEN2,          /* qwen2, deepseek-r1-qwen, stablelm2 */
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
    PRE_FALCON,
    PRE_STARCODER,      /* starcoder, refact, smollm, command-r, codeshell */
};

enum { TOKF_EOG = 1 };

struct tok_entry {
    uint32_t off, len; /* text in hive_tokenizer.arena */
    float score;
    uint8_t type;      /* enum tok_type */
    uint8_t flags;     /* TOKF_* */
};

struct hive_tokenizer {
    int kind;          /* enum tok_kind */
    int pre;           /* enum tok_pre (BPE only) */
    int32_t n_vocab;
    struct tok_entry *tok;
    char *arena;       /* all token texts, back to back */

    /* text -> id, open addressing; slot holds id + 1, 0 = empty */
    uint32_t *map;
    uint64_t map_mask;

    /* BPE merges: (left id, right id) -> rank and merged id */
    uint64_t *merge_key;
    int32_t *merge_rank; /* -1 = empty slot */
    int32_t *merge_result;
    uint64_t merge_mask;

    int32_t byte_tok[256];   /* SPM: <0xXX> tokens; BPE: the token of a byte's mapped char; -1 if none */
    uint16_t cp_of_byte[256]; /* BPE: GPT-2 byte mapping, byte -> code point */
    int16_t byte_of_cp[512];  /* BPE: its inverse, code point -> byte, -1 if unmapped */

    /* Tokens matched in raw text before the model runs (control, unknown,
     * user-defined), bucketed by first byte, longest first inside a bucket. */
    int32_t *special;
    uint32_t special_start[257];

    int32_t bos, eos, unk, eot, eom;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
};

/* Growable id vector; oom latches on allocation failure. */
struct tok_ids {
    int32_t *v;
    size_t n, cap;
    int oom;
};
void tok_ids_push(struct tok_ids *ids, int32_t id);

/* Id of the token with exactly this text, or -1. */
int32_t tok_find(const hive_tokenizer *t, const char *s, size_t len);
static inline const char *tok_text(const hive_tokenizer *t, int32_t id) { return t->arena + t->tok[id].off; }

/* Rank of the BPE merge (a, b), or -1; *merged receives the result id. */
int32_t tok_merge(const hive_tokenizer *t, int32_t a, int32_t b, int32_t *merged);

/* Model encoders for one raw-text fragment (no special tokens inside).
 * Return HIVE_OK or HIVE_ERR_NOMEM. */
int spm_encode(const hive_tokenizer *t, const char *text, size_t len, int space_prefix, struct tok_ids *out);
int bpe_encode(const hive_tokenizer *t, const char *text, size_t len, struct tok_ids *out);

/* Pre-tokenizer: splits text[0..len) into pieces; *cuts receives the
 * byte offsets of piece boundaries (first 0, last len; n_cuts - 1 pieces,
 * none empty). The caller frees *cuts. */
int pretok_split(int pre, const char *text, size_t len, size_t **cuts, size_t *n_cuts);
/* Maps a tokenizer.ggml.pre name onto enum tok_pre; -1 if unknown. */
int pretok_from_name(const char *name);

/* Min-heap of candidate merges ordered by (prio, left). */
struct tok_pair {
    int64_t prio;
    int32_t left, right;
    int32_t a, b; /* what the pair was built from, to detect stale entries */
};
struct tok_heap {
    struct tok_pair *v;
    size_t n, cap;
};
int tok_heap_push(struct tok_heap *h, struct tok_pair p);
int tok_heap_pop(struct tok_heap *h, struct tok_pair *out); /* 0 when empty */

#endif
