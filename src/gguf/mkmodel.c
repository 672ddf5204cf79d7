/* mkmodel.c - synthetic llama-family GGUF models from a seed.
 *
 * Every row of every tensor has its own random stream, derived from the seed,
 * the tensor name and the row index, so rows can be generated in parallel
 * and in any chunking and still give the same file. The GGUF writer pulls the
 * rows chunk by chunk (hive_gguf_writer_add_tensor_fill), which keeps memory
 * at a few MiB per thread whatever the model size.
 *
 * Metadata and tensor names follow llama.cpp's GGUF conventions; ne[0] is the
 * input dimension of a weight: W (out, in) is stored as ne = [in, out]. */
#include "hive/mkmodel.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "hive/gguf.h"
#include "hive/tensor.h"

#define MAX_TENSOR_NAME 64
#define NORMAL_CELLS 4096 /* resolution of the normal sampler's quantile table */
#define BYTE_TOKENS 256
#define FIRST_FILLER (3 + BYTE_TOKENS) /* <unk> <s> </s>, then the byte tokens */

/* llama.cpp's general.file_type values (enum llama_ftype). */
enum {
    FTYPE_ALL_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q4_1 = 3, FTYPE_Q8_0 = 7, FTYPE_Q5_0 = 8,
    FTYPE_Q5_1 = 9, FTYPE_Q2_K = 10, FTYPE_Q3_K_S = 11, FTYPE_Q4_K_S = 14, FTYPE_Q4_K_M = 15,
    FTYPE_Q5_K_S = 16, FTYPE_Q5_K_M = 17, FTYPE_Q6_K = 18, FTYPE_BF16 = 32,
};

/* SentencePiece token types as stored in tokenizer.ggml.token_type. */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6 };

enum arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3 };
static const char *const arch_names[] = {"llama", "qwen2", "qwen3"};

enum kind { KIND_WEIGHT, KIND_NORM, KIND_BIAS };

/* What --type asks for: a base type, or a k-quant mix. */
struct type_choice {
    const char *name;
    int base;      /* type of most 2-D weights */
    int high;      /* mixes: type of output and of the promoted attn_v / ffn_down; -1 = no mix */
    int ftype;
};

static const struct type_choice type_choices[] = {
    {"f32", HIVE_TYPE_F32, -1, FTYPE_ALL_F32},   {"f16", HIVE_TYPE_F16, -1, FTYPE_F16},
    {"bf16", HIVE_TYPE_BF16, -1, FTYPE_BF16},    {"q8_0", HIVE_TYPE_Q8_0, -1, FTYPE_Q8_0},
    {"q4_0", HIVE_TYPE_Q4_0, -1, FTYPE_Q4_0},    {"q4_1", HIVE_TYPE_Q4_1, -1, FTYPE_Q4_1},
    {"q5_0", HIVE_TYPE_Q5_0, -1, FTYPE_Q5_0},    {"q5_1", HIVE_TYPE_Q5_1, -1, FTYPE_Q5_1},
    {"q2_k", HIVE_TYPE_Q2_K, -1, FTYPE_Q2_K},    {"q3_k", HIVE_TYPE_Q3_K, -1, FTYPE_Q3_K_S},
    {"q4_k", HIVE_TYPE_Q4_K, -1, FTYPE_Q4_K_S},  {"q5_k", HIVE_TYPE_Q5_K, -1, FTYPE_Q5_K_S},
    {"q6_k", HIVE_TYPE_Q6_K, -1, FTYPE_Q6_K},
    {"q4_k_m", HIVE_TYPE_Q4_K, HIVE_TYPE_Q6_K, FTYPE_Q4_K_M},
    {"q5_k_m", HIVE_TYPE_Q5_K, HIVE_TYPE_Q6_K, FTYPE_Q5_K_M},
};

struct spec {
    char name[MAX_TENSOR_NAME];
    int type;
    int n_dims;
    int64_t ne[2];     /* [in, out] for weights, [n] for vectors */
    enum kind kind;
    float scale;       /* of the weight std (depth decay) */
};

