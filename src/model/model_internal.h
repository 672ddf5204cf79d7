/* model_internal.h - the loaded model as the forward pass sees it. Shared by
 * the files of src/model only; other modules use hive/model.h. */
#ifndef HIVE_MODEL_INTERNAL_H
#define HIVE_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "hive/gguf.h"
#include "hive/model.h"

/* A weight matrix W (n_rows, n_cols): n_rows rows of n_cols elements of
 * `type`, row-major, as hive_matmul wants it. */
struct model_matrix {
    int type;
    const void *data;
    int64_t n_rows; /* output dim (GGUF ne[1]) */
    int64_t n_cols; /* input dim (GGUF ne[0]) */
};

/* Per-layer weights. Vectors are f32 copies owned by the model. */
struct model_layer {
    const float *attn_norm;         /* (n_embd,) */
    struct model_matrix wq;         /* (n_head*hd, n_embd) */
    struct model_matrix wk;         /* (n_kv*hd, n_embd) */
    struct model_matrix wv;         /* (n_kv*hd, n_embd) */
    struct model_matrix wo;         /* (n_embd, n_head*hd) */
    const float *bq, *bk, *bv;      /* optional biases (n_head*hd,) (n_kv*hd,) (n_kv*hd,) */
    const float *q_norm, *k_norm;   /* qwen3: per-head RMSNorm weights (hd,) */
    const float *ffn_norm;          /* (n_embd,) */
    struct model_matrix gate;       /* (n_ff, n_embd) */
    struct model_matrix up;         /* (n_ff, n_embd) */
    struct model_matrix down;       /* (n_embd, n_ff) */
};

struct hive_model {
    hive_gguf *gguf;
    struct hive_hparams hp;
    int first, last;                /* loaded layer range */
    struct model_matrix tok_embd;   /* (n_vocab, n_embd), when first == 0 */
    struct model_matrix output;     /* (n_vocab, n_embd), when last == n_layer */
    const float *output_norm;       /* (n_embd,), when last == n_layer */
    const float *rope_factors;      /* (n_rot/2,) llama3 frequency factors or NULL */
    struct model_layer *layers;     /* layers[il - first] */
    float *vectors;                 /* owned storage of all f32 vectors */
    void *weights_copy;             /* anonymous mapping with copied matrices, or NULL */
    size_t weights_copy_bytes;
    struct fwd_cache *fwd_cache;    /* forward-pass scratch kept between calls (forward.c) */
};

/* forward.c: the model's cache of micro-batch scratch. */
struct fwd_cache *fwd_cache_create(void);
void fwd_cache_free(struct fwd_cache *fc);

#endif
