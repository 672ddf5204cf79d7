/* model.h - transformer architectures (llama family, qwen2, qwen3) and the
 * forward pass over a layer range.
 *
 * A model is loaded from a GGUF file, or from a "stage file": a GGUF that has
 * all of the original metadata but only the tensors of some layers (what the
 * pipeline sends a stage). Loading for a range [first, last) requires only
 * the tensors that range uses: token_embd.weight when first == 0, and
 * output_norm.weight + output.weight (or token_embd.weight when tied) when
 * last == n_layer.
 *
 * Running ranges [0,a), [a,b), [b,n) one after another on the same tokens
 * gives bit-identical logits to running [0,n): the range boundary changes no
 * arithmetic. */
#ifndef HIVE_MODEL_H
#define HIVE_MODEL_H

#include <stdint.h>

#include "hive/core.h"
#include "hive/gguf.h"

enum hive_arch { HIVE_ARCH_LLAMA = 0, HIVE_ARCH_QWEN2 = 1, HIVE_ARCH_QWEN3 = 2 };

struct hive_hparams {
    int arch;          /* enum hive_arch */
    char arch_name[32];
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;      /* attention.key_length or n_embd / n_head */
    int n_ff;
    int n_ctx_train;
    int n_rot;         /* rope.dimension_count, default head_dim */
    int rope_neox;     /* 1: rotate (x[i], x[i + n_rot/2]); 0: adjacent pairs */
    float rope_theta;  /* rope.freq_base */
    float rope_freq_scale; /* 1 / rope.scaling.factor for linear scaling */
    int rope_scaling;  /* 0 none, 1 linear, 2 llama3 (rope_freqs.weight or params) */
    float rms_eps;
    int tied_output;   /* no output.weight: token_embd.weight is the head */
};