struct shape {
    enum arch arch;
    const struct type_choice *type;
    int64_t dim, n_layers, n_heads, n_kv_heads, head_dim, ff, vocab, ctx;
    float rope_theta, rms_eps, std;
    float depth_decay; /* layer i's writes into the residual stream have std * depth_decay^i */
};

struct maker;

/* One per tensor: what the writer's fill callback needs. */
struct fill_ctx {
    struct maker *mk;
    const struct spec *spec;
    uint64_t seed;     /* per tensor */
};

struct maker {
    struct shape sh;
    hive_pool *pool;
    float *scratch;            /* n_threads rows of max_row floats */
    float normal[NORMAL_CELLS + 1];
    int64_t max_row;
    /* the chunk being filled, shared with the pool threads */
    const struct fill_ctx *job;
    int64_t job_first, job_rows;
    void *job_dst;
    /* progress */
    uint64_t bytes_done, bytes_total;
    hive_mkmodel_progress_fn progress;
    void *progress_ctx;
};

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Standard normal samples by inverse-CDF lookup: a uniform 32-bit value picks
 * a point between two of NORMAL_CELLS+1 precomputed quantiles and interpolates.
 * About 20x faster than Box-Muller, which matters at a billion weights; the
 * tails are cut at the 1/(4 * NORMAL_CELLS) quantile (about 3.9 sigma). */
/* Phi^-1(p) by bisection on Phi(x) = erfc(-x / sqrt 2) / 2. */
static double normal_quantile(double p) {
    double lo = -40, hi = 40;
    for (int i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid * 0.7071067811865476) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

static void normal_table_init(float *table) {
    const double p_min = 0.25 / NORMAL_CELLS;
    for (int i = 0; i <= NORMAL_CELLS; i++) {
        double p = (double)i / NORMAL_CELLS;
        if (p < p_min) p = p_min;
        if (p > 1 - p_min) p = 1 - p_min;
        table[i] = (float)normal_quantile(p);
    }
}

static void normal_row(const float *table, uint64_t state, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t x = splitmix64(&state);
        for (int k = 0; k < 2 && i + k < n; k++) {
            uint32_t u = (uint32_t)(x >> (32 * k));
            uint32_t cell = u >> 20;                                 /* top 12 bits */
            float frac = (float)(u & 0xfffff) * (1.0f / (1 << 20));  /* low 20 bits */
            out[i + k] = table[cell] + frac * (table[cell + 1] - table[cell]);
        }
    }
}

/* ---- tensor data ---- */

static void fill_task(void *arg, int ith, int nth) {
    struct maker *mk = arg;
    const struct fill_ctx *fc = mk->job;
    const struct spec *sp = fc->spec;
    int64_t b, e;
    hive_split_range(mk->job_rows, ith, nth, &b, &e);
    float *row = mk->scratch + (size_t)ith * (size_t)mk->max_row;
    uint64_t row_bytes = hive_type_row_bytes(sp->type, sp->ne[0]);
    float std = mk->sh.std * sp->scale, mean = sp->kind == KIND_NORM ? 1.0f : 0.0f;
    for (int64_t r = b; r < e; r++) {
        int64_t global_row = mk->job_first + r;
        uint64_t state = fc->seed ^ ((uint64_t)global_row * 0xd1b54a32d192ed03ull);
        splitmix64(&state);
        normal_row(mk->normal, state, row, sp->ne[0]);
        for (int64_t c = 0; c < sp->ne[0]; c++) row[c] = mean + std * row[c];
        uint8_t *dst = (uint8_t *)mk->job_dst + (uint64_t)r * row_bytes;
        if (sp->type == HIVE_TYPE_F32) memcpy(dst, row, (size_t)sp->ne[0] * sizeof(float));
        else hive_quantize_row(sp->type, row, dst, sp->ne[0]);
    }
}

