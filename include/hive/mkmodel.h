/* mkmodel.h - synthetic GGUF models from a seed, for tests and benchmarks.
 *
 * Writes a llama / qwen2 / qwen3 model with llama.cpp's GGUF metadata and
 * tensor names, random weights (normal, std weight_std; norm weights
 * 1 + noise) and either a built-in SentencePiece-style vocab (<unk> <s> </s>,
 * 256 byte tokens, then "▁"-words and letter groups with scores) or the
 * tokenizer.* keys of another GGUF file. The same options and seed always
 * give the same file on the same platform. Tensors are generated and
 * quantized row by row while the file is written, so memory stays small even
 * for the TinyLlama-1.1B shape.
 *
 * Usage: struct hive_mkmodel_opts o = {0}; o.type = "q4_0"; o.dim = 64;
 *        rc = hive_mkmodel(&o, "/tmp/x.gguf", err);
 * Zero / NULL fields take the defaults listed below. */
#ifndef HIVE_MKMODEL_H
#define HIVE_MKMODEL_H

#include <stdint.h>

#include "hive/core.h"

struct hive_mkmodel_stats {
    int64_t n_tensors;
    int64_t n_params;      /* elements over all tensors */
    uint64_t n_bytes;      /* file size */
    double elapsed_ms;
};

/* Called after each chunk of tensor data (from the calling thread). */
typedef void (*hive_mkmodel_progress_fn)(void *ctx, uint64_t bytes_done, uint64_t bytes_total);

struct hive_mkmodel_opts {
    const char *arch;        /* "llama" (default), "qwen2" (q/k/v biases), "qwen3" (q/k norms, tied output) */
    const char *type;        /* weight type: f32 (default) f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1
                                q2_k q3_k q4_k q5_k q6_k, or the mixes q4_k_m q5_k_m */
    int64_t dim;             /* embedding length; 0 = 256 */
    int64_t n_layers;        /* 0 = 4 */
    int64_t n_heads;         /* 0 = 8 */
    int64_t n_kv_heads;      /* 0 = n_heads / 2 when n_heads is even, else n_heads */
    int64_t head_dim;        /* 0 = dim / n_heads; otherwise attention.key_length/value_length are written */
    int64_t ff;              /* feed-forward length; 0 = 3 * dim */
    int64_t vocab;           /* 0 = 512, or the size of vocab_from's vocab */
    int64_t ctx;             /* context_length; 0 = 512 */
    float rope_theta;        /* 0 = 10000 (llama) or 1e6 (qwen2/qwen3) */
    float rms_eps;           /* 0 = 1e-5 (llama) or 1e-6 (qwen2/qwen3) */
    float weight_std;        /* std of weights, biases and norm noise; 0 = 0.02 */
    float depth_decay;       /* (0, 1]: layer i's attn_output and ffn_down get std * depth_decay^i, so
                                that the first layers decide the output and a model made of them (the
                                same seed, fewer layers) agrees with the whole often: a draft for
                                speculative decoding; 0 = 1 (off) */
    uint64_t seed;           /* any value, 0 included */
    const char *vocab_from;  /* GGUF file whose tokenizer.* keys are copied; NULL = built-in vocab */
    const char *name;        /* general.name; NULL = "hive synthetic <arch>" */
    int n_threads;           /* 0 = all CPUs */
    hive_mkmodel_progress_fn progress; /* optional */
    void *progress_ctx;
    struct hive_mkmodel_stats *stats;  /* optional: filled on success */
};

/* Fills the shape of a known model, from its public config.json
 * ("tinyllama-1.1b": dim 2048, 22 layers, 32 heads, 4 KV heads, ff 5632,
 * vocab 32000, ctx 2048, theta 1e4, eps 1e-5; also "llama-8b" and
 * "llama-70b" (Llama 3), "qwen2.5-7b", "qwen2.5-32b"). Sets arch to "qwen2"
 * for the Qwen shapes when o->arch is NULL; leaves type/seed alone.
 * HIVE_ERR_INVAL for an unknown name. */
int hive_mkmodel_preset(struct hive_mkmodel_opts *o, const char *preset, char *err);
/* The preset names, space-separated. */
const char *hive_mkmodel_preset_names(void);

/* The tensors a model made with o would hold, without making it: fn is
 * called once per tensor, in file order, with its name and bytes. For
 * planning on paper (hive plan --shape). vocab_from is ignored. */
typedef void (*hive_mkmodel_tensor_fn)(void *ctx, const char *name, uint64_t n_bytes);
int hive_mkmodel_layout(const struct hive_mkmodel_opts *o, hive_mkmodel_tensor_fn fn, void *ctx, char *err);

/* Writes the model to out_path (via out_path.tmp). Returns HIVE_OK,
 * HIVE_ERR_INVAL for bad options (message says which), HIVE_ERR_UNSUPPORTED
 * for a type this build cannot quantize, HIVE_ERR_IO / HIVE_ERR_FORMAT for
 * vocab_from or output problems, HIVE_ERR_NOMEM. */
int hive_mkmodel(const struct hive_mkmodel_opts *o, const char *out_path, char *err);

#endif