struct hive_model_opts {
    int first_layer;   /* default 0 */
    int last_layer;    /* default -1 = n_layer */
    /* 0: read weights through the mmap; 1: copy them into anonymous memory
     * (huge pages when available), which decodes faster when the page cache
     * uses 4 KiB pages. Default 1. */
    int copy_weights;
    /* Optional: called as the weights are copied (bytes done of total),
     * for a progress bar on big models. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

typedef struct hive_model hive_model;

struct hive_model_opts hive_model_default_opts(void);
int hive_model_load(hive_model **out, const char *path, const struct hive_model_opts *opts, char *err);
void hive_model_free(hive_model *m);
const struct hive_hparams *hive_model_hparams(const hive_model *m);
const hive_gguf *hive_model_gguf(const hive_model *m);
int hive_model_first_layer(const hive_model *m);
int hive_model_last_layer(const hive_model *m);

/* Names of the tensors a stage [first, last) needs, for weight transfer.
 * Calls fn once per tensor present in g. Works on any GGUF of a supported
 * architecture without loading it. */
typedef void (*hive_tensor_name_fn)(void *arg, const struct hive_gguf_tensor *t);
int hive_model_stage_tensors(const hive_gguf *g, int first, int last, hive_tensor_name_fn fn, void *arg,
                             char *err);
/* Reads hyper-parameters from metadata (no tensors needed). */
int hive_model_read_hparams(const hive_gguf *g, struct hive_hparams *hp, char *err);
/* Bytes of weights a stage [first, last) reads per token. */
uint64_t hive_model_stage_bytes(const hive_gguf *g, int first, int last);

/* ---- inference context: the KV cache of one sequence over a range ----
 * A context holds only its KV cache. Large caches are anonymous mappings
 * that are not touched at creation: pages are committed as positions are
 * written, so an idle context costs little memory, and hive_ctx_free gives
 * it all back. The micro-batch scratch of a forward call belongs to the
 * model (one set kept between calls; a concurrent caller on the same model
 * gets a temporary one). */
typedef struct hive_ctx hive_ctx;

/* first/last must lie within the model's loaded range. n_ctx = KV capacity. */
int hive_ctx_create(hive_ctx **out, const hive_model *m, int first, int last, int n_ctx, hive_pool *pool,
                    char *err);
void hive_ctx_free(hive_ctx *c);
int hive_ctx_n_ctx(const hive_ctx *c);
/* Forget cached positions >= n_pos (0 clears the cache). */
void hive_ctx_truncate(hive_ctx *c, int n_pos);
/* Number of positions currently cached. */
int hive_ctx_n_pos(const hive_ctx *c);

/* Runs layers [first, last) for n_tok tokens at positions pos .. pos+n_tok-1.
 * Input: token ids when first == 0, else hidden (n_tok, n_embd) f32. A range
 * starting at 0 also accepts hidden states (tokens == NULL): the output of an
 * embedding-only range [0, 0).
 * Positions must continue the cache (pos <= cached positions); positions
 * from pos on are overwritten and later ones forgotten. Work is done in
 * micro-batches; results for a token are bit-identical whatever n_tok, the
 * thread count or the range split.
 * Output (caller-allocated, see hive_forward_out_floats):
 *   last == n_layer: logits (n_out, n_vocab), n_out = all_logits ? n_tok : 1
 *                    (the last token's logits only);
 *   otherwise:       hidden (n_tok, n_embd).
 * Errors: HIVE_ERR_INVAL when pos + n_tok > n_ctx (context full), a token id
 * is out of range, or the wrong input kind is given. A call refused for bad
 * input changes nothing; one that fails while running (out of memory) leaves
 * the context holding positions [0, pos).
 * hive_forward is hive_forward_batch with one item (the same code), plus
 * all_logits. */
int hive_forward(hive_ctx *c, const int32_t *tokens, const float *hidden, int n_tok, int pos, float *out,
                 int all_logits, char *err);
int64_t hive_forward_out_floats(const hive_ctx *c, int n_tok, int all_logits);

/* ---- several sequences in one pass (continuous batching) ----
 * Each item is one sequence: its own hive_ctx (KV cache) with n_tok >= 1
 * tokens at positions pos .. pos+n_tok-1 (pos <= the positions it has
 * cached, as for hive_forward). All contexts must be over the same model
 * and layer range and use the same pool. The rows of every item go through
 * each matmul together (one pass over the weights for the whole batch);
 * attention reads each sequence's own cache. Every token's result is
 * bit-identical to running its sequence alone through hive_forward, whatever
 * else is in the batch and in which order.
 * Output per item (caller-allocated):
 *   last == n_layer: the logits of the item's last token (n_vocab floats),
 *                    or of every token (n_tok, n_vocab) when all_logits is set
 *                    (speculative decoding verifies a draft from them);
 *   otherwise:       hidden (n_tok, n_embd).
 * On error no item's cache is advanced past what it held before. */
struct hive_batch_item {
    hive_ctx *ctx;
    const int32_t *tokens; /* when the range starts at layer 0 */
    const float *hidden;   /* otherwise: (n_tok, n_embd) */
    int n_tok, pos;
    float *out;
    int all_logits;
};
int hive_forward_batch(struct hive_batch_item *items, int n_items, char *err);

/* ---- speed measurement (src/model/speed.c): `hive bench` and bench/ ---- */
struct hive_speed_opts {
    int n_threads;    /* default 1 */
    int n_prompt;     /* tokens prefilled in one batch; default 128 */
    int n_decode;     /* tokens decoded one at a time after the prompt; default 64 */
    int reps;         /* runs; the median is reported; default 5 */
    int copy_weights; /* as hive_model_opts; default 1 */
    /* Optional: called after each run (runs done of reps), for a progress line. */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
};

struct hive_speed {
    double prefill_tps, decode_tps; /* medians over the runs */
    double load_ms;
    uint64_t bytes_per_token; /* weight bytes read per decoded token */
    int n_layer;
};

/* Loads the model and times prefill and greedy decode (synthetic token ids,
 * so any vocab works). Zero fields of o take the defaults. */
int hive_model_measure_speed(const char *path, const struct hive_speed_opts *o, struct hive_speed *out, char *err);

#endif