static int fill_rows(void *ctx, int64_t first_row, int64_t n_rows, void *dst, char *err) {
    (void)err;
    const struct fill_ctx *fc = ctx;
    struct maker *mk = fc->mk;
    mk->job = fc;
    mk->job_first = first_row;
    mk->job_rows = n_rows;
    mk->job_dst = dst;
    if (n_rows * fc->spec->ne[0] < 65536) fill_task(mk, 0, 1); /* not worth waking the pool */
    else hive_pool_run(mk->pool, fill_task, mk);
    mk->bytes_done += hive_type_row_bytes(fc->spec->type, fc->spec->ne[0]) * (uint64_t)n_rows;
    if (mk->progress) mk->progress(mk->progress_ctx, mk->bytes_done, mk->bytes_total);
    return HIVE_OK;
}

/* ---- the tensor list ---- */

/* llama.cpp's Q4_K_M / Q5_K_M rule for attn_v and ffn_down: the first and
 * last eighth of the layers, and every third layer in between, get more bits. */
static int promoted_layer(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static void add_spec(struct spec *list, int64_t *n, const char *name, int type, enum kind kind, int64_t ne0, int64_t ne1) {
    struct spec *s = &list[(*n)++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->type = kind == KIND_WEIGHT ? type : HIVE_TYPE_F32; /* vectors stay f32 */
    s->kind = kind;
    s->n_dims = kind == KIND_WEIGHT ? 2 : 1;
    s->ne[0] = ne0;
    s->ne[1] = kind == KIND_WEIGHT ? ne1 : 1;
    s->scale = 1.0f;
}

/* Fills list (capacity 3 + 16 * n_layers) and returns the count. */
static int64_t build_specs(const struct shape *sh, struct spec *list) {
    const struct type_choice *tc = sh->type;
    int tied = sh->arch == ARCH_QWEN3;
    int high = tc->high >= 0 ? tc->high : tc->base;
    int64_t n = 0, q_dim = sh->n_heads * sh->head_dim, kv_dim = sh->n_kv_heads * sh->head_dim;
    /* with a tied output, the embedding is the output matrix: llama.cpp's mixes treat it so */
    add_spec(list, &n, "token_embd.weight", tied ? high : tc->base, KIND_WEIGHT, sh->dim, sh->vocab);
    add_spec(list, &n, "output_norm.weight", 0, KIND_NORM, sh->dim, 1);
    if (!tied) add_spec(list, &n, "output.weight", high, KIND_WEIGHT, sh->dim, sh->vocab);
    for (int64_t i = 0; i < sh->n_layers; i++) {
        char name[MAX_TENSOR_NAME];
        int promoted = promoted_layer(i, sh->n_layers) ? high : tc->base;
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%" PRId64 "." suffix, i), name)
        add_spec(list, &n, BLK("attn_norm.weight"), 0, KIND_NORM, sh->dim, 1);
        add_spec(list, &n, BLK("attn_q.weight"), tc->base, KIND_WEIGHT, sh->dim, q_dim);
        add_spec(list, &n, BLK("attn_k.weight"), tc->base, KIND_WEIGHT, sh->dim, kv_dim);
        add_spec(list, &n, BLK("attn_v.weight"), promoted, KIND_WEIGHT, sh->dim, kv_dim);
        /* Depth decay: the later a layer, the less it changes the residual
         * stream, so that a model of the first layers agrees with the whole. */
        float decay = powf(sh->depth_decay, (float)i);
        add_spec(list, &n, BLK("attn_output.weight"), tc->base, KIND_WEIGHT, q_dim, sh->dim);
        list[n - 1].scale = decay;
        if (sh->arch == ARCH_QWEN2) {
            add_spec(list, &n, BLK("attn_q.bias"), 0, KIND_BIAS, q_dim, 1);
            add_spec(list, &n, BLK("attn_k.bias"), 0, KIND_BIAS, kv_dim, 1);
            add_spec(list, &n, BLK("attn_v.bias"), 0, KIND_BIAS, kv_dim, 1);
        }
        if (sh->arch == ARCH_QWEN3) {
            add_spec(list, &n, BLK("attn_q_norm.weight"), 0, KIND_NORM, sh->head_dim, 1);
            add_spec(list, &n, BLK("attn_k_norm.weight"), 0, KIND_NORM, sh->head_dim, 1);
        }
        add_spec(list, &n, BLK("ffn_norm.weight"), 0, KIND_NORM, sh->dim, 1);
        add_spec(list, &n, BLK("ffn_gate.weight"), tc->base, KIND_WEIGHT, sh->dim, sh->ff);
        add_spec(list, &n, BLK("ffn_up.weight"), tc->base, KIND_WEIGHT, sh->dim, sh->ff);
        add_spec(list, &n, BLK("ffn_down.weight"), promoted, KIND_WEIGHT, sh->ff, sh->dim);
        list[n - 1].scale = decay;
#undef BLK
    }
    return n;
}

/* ---- options ---- */

/* Shapes from the models' public config.json files (hidden_size,
 * num_hidden_layers, num_attention_heads, num_key_value_heads,
 * intermediate_size, vocab_size, max_position_embeddings, rope_theta). */
static const struct preset {
    const char *name, *arch;
    int64_t dim, n_layers, n_heads, n_kv_heads, ff, vocab, ctx;
    float rope_theta, rms_eps;
} presets[] = {
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f},
    {"llama-8b", "llama", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f},   /* Llama 3 8B */
    {"llama-70b", "llama", 8192, 80, 64, 8, 28672, 128256, 8192, 500000.0f, 1e-5f},  /* Llama 3 70B */
    {"qwen2.5-7b", "qwen2", 3584, 28, 28, 4, 18944, 152064, 32768, 1e6f, 1e-6f},
    {"qwen2.5-32b", "qwen2", 5120, 64, 40, 8, 27648, 152064, 32768, 1e6f, 1e-6f},
};

const char *hive_mkmodel_preset_names(void) {
    return "tinyllama-1.1b llama-8b llama-70b qwen2.5-7b qwen2.5-32b";
}

int hive_mkmodel_preset(struct hive_mkmodel_opts *o, const char *preset, char *err) {
    for (size_t i = 0; preset && i < sizeof presets / sizeof presets[0]; i++) {
        const struct preset *p = &presets[i];
        if (strcasecmp(preset, p->name)) continue;
        if (!o->arch && strcmp(p->arch, "llama")) o->arch = p->arch;
        o->dim = p->dim;
        o->n_layers = p->n_layers;
        o->n_heads = p->n_heads;
        o->n_kv_heads = p->n_kv_heads;
        o->head_dim = 0;
        o->ff = p->ff;
        o->vocab = p->vocab;
        o->ctx = p->ctx;
        o->rope_theta = p->rope_theta;
        o->rms_eps = p->rms_eps;
        return HIVE_OK;
    }
    return hive_errf(err, HIVE_ERR_INVAL, "unknown preset '%s' (known: %s)", preset ? preset : "",
                     hive_mkmodel_preset_names());
}

static const struct type_choice *find_type(const char *name) {
    for (size_t i = 0; i < sizeof type_choices / sizeof type_choices[0]; i++)
        if (!strcasecmp(type_choices[i].name, name)) return &type_choices[i];
    return NULL;
}

/* The largest values keep every size computation far from overflow. */
#define MAX_DIM (1 << 16)
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 22)

