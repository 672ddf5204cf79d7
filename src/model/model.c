/* model.c - hyper-parameters from GGUF metadata, tensor lookup and shape
 * validation, and loading the weights of a layer range.
 *
 * Tensor names and metadata keys follow llama.cpp's GGUF conventions:
 *   token_embd.weight, output_norm.weight, output.weight, rope_freqs.weight,
 *   blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,
 *          ffn_up,ffn_down}.weight, blk.N.attn_{q,k,v}.bias (qwen2),
 *   blk.N.attn_{q,k}_norm.weight (qwen3).
 * GGUF shapes list ne[0] (the row length = input dim) first. */
#include "hive/os.h"
#include "model_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/tensor.h"

/* ---- hyper-parameters ---- */

static int get_int_key(const hive_gguf *g, const char *arch, const char *suffix, int *out, int required,
                       char *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    if (hive_gguf_get_u32(g, key, &v) != HIVE_OK) {
        if (!required) return HIVE_OK;
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: missing or invalid metadata key %s", hive_gguf_path(g), key);
    }
    if (v > (1u << 30))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: metadata %s = %u is out of range", hive_gguf_path(g), key, v);
    *out = (int)v;
    return HIVE_OK;
}

static void get_float_key(const hive_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    float v;
    if (hive_gguf_get_f32(g, key, &v) == HIVE_OK) *out = v;
}