static int check_range(const char *what, int64_t v, int64_t lo, int64_t hi, char *err) {
    if (v < lo || v > hi)
        return hive_errf(err, HIVE_ERR_INVAL, "%s %" PRId64 " is out of range (%" PRId64 "..%" PRId64 ")", what, v, lo, hi);
    return HIVE_OK;
}

/* Every 2-D weight's rows must be whole blocks of its type. */
static int check_blocks(const struct shape *sh, char *err) {
    const int types[2] = {sh->type->base, sh->type->high};
    const struct { const char *what; int64_t n; } rows[] = {
        {"dim", sh->dim}, {"n_heads * head_dim", sh->n_heads * sh->head_dim}, {"ff", sh->ff}};
    for (int t = 0; t < 2; t++) {
        if (types[t] < 0) continue;
        int64_t block = hive_type_block_size(types[t]);
        if (block <= 0)
            return hive_errf(err, HIVE_ERR_UNSUPPORTED, "type %s is not supported by this build", hive_type_name(types[t]));
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
            if (rows[r].n % block)
                return hive_errf(err, HIVE_ERR_INVAL, "%s %" PRId64 " is not a multiple of the %s block size %" PRId64,
                                 rows[r].what, rows[r].n, sh->type->name, block);
    }
    return HIVE_OK;
}

static int resolve_shape(const struct hive_mkmodel_opts *o, int64_t vocab_from_size, struct shape *sh, char *err) {
    const char *arch = o->arch ? o->arch : "llama";
    int a = -1;
    for (int i = 0; i < 3; i++)
        if (!strcasecmp(arch, arch_names[i])) a = i;
    if (a < 0) return hive_errf(err, HIVE_ERR_INVAL, "unknown arch '%s' (known: llama, qwen2, qwen3)", arch);
    sh->arch = (enum arch)a;
    const char *type = o->type ? o->type : "f32";
    sh->type = find_type(type);
    if (!sh->type)
        return hive_errf(err, HIVE_ERR_INVAL, "unknown type '%s' (known: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 "
                         "q2_k q3_k q4_k q5_k q6_k q4_k_m q5_k_m)", type);
    int qwen = sh->arch != ARCH_LLAMA;
    sh->dim = o->dim ? o->dim : 256;
    sh->n_layers = o->n_layers ? o->n_layers : 4;
    sh->n_heads = o->n_heads ? o->n_heads : 8;
    sh->n_kv_heads = o->n_kv_heads ? o->n_kv_heads : (sh->n_heads % 2 == 0 ? sh->n_heads / 2 : sh->n_heads);
    sh->ff = o->ff ? o->ff : 3 * sh->dim;
    sh->ctx = o->ctx ? o->ctx : 512;
    sh->rope_theta = o->rope_theta > 0 ? o->rope_theta : qwen ? 1e6f : 10000.0f;
    sh->rms_eps = o->rms_eps > 0 ? o->rms_eps : qwen ? 1e-6f : 1e-5f;
    sh->std = o->weight_std > 0 ? o->weight_std : 0.02f;
    sh->depth_decay = o->depth_decay > 0 ? o->depth_decay : 1.0f;
    if (sh->depth_decay > 1.0f || !isfinite(sh->depth_decay))
        return hive_errf(err, HIVE_ERR_INVAL, "depth decay %g is not in (0, 1]", (double)sh->depth_decay);
    int rc = check_range("dim", sh->dim, 1, MAX_DIM, err);
    if (!rc) rc = check_range("layers", sh->n_layers, 1, MAX_LAYERS, err);
    if (!rc) rc = check_range("heads", sh->n_heads, 1, MAX_DIM, err);
    if (!rc) rc = check_range("kv-heads", sh->n_kv_heads, 1, sh->n_heads, err);
    if (!rc) rc = check_range("ff", sh->ff, 1, 16 * MAX_DIM, err);
    if (!rc) rc = check_range("ctx", sh->ctx, 1, INT32_MAX, err);
    if (!rc && o->head_dim) rc = check_range("head-dim", o->head_dim, 2, MAX_DIM, err);
    if (rc) return rc;
    if (sh->n_heads % sh->n_kv_heads)
        return hive_errf(err, HIVE_ERR_INVAL, "heads %" PRId64 " is not a multiple of kv-heads %" PRId64, sh->n_heads, sh->n_kv_heads);
    if (o->head_dim) {
        sh->head_dim = o->head_dim;
    } else {
        if (sh->dim % sh->n_heads)
            return hive_errf(err, HIVE_ERR_INVAL, "dim %" PRId64 " is not divisible by heads %" PRId64, sh->dim, sh->n_heads);
        sh->head_dim = sh->dim / sh->n_heads;
    }
    if (sh->head_dim % 2)
        return hive_errf(err, HIVE_ERR_INVAL, "head dimension %" PRId64 " is odd (RoPE rotates pairs)", sh->head_dim);
    if (vocab_from_size) {
        if (o->vocab && o->vocab != vocab_from_size)
            return hive_errf(err, HIVE_ERR_INVAL, "vocab %" PRId64 " disagrees with the %" PRId64 " tokens of %s", o->vocab,
                             vocab_from_size, o->vocab_from);
        sh->vocab = vocab_from_size;
    } else {
        sh->vocab = o->vocab ? o->vocab : 512;
        if (sh->vocab < FIRST_FILLER)
            return hive_errf(err, HIVE_ERR_INVAL, "vocab %" PRId64 " is too small for the built-in vocab (needs >= %d: "
                             "3 special + 256 byte tokens); use --vocab-from", sh->vocab, FIRST_FILLER);
    }
    rc = check_range("vocab", sh->vocab, 1, MAX_VOCAB, err);
    if (rc) return rc;
    return check_blocks(sh, err);
}