int hive_model_read_hparams(const hive_gguf *g, struct hive_hparams *hp, char *err) {
    memset(hp, 0, sizeof *hp);
    const char *path = hive_gguf_path(g);
    if (hive_gguf_get_cstr(g, "general.architecture", hp->arch_name, sizeof hp->arch_name) != HIVE_OK)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no general.architecture", path);
    const char *a = hp->arch_name;
    if (!strcmp(a, "llama")) hp->arch = HIVE_ARCH_LLAMA;
    else if (!strcmp(a, "qwen2")) hp->arch = HIVE_ARCH_QWEN2;
    else if (!strcmp(a, "qwen3")) hp->arch = HIVE_ARCH_QWEN3;
    else return hive_errf(err, HIVE_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported", path, a);

    int rc;
    if ((rc = get_int_key(g, a, "block_count", &hp->n_layer, 1, err))) return rc;
    if ((rc = get_int_key(g, a, "embedding_length", &hp->n_embd, 1, err))) return rc;
    if ((rc = get_int_key(g, a, "feed_forward_length", &hp->n_ff, 1, err))) return rc;
    if ((rc = get_int_key(g, a, "attention.head_count", &hp->n_head, 1, err))) return rc;
    hp->n_head_kv = hp->n_head;
    if ((rc = get_int_key(g, a, "attention.head_count_kv", &hp->n_head_kv, 0, err))) return rc;
    hp->n_ctx_train = 2048;
    if ((rc = get_int_key(g, a, "context_length", &hp->n_ctx_train, 0, err))) return rc;
    if (hp->n_layer <= 0 || hp->n_embd <= 0 || hp->n_ff <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_head % hp->n_head_kv != 0)
        return hive_errf(err, HIVE_ERR_FORMAT,
                         "%s: bad hyper-parameters (layers %d, embd %d, ff %d, heads %d, kv heads %d)", path,
                         hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((rc = get_int_key(g, a, "attention.key_length", &hp->head_dim, 0, err))) return rc;
    int value_length = hp->head_dim;
    if ((rc = get_int_key(g, a, "attention.value_length", &value_length, 0, err))) return rc;
    if (hp->head_dim <= 0 || value_length != hp->head_dim)
        return hive_errf(err, HIVE_ERR_UNSUPPORTED, "%s: key length %d / value length %d not supported", path,
                         hp->head_dim, value_length);
    hp->n_rot = hp->head_dim;
    if ((rc = get_int_key(g, a, "rope.dimension_count", &hp->n_rot, 0, err))) return rc;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: rope dimension %d invalid for head size %d", path, hp->n_rot,
                         hp->head_dim);
    hp->rope_neox = hp->arch != HIVE_ARCH_LLAMA;

    hp->rms_eps = 1e-5f;
    get_float_key(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_theta = 10000.0f;
    get_float_key(g, a, "rope.freq_base", &hp->rope_theta);
    if (!(hp->rms_eps >= 0.0f) || !(hp->rope_theta > 0.0f) || !isfinite(hp->rope_theta))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: bad rms epsilon or rope base", path);

    /* RoPE scaling: "linear" divides positions by the factor; llama3 uses
     * per-dimension factors from the rope_freqs.weight tensor. */
    hp->rope_freq_scale = 1.0f;
    char key[128], type[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    hive_gguf_get_cstr(g, key, type, sizeof type);
    float factor = 0.0f;
    get_float_key(g, a, "rope.scaling.factor", &factor);
    if (!type[0] && factor == 0.0f) { /* older files: rope.scale_linear */
        get_float_key(g, a, "rope.scale_linear", &factor);
        if (factor > 0.0f) snprintf(type, sizeof type, "linear");
    }
    if (!strcmp(type, "linear") && factor > 0.0f && isfinite(factor)) {
        hp->rope_scaling = 1;
        hp->rope_freq_scale = 1.0f / factor;
    } else if (type[0] && strcmp(type, "none") && strcmp(type, "linear")) {
        hive_log(HIVE_LOG_WARN, "%s: rope scaling '%s' is not supported; using none", path, type);
    }
    if (hive_gguf_find_tensor(g, "rope_freqs.weight")) hp->rope_scaling = 2;

    /* Vocabulary: explicit key, else the tokenizer, else the embedding rows. */
    int n_vocab = 0;
    if ((rc = get_int_key(g, a, "vocab_size", &n_vocab, 0, err))) return rc;
    if (n_vocab <= 0) {
        const struct hive_str *strs;
        uint64_t n;
        if (hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &strs, &n) == HIVE_OK && n <= (1u << 30))
            n_vocab = (int)n;
    }
    if (n_vocab <= 0) {
        const struct hive_gguf_tensor *t = hive_gguf_find_tensor(g, "token_embd.weight");
        if (!t) t = hive_gguf_find_tensor(g, "output.weight");
        if (t && t->n_dims == 2 && t->ne[1] > 0 && t->ne[1] <= (1 << 30)) n_vocab = (int)t->ne[1];
    }
    if (n_vocab <= 0) return hive_errf(err, HIVE_ERR_FORMAT, "%s: cannot tell the vocabulary size", path);
    hp->n_vocab = n_vocab;
    /* Tied when the file has the embedding but no output head. (A stage file
     * holding neither cannot tell, and does not need to.) */
    hp->tied_output = !hive_gguf_find_tensor(g, "output.weight") && hive_gguf_find_tensor(g, "token_embd.weight");
    return HIVE_OK;
}

/* ---- tensor lookup ---- */

static int layer_tensor_name(char *buf, size_t cap, int il, const char *suffix) {
    return snprintf(buf, cap, "blk.%d.%s", il, suffix);
}

/* Per-layer tensors; `required` depends on the architecture. */
struct layer_tensor_spec {
    const char *suffix;
    int is_matrix;
};

static const struct layer_tensor_spec layer_specs[] = {
    {"attn_norm.weight", 0},   {"attn_q.weight", 1},      {"attn_k.weight", 1},     {"attn_v.weight", 1},
    {"attn_output.weight", 1}, {"attn_q.bias", 0},        {"attn_k.bias", 0},       {"attn_v.bias", 0},
    {"attn_q_norm.weight", 0}, {"attn_k_norm.weight", 0}, {"ffn_norm.weight", 0},   {"ffn_gate.weight", 1},
    {"ffn_up.weight", 1},      {"ffn_down.weight", 1},
};

/* The distinct layer indices N in [first, last) named by tensors
 * "blk.N.*" of g, ascending, into a malloc'd array (*out, *n_out). */
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int present_layers(const hive_gguf *g, int first, int last, int **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    int64_t n_t = hive_gguf_n_tensors(g);
    int *ls = hive_malloc_array((size_t)(n_t > 0 ? n_t : 1), sizeof *ls);
    if (!ls) return HIVE_ERR_NOMEM;
    size_t n = 0;
    for (int64_t i = 0; i < n_t; i++) {
        struct hive_str s = hive_gguf_tensor(g, i)->name;
        if (s.len < 6 || memcmp(s.ptr, "blk.", 4)) continue;
        int64_t v = 0;
        uint64_t k = 4;
        while (k < s.len && k < 14 && s.ptr[k] >= '0' && s.ptr[k] <= '9') v = v * 10 + (s.ptr[k++] - '0');
        if (k == 4 || k >= s.len || s.ptr[k] != '.' || v < first || v >= last) continue;
        ls[n++] = (int)v;
    }
    qsort(ls, n, sizeof *ls, cmp_int);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || ls[u - 1] != ls[i]) ls[u++] = ls[i];
    *out = ls;
    *n_out = u;
    return HIVE_OK;
}

int hive_model_stage_tensors(const hive_gguf *g, int first, int last, hive_tensor_name_fn fn, void *arg,
                             char *err) {
    struct hive_hparams hp;
    int rc = hive_model_read_hparams(g, &hp, err);
    if (rc) return rc;
    if (first < 0 || last > hp.n_layer || first > last)
        return hive_errf(err, HIVE_ERR_INVAL, "layer range [%d, %d) invalid for %d layers", first, last,
                         hp.n_layer);
    /* The work follows the tensors the file holds, not the layer count its
     * metadata declares (which may be a lie of a billion layers): only the
     * layers some tensor names are visited, in ascending order. */
    int *layers;
    size_t n_layers;
    if (present_layers(g, first, last, &layers, &n_layers))
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory listing the tensors of layers [%d, %d)", first, last);
    const struct hive_gguf_tensor *t;
    if (first == 0 && (t = hive_gguf_find_tensor(g, "token_embd.weight"))) fn(arg, t);
    if ((t = hive_gguf_find_tensor(g, "rope_freqs.weight"))) fn(arg, t);
    char name[96];
    for (size_t i = 0; i < n_layers; i++) {
        for (size_t s = 0; s < sizeof layer_specs / sizeof layer_specs[0]; s++) {
            layer_tensor_name(name, sizeof name, layers[i], layer_specs[s].suffix);
            if ((t = hive_gguf_find_tensor(g, name))) fn(arg, t);
        }
    }
    free(layers);
    if (last == hp.n_layer) {
        if ((t = hive_gguf_find_tensor(g, "output_norm.weight"))) fn(arg, t);
        if ((t = hive_gguf_find_tensor(g, "output.weight"))) fn(arg, t);
        else if (first != 0 && (t = hive_gguf_find_tensor(g, "token_embd.weight"))) fn(arg, t);
    }
    return HIVE_OK;
}

static void add_bytes(void *arg, const struct hive_gguf_tensor *t) { *(uint64_t *)arg += t->n_bytes; }

uint64_t hive_model_stage_bytes(const hive_gguf *g, int first, int last) {
    uint64_t total = 0;
    /* The embedding table is read one row per token, not whole. */
    struct hive_hparams hp;
    if (hive_model_read_hparams(g, &hp, NULL)) return 0;
    if (hive_model_stage_tensors(g, first, last, add_bytes, &total, NULL)) return 0;
    const struct hive_gguf_tensor *emb = hive_gguf_find_tensor(g, "token_embd.weight");
    int emb_is_head = last == hp.n_layer && !hive_gguf_find_tensor(g, "output.weight");
    if (first == 0 && emb && !emb_is_head) total -= emb->n_bytes;
    return total;
}

/* ---- loading ---- */

struct loader {
    hive_model *m;
    const char *path;
    char *err;
    float *vec_next;   /* bump allocator inside m->vectors */
    float *vec_end;
    /* Dry run: shapes and types are checked and vector sizes counted, but
     * nothing is stored; the pass hive_model_load makes before it
     * allocates anything in proportion to the metadata. */
    int dry;
    int64_t n_vec;     /* floats the vectors need (dry run) */
};

/* Stands for a vector in a dry run (never read). */
static const float dry_vector[1];

/* Checks shape and type of a matrix (rows, cols) and fills mat. */
static int load_matrix(struct loader *ld, const char *name, int64_t rows, int64_t cols, int required,
                       struct model_matrix *mat) {
    memset(mat, 0, sizeof *mat);
    const struct hive_gguf_tensor *t = hive_gguf_find_tensor(ld->m->gguf, name);
    if (!t) {
        if (!required) return HIVE_OK;
        return hive_errf(ld->err, HIVE_ERR_FORMAT, "%s: missing tensor %s", ld->path, name);
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return hive_errf(ld->err, HIVE_ERR_FORMAT,
                         "%s: tensor %s has shape [%lld, %lld, %lld], expected [%lld, %lld]", ld->path, name,
                         (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)cols,
                         (long long)rows);
    if (!hive_type_is_weight(t->type))
        return hive_errf(ld->err, HIVE_ERR_UNSUPPORTED, "%s: tensor %s has type %s (%d), not supported", ld->path,
                         name, hive_type_name(t->type), t->type);
    uint64_t row_bytes = hive_type_row_bytes(t->type, cols);
    if (row_bytes == 0 || t->n_bytes != row_bytes * (uint64_t)rows)
        return hive_errf(ld->err, HIVE_ERR_FORMAT, "%s: tensor %s: row of %lld is not a whole number of %s blocks",
                         ld->path, name, (long long)cols, hive_type_name(t->type));
    mat->type = t->type;
    mat->data = t->data;
    mat->n_rows = rows;
    mat->n_cols = cols;
    return HIVE_OK;
}

/* Loads a 1-D tensor of n elements as f32 (copied, any weight type). */
static int load_vector(struct loader *ld, const char *name, int64_t n, int required, const float **out) {
    *out = NULL;
    const struct hive_gguf_tensor *t = hive_gguf_find_tensor(ld->m->gguf, name);
    if (!t) {
        if (!required) return HIVE_OK;
        return hive_errf(ld->err, HIVE_ERR_FORMAT, "%s: missing tensor %s", ld->path, name);
    }
    if (t->n_dims != 1 || t->ne[0] != n)
        return hive_errf(ld->err, HIVE_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld], expected [%lld]", ld->path,
                         name, (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    if (!hive_type_is_weight(t->type) || hive_type_row_bytes(t->type, n) != t->n_bytes || t->n_bytes == 0)
        return hive_errf(ld->err, HIVE_ERR_UNSUPPORTED, "%s: tensor %s has unsupported type %s", ld->path, name,
                         hive_type_name(t->type));
    if (ld->dry) {
        ld->n_vec += n;
        *out = dry_vector;
        return HIVE_OK;
    }
    if (ld->vec_end - ld->vec_next < n)
        return hive_errf(ld->err, HIVE_ERR_NOMEM, "%s: vector storage exhausted at %s", ld->path, name);
    float *dst = ld->vec_next;
    ld->vec_next += n;
    hive_dequantize_row(t->type, t->data, dst, n);
    *out = dst;
    return HIVE_OK;
}

static int load_layer(struct loader *ld, int il, struct model_layer *L) {
    const struct hive_hparams *hp = &ld->m->hp;
    int64_t d = hp->n_embd, hd = hp->head_dim, nq = (int64_t)hp->n_head * hd, nkv = (int64_t)hp->n_head_kv * hd;
    int qwen2 = hp->arch == HIVE_ARCH_QWEN2, qwen3 = hp->arch == HIVE_ARCH_QWEN3;
    char name[96];
    int rc;
#define NAME(suffix) (layer_tensor_name(name, sizeof name, il, suffix), name)
    if ((rc = load_vector(ld, NAME("attn_norm.weight"), d, 1, &L->attn_norm))) return rc;
    if ((rc = load_matrix(ld, NAME("attn_q.weight"), nq, d, 1, &L->wq))) return rc;
    if ((rc = load_matrix(ld, NAME("attn_k.weight"), nkv, d, 1, &L->wk))) return rc;
    if ((rc = load_matrix(ld, NAME("attn_v.weight"), nkv, d, 1, &L->wv))) return rc;
    if ((rc = load_matrix(ld, NAME("attn_output.weight"), d, nq, 1, &L->wo))) return rc;
    if ((rc = load_vector(ld, NAME("attn_q.bias"), nq, qwen2, &L->bq))) return rc;
    if ((rc = load_vector(ld, NAME("attn_k.bias"), nkv, qwen2, &L->bk))) return rc;
    if ((rc = load_vector(ld, NAME("attn_v.bias"), nkv, qwen2, &L->bv))) return rc;
    if ((rc = load_vector(ld, NAME("attn_q_norm.weight"), hd, qwen3, &L->q_norm))) return rc;
    if ((rc = load_vector(ld, NAME("attn_k_norm.weight"), hd, qwen3, &L->k_norm))) return rc;
    if ((rc = load_vector(ld, NAME("ffn_norm.weight"), d, 1, &L->ffn_norm))) return rc;
    if ((rc = load_matrix(ld, NAME("ffn_gate.weight"), hp->n_ff, d, 1, &L->gate))) return rc;
    if ((rc = load_matrix(ld, NAME("ffn_up.weight"), hp->n_ff, d, 1, &L->up))) return rc;
    if ((rc = load_matrix(ld, NAME("ffn_down.weight"), d, hp->n_ff, 1, &L->down))) return rc;
#undef NAME
    if ((L->q_norm == NULL) != (L->k_norm == NULL))
        return hive_errf(ld->err, HIVE_ERR_FORMAT, "%s: layer %d has only one of attn_q_norm / attn_k_norm", ld->path,
                         il);
    return HIVE_OK;
}

/* Moves every matrix of the range into one anonymous mapping (64-byte
 * aligned each, huge pages requested) and tells the kernel the file pages
 * are no longer needed. Failure is not an error: the mmap is still valid. */
static void copy_weights(hive_model *m, const struct hive_model_opts *o) {
    struct model_matrix *mats[8];
    size_t n_mats = 0;
    size_t n_layers = (size_t)(m->last - m->first);
    /* Pass 0 sizes the mapping, pass 1 copies. */
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        for (size_t i = 0; i < n_layers + 1; i++) {
            n_mats = 0;
            if (i < n_layers) {
                struct model_layer *L = &m->layers[i];
                struct model_matrix *ls[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
                for (size_t k = 0; k < 7; k++) mats[n_mats++] = ls[k];
            } else {
                if (m->tok_embd.data) mats[n_mats++] = &m->tok_embd;
                if (m->output.data && m->output.data != m->tok_embd.data) mats[n_mats++] = &m->output;
            }
            for (size_t k = 0; k < n_mats; k++) {
                struct model_matrix *w = mats[k];
                size_t bytes = (size_t)hive_type_row_bytes(w->type, w->n_cols) * (size_t)w->n_rows;
                if (pass == 1) {
                    uint8_t *dst = (uint8_t *)m->weights_copy + off;
                    memcpy(dst, w->data, bytes);
                    /* Drop the file pages we copied (whole pages inside the tensor only). */
                    hive_mem_discard((void *)w->data, bytes);
                    int tied = w == &m->tok_embd && m->output.data == w->data;
                    w->data = dst;
                    if (tied) m->output.data = dst;
                    if (o->progress) o->progress(o->progress_ctx, off + bytes, total);
                }
                off += (bytes + 63) & ~(size_t)63;
            }
        }
        if (pass == 0) {
            total = off;
            if (total == 0) return;
            void *p = hive_map_anon(total, HIVE_MAP_HUGE);
            if (!p) {
                hive_log(HIVE_LOG_WARN, "weight copy: mmap %zu bytes: %s; reading through the file mapping", total,
                         strerror(errno));
                return;
            }
            m->weights_copy = p;
            m->weights_copy_bytes = total;
        }
    }
}

/* Every tensor of the loaded range, in the order the file's readers expect.
 * In a dry run the layers go to a scratch struct and nothing is stored. */
static int load_tensors(struct loader *ld) {
    hive_model *m = ld->m;
    const struct hive_hparams *hp = &m->hp;
    int64_t d = hp->n_embd;
    int rc;
    if (m->first == 0 && (rc = load_matrix(ld, "token_embd.weight", hp->n_vocab, d, 1, &m->tok_embd))) return rc;
    if (hp->rope_scaling == 2 && (rc = load_vector(ld, "rope_freqs.weight", hp->n_rot / 2, 1, &m->rope_factors)))
        return rc;
    struct model_layer scratch;
    for (int il = m->first; il < m->last; il++) {
        struct model_layer *L = ld->dry ? &scratch : &m->layers[il - m->first];
        if ((rc = load_layer(ld, il, L))) return rc;
    }
    if (m->last == hp->n_layer) {
        if ((rc = load_vector(ld, "output_norm.weight", d, 1, &m->output_norm))) return rc;
        if (hive_gguf_find_tensor(m->gguf, "output.weight")) {
            if ((rc = load_matrix(ld, "output.weight", hp->n_vocab, d, 1, &m->output))) return rc;
        } else if (m->tok_embd.data) {
            m->output = m->tok_embd;
        } else if ((rc = load_matrix(ld, "token_embd.weight", hp->n_vocab, d, 1, &m->output))) {
            return rc; /* tied head on a stage that does not start at layer 0 */
        }
    }
    return HIVE_OK;
}

struct hive_model_opts hive_model_default_opts(void) {
    struct hive_model_opts o = {.first_layer = 0, .last_layer = -1, .copy_weights = 1};
    return o;
}

int hive_model_load(hive_model **out, const char *path, const struct hive_model_opts *opts, char *err) {
    *out = NULL;
    struct hive_model_opts o = opts ? *opts : hive_model_default_opts();
    hive_model *m = hive_calloc(1, sizeof *m);
    if (!m) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    m->fwd_cache = fwd_cache_create();
    if (!m->fwd_cache) {
        free(m);
        return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    }
    int rc = hive_gguf_open(&m->gguf, path, err);
    if (rc) goto fail;
    rc = hive_model_read_hparams(m->gguf, &m->hp, err);
    if (rc) goto fail;
    const struct hive_hparams *hp = &m->hp;
    m->first = o.first_layer;
    m->last = o.last_layer < 0 ? hp->n_layer : o.last_layer;
    if (m->first < 0 || m->last > hp->n_layer || m->first > m->last) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "%s: layer range [%d, %d) invalid for %d layers", path, m->first, m->last,
                       hp->n_layer);
        goto fail;
    }
    int n_layers = m->last - m->first;
    /* Check the metadata against the tensors before anything is allocated
     * in proportion to it: a layer needs at least 9 tensors, and a dry run
     * of the whole load checks every shape and counts the vector storage,
     * so a small file that declares a billion layers or a huge embedding
     * costs nothing. */
    if ((int64_t)n_layers * 9 > hive_gguf_n_tensors(m->gguf)) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: %d layers need at least %lld tensors, the file holds %lld", path,
                       n_layers, (long long)n_layers * 9, (long long)hive_gguf_n_tensors(m->gguf));
        goto fail;
    }
    struct loader ld = {.m = m, .path = path, .err = err, .dry = 1};
    if ((rc = load_tensors(&ld))) goto fail;
    m->layers = hive_calloc((size_t)(n_layers ? n_layers : 1), sizeof *m->layers);
    m->vectors = hive_malloc_array((size_t)(ld.n_vec ? ld.n_vec : 1), sizeof(float));
    if (!m->layers || !m->vectors) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "out of memory loading %s", path);
        goto fail;
    }
    ld.dry = 0;
    ld.vec_next = m->vectors;
    ld.vec_end = m->vectors + ld.n_vec;
    if ((rc = load_tensors(&ld))) goto fail;
    if (o.copy_weights) copy_weights(m, &o);
    *out = m;
    return HIVE_OK;
fail:
    hive_model_free(m);
    return rc ? rc : HIVE_ERR_FORMAT;
}

void hive_model_free(hive_model *m) {
    if (!m) return;
    if (m->weights_copy) hive_unmap_anon(m->weights_copy, m->weights_copy_bytes);
    fwd_cache_free(m->fwd_cache);
    free(m->vectors);
    free(m->layers);
    hive_gguf_close(m->gguf);
    free(m);
}

const struct hive_hparams *hive_model_hparams(const hive_model *m) { return &m->hp; }
const hive_gguf *hive_model_gguf(const hive_model *m) { return m->gguf; }
int hive_model_first_layer(const hive_model *m) { return m->first; }
int hive_model_last_layer(const hive_model *m) { return m->last; }