/* ---- vocab ---- */

/* Filler piece j of the built-in vocab, in a fixed order that guarantees
 * every multi-character piece can be built by merging two earlier pieces:
 *   "▁", the 94 printable ASCII characters, "▁" + letter or digit,
 *   then for L = 2, 3, ...: every lowercase word of length L, then "▁" + each. */
static void filler_piece(int64_t j, char *out, size_t cap) {
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static const char space[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's word boundary */
    if (j == 0) {
        snprintf(out, cap, "%s", space);
        return;
    }
    j -= 1;
    if (j < 94) {
        snprintf(out, cap, "%c", (char)(33 + j));
        return;
    }
    j -= 94;
    if (j < 62) {
        snprintf(out, cap, "%s%c", space, alnum[j]);
        return;
    }
    j -= 62;
    for (int len = 2;; len++) {
        int64_t count = 1;
        for (int k = 0; k < len; k++) count *= 26;
        if (j < 2 * count) {
            int with_space = j >= count;
            int64_t x = with_space ? j - count : j;
            char word[16];
            for (int k = len - 1; k >= 0; k--) {
                word[k] = (char)('a' + x % 26);
                x /= 26;
            }
            word[len] = 0;
            snprintf(out, cap, "%s%s", with_space ? space : "", word);
            return;
        }
        j -= 2 * count;
    }
}

static int write_builtin_vocab(hive_gguf_writer *w, int64_t vocab, char *err) {
    enum { PIECE_CAP = 24 };
    char *pool = hive_malloc_array((size_t)vocab, PIECE_CAP);
    const char **tokens = hive_malloc_array((size_t)vocab, sizeof *tokens);
    float *scores = hive_malloc_array((size_t)vocab, sizeof *scores);
    int32_t *types = hive_malloc_array((size_t)vocab, sizeof *types);
    int rc = HIVE_OK;
    if (!pool || !tokens || !scores || !types) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory for a %" PRId64 "-token vocab", vocab);
        goto done;
    }
    for (int64_t i = 0; i < vocab; i++) {
        char *piece = pool + (size_t)i * PIECE_CAP;
        tokens[i] = piece;
        scores[i] = 0.0f;
        if (i < 3) {
            static const char *const special[] = {"<unk>", "<s>", "</s>"};
            snprintf(piece, PIECE_CAP, "%s", special[i]);
            types[i] = i == 0 ? TOKEN_UNKNOWN : TOKEN_CONTROL;
        } else if (i < FIRST_FILLER) {
            snprintf(piece, PIECE_CAP, "<0x%02X>", (unsigned)(i - 3));
            types[i] = TOKEN_BYTE;
        } else {
            filler_piece(i - FIRST_FILLER, piece, PIECE_CAP);
            scores[i] = -(float)(i - FIRST_FILLER); /* earlier (shorter) pieces merge first */
            types[i] = TOKEN_NORMAL;
        }
    }
    hive_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    hive_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", tokens, (uint64_t)vocab);
    hive_gguf_writer_set_array(w, "tokenizer.ggml.scores", HIVE_GGUF_FLOAT32, scores, (uint64_t)vocab);
    hive_gguf_writer_set_array(w, "tokenizer.ggml.token_type", HIVE_GGUF_INT32, types, (uint64_t)vocab);
    hive_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    hive_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    hive_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    hive_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
done:
    free(pool);
    free(tokens);
    free(scores);
    free(types);
    return rc;
}

/* Copies every tokenizer.* key of the source file. */
static int copy_vocab(hive_gguf_writer *w, const hive_gguf *src) {
    for (int64_t i = 0; i < hive_gguf_n_kv(src); i++) {
        struct hive_str k = hive_gguf_kv_key(src, i);
        if (k.len >= 10 && !memcmp(k.ptr, "tokenizer.", 10)) hive_gguf_writer_copy_kv(w, src, i);
    }
    return HIVE_OK;
}

static int open_vocab_source(const char *path, hive_gguf **src, int64_t *n_tokens, char *err) {
    int rc = hive_gguf_open(src, path, err);
    if (rc) return rc;
    const struct hive_str *toks;
    uint64_t n;
    if (hive_gguf_get_str_array(*src, "tokenizer.ggml.tokens", &toks, &n) != HIVE_OK || n == 0 || n > MAX_VOCAB) {
        hive_gguf_close(*src);
        *src = NULL;
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no usable tokenizer.ggml.tokens array", path);
    }
    *n_tokens = (int64_t)n;
    return HIVE_OK;
}

/* ---- metadata ---- */

static void write_hparams(hive_gguf_writer *w, const struct shape *sh, const char *name) {
    const char *a = arch_names[sh->arch];
    char key[96], gname[96];
    snprintf(gname, sizeof gname, "hive synthetic %s", a);
    hive_gguf_writer_set_str(w, "general.architecture", a);
    hive_gguf_writer_set_str(w, "general.name", name ? name : gname);
    hive_gguf_writer_set_u32(w, "general.file_type", (uint32_t)sh->type->ftype);
#define SET_U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), hive_gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define SET_F32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), hive_gguf_writer_set_f32(w, key, (v)))
    SET_U32("context_length", sh->ctx);
    SET_U32("embedding_length", sh->dim);
    SET_U32("block_count", sh->n_layers);
    SET_U32("feed_forward_length", sh->ff);
    SET_U32("attention.head_count", sh->n_heads);
    SET_U32("attention.head_count_kv", sh->n_kv_heads);
    SET_F32("attention.layer_norm_rms_epsilon", sh->rms_eps);
    SET_F32("rope.freq_base", sh->rope_theta);
    if (sh->arch == ARCH_LLAMA) SET_U32("rope.dimension_count", sh->head_dim);
    if (sh->head_dim * sh->n_heads != sh->dim) {
        SET_U32("attention.key_length", sh->head_dim);
        SET_U32("attention.value_length", sh->head_dim);
    }
    SET_U32("vocab_size", sh->vocab);
#undef SET_U32
#undef SET_F32
}

/* ---- the whole model ---- */

int hive_mkmodel_layout(const struct hive_mkmodel_opts *o, hive_mkmodel_tensor_fn fn, void *ctx, char *err) {
    struct shape sh;
    int rc = resolve_shape(o, 0, &sh, err);
    if (rc) return rc;
    struct spec *specs = hive_calloc((size_t)(3 + 16 * sh.n_layers), sizeof *specs);
    if (!specs) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    int64_t n = build_specs(&sh, specs);
    for (int64_t i = 0; i < n; i++)
        fn(ctx, specs[i].name, hive_type_row_bytes(specs[i].type, specs[i].ne[0]) * (uint64_t)specs[i].ne[1]);
    free(specs);
    return HIVE_OK;
}

int hive_mkmodel(const struct hive_mkmodel_opts *o, const char *out_path, char *err) {
    if (!o || !out_path || !*out_path) return hive_errf(err, HIVE_ERR_INVAL, "mkmodel: no options or no output path");
    double t0 = hive_now_ms();
    hive_gguf *vocab_src = NULL;
    int64_t vocab_from_size = 0;
    int rc = HIVE_OK;
    if (o->vocab_from) {
        rc = open_vocab_source(o->vocab_from, &vocab_src, &vocab_from_size, err);
        if (rc) return rc;
    }
    struct maker mk = {0};
    struct spec *specs = NULL;
    struct fill_ctx *fills = NULL;
    hive_gguf_writer *w = NULL;
    rc = resolve_shape(o, vocab_from_size, &mk.sh, err);
    if (rc) goto done;

    int64_t cap = 3 + 16 * mk.sh.n_layers;
    specs = hive_calloc((size_t)cap, sizeof *specs);
    fills = hive_calloc((size_t)cap, sizeof *fills);
    w = hive_gguf_writer_new();
    int n_threads = o->n_threads > 0 ? o->n_threads : hive_cpu_count();
    mk.pool = hive_pool_create(n_threads);
    mk.max_row = mk.sh.dim;
    if (mk.sh.ff > mk.max_row) mk.max_row = mk.sh.ff;
    if (mk.sh.n_heads * mk.sh.head_dim > mk.max_row) mk.max_row = mk.sh.n_heads * mk.sh.head_dim;
    mk.scratch = hive_malloc_array((size_t)n_threads * (size_t)mk.max_row, sizeof(float));
    if (!specs || !fills || !w || !mk.pool || !mk.scratch) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        goto done;
    }

    normal_table_init(mk.normal);
    write_hparams(w, &mk.sh, o->name);
    rc = vocab_src ? copy_vocab(w, vocab_src) : write_builtin_vocab(w, mk.sh.vocab, err);
    if (rc) goto done;
    hive_gguf_close(vocab_src); /* its keys are copied */
    vocab_src = NULL;

    int64_t n_specs = build_specs(&mk.sh, specs);
    int64_t n_params = 0;
    uint64_t seed_mix = o->seed;
    for (int64_t i = 0; i < n_specs; i++) {
        fills[i] = (struct fill_ctx){&mk, &specs[i], 0};
        uint64_t s = seed_mix ^ fnv1a(specs[i].name);
        fills[i].seed = splitmix64(&s);
        rc = hive_gguf_writer_add_tensor_fill(w, specs[i].name, specs[i].type, specs[i].n_dims, specs[i].ne, fill_rows, &fills[i]);
        if (rc) break;
        n_params += specs[i].ne[0] * specs[i].ne[1];
        mk.bytes_total += hive_type_row_bytes(specs[i].type, specs[i].ne[0]) * (uint64_t)specs[i].ne[1];
    }
    mk.progress = o->progress;
    mk.progress_ctx = o->progress_ctx;
    rc = hive_gguf_writer_write(w, out_path, err); /* reports an add_tensor failure too */
    if (rc) goto done;
    if (o->stats) {
        struct stat st;
        o->stats->n_tensors = n_specs;
        o->stats->n_params = n_params;
        o->stats->n_bytes = stat(out_path, &st) == 0 ? (uint64_t)st.st_size : 0;
        o->stats->elapsed_ms = hive_now_ms() - t0;
    }
done:
    hive_gguf_close(vocab_src);
    hive_gguf_writer_free(w);
    if (mk.pool) hive_pool_free(mk.pool);
    free(mk.scratch);
    free(specs);
    free(fills);
    return rc;
}
