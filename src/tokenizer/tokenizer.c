/* tokenizer.c - loading a tokenizer from GGUF metadata, lookups, special
 * token matching, and the encode/decode entry points.
 *
 * Everything read from the file is copied, so the tokenizer outlives the
 * hive_gguf it was loaded from. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return mix64(h ^ len);
}

static uint64_t table_size(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

int32_t tok_find(const hive_tokenizer *t, const char *s, size_t len) {
    for (uint64_t i = hash_bytes(s, len) & t->map_mask;; i = (i + 1) & t->map_mask) {
        uint32_t slot = t->map[i];
        if (!slot) return -1;
        const struct tok_entry *e = &t->tok[slot - 1];
        if (e->len == len && !memcmp(t->arena + e->off, s, len)) return (int32_t)(slot - 1);
    }
}

/* Later duplicates win, as in llama.cpp's token_to_id. */
static void map_insert(hive_tokenizer *t, int32_t id) {
    const struct tok_entry *e = &t->tok[id];
    for (uint64_t i = hash_bytes(t->arena + e->off, e->len) & t->map_mask;; i = (i + 1) & t->map_mask) {
        uint32_t slot = t->map[i];
        if (slot) {
            const struct tok_entry *o = &t->tok[slot - 1];
            if (o->len != e->len || memcmp(t->arena + o->off, t->arena + e->off, e->len)) continue;
        }
        t->map[i] = (uint32_t)id + 1;
        return;
    }
}

static uint64_t merge_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

int32_t tok_merge(const hive_tokenizer *t, int32_t a, int32_t b, int32_t *merged) {
    if (!t->merge_rank || a < 0 || b < 0) return -1;
    uint64_t key = merge_key(a, b);
    for (uint64_t i = mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_rank[i] < 0) return -1;
        if (t->merge_key[i] == key) {
            *merged = t->merge_result[i];
            return t->merge_rank[i];
        }
    }
}

/* First rank wins for a pair listed twice. */
static void merge_insert(hive_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = merge_key(a, b);
    for (uint64_t i = mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_rank[i] >= 0) {
            if (t->merge_key[i] == key) return;
            continue;
        }
        t->merge_key[i] = key, t->merge_rank[i] = rank, t->merge_result[i] = merged;
        return;
    }
}

/* ---- GPT-2 byte mapping ----
 * Printable bytes stand for themselves; the other 68 (controls, space, DEL,
 * NBSP, soft hyphen...) are moved to U+0100.. in byte order, so every token
 * text is printable. */
static int byte_is_printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

static void build_byte_mapping(hive_tokenizer *t) {
    uint16_t next = 256;
    for (int c = 0; c < 512; c++) t->byte_of_cp[c] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint16_t cp = byte_is_printable(b) ? (uint16_t)b : next++;
        t->cp_of_byte[b] = cp;
        t->byte_of_cp[cp] = (int16_t)b;
    }
}

/* ---- loading ---- */

void tok_ids_push(struct tok_ids *ids, int32_t id) {
    if (ids->oom) return;
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int32_t *v = hive_malloc_array(cap, sizeof *v);
        if (!v) {
            ids->oom = 1;
            return;
        }
        if (ids->n) memcpy(v, ids->v, ids->n * sizeof *v);
        free(ids->v);
        ids->v = v, ids->cap = cap;
    }
    ids->v[ids->n++] = id;
}

/* Reads element i of a numeric GGUF array as a double; 0 for other types. */
static double array_elem(int type, const void *data, uint64_t i) {
    const unsigned char *p = data;
    switch (type) {
    case HIVE_GGUF_UINT8: return p[i];
    case HIVE_GGUF_INT8: return (int8_t)p[i];
#define AS(T)                               \
    {                                       \
        T v;                                \
        memcpy(&v, p + i * sizeof v, sizeof v); \
        return (double)v;                   \
    }
    case HIVE_GGUF_UINT16: AS(uint16_t)
    case HIVE_GGUF_INT16: AS(int16_t)
    case HIVE_GGUF_UINT32: AS(uint32_t)
    case HIVE_GGUF_INT32: AS(int32_t)
    case HIVE_GGUF_FLOAT32: AS(float)
    case HIVE_GGUF_UINT64: AS(uint64_t)
    case HIVE_GGUF_INT64: AS(int64_t)
    case HIVE_GGUF_FLOAT64: AS(double)
#undef AS
    default: return 0;
    }
}

static int is_numeric(int type) { return type != HIVE_GGUF_STRING && type != HIVE_GGUF_ARRAY && type != HIVE_GGUF_BOOL; }

/* An optional special-token id key; -1 when absent or out of range. */
static int32_t read_id(const hive_gguf *g, const char *key, int32_t n_vocab, int32_t fallback) {
    uint32_t v;
    if (hive_gguf_get_u32(g, key, &v) != HIVE_OK) return fallback;
    if (v >= (uint32_t)n_vocab) {
        hive_log(HIVE_LOG_WARN, "tokenizer: %s = %u is outside the vocabulary (%d), ignored", key, v, n_vocab);
        return -1;
    }
    return (int32_t)v;
}

static int read_flag(const hive_gguf *g, const char *key, int fallback) {
    int v;
    return hive_gguf_get_bool(g, key, &v) == HIVE_OK ? v != 0 : fallback;
}

static int load_tokens(hive_tokenizer *t, const hive_gguf *g, char *err) {
    const struct hive_str *strs;
    uint64_t n;
    if (hive_gguf_get_str_array(g, "tokenizer.ggml.tokens", &strs, &n) != HIVE_OK)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no tokenizer (tokenizer.ggml.tokens missing)", hive_gguf_path(g));
    if (n == 0 || n >= INT32_MAX)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: bad vocabulary size %llu", hive_gguf_path(g), (unsigned long long)n);
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (strs[i].len > UINT32_MAX) return hive_errf(err, HIVE_ERR_FORMAT, "%s: token %llu too long", hive_gguf_path(g), (unsigned long long)i);
        bytes += strs[i].len;
    }
    if (bytes >= UINT32_MAX) return hive_errf(err, HIVE_ERR_FORMAT, "%s: token texts too large", hive_gguf_path(g));
    t->n_vocab = (int32_t)n;
    t->tok = hive_calloc(n, sizeof *t->tok);
    t->arena = malloc(bytes + 1);
    t->map_mask = table_size(n) - 1;
    t->map = hive_calloc(t->map_mask + 1, sizeof *t->map);
    if (!t->tok || !t->arena || !t->map) return hive_errf(err, HIVE_ERR_NOMEM, "tokenizer: out of memory");
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (strs[i].len) memcpy(t->arena + off, strs[i].ptr, strs[i].len);
        t->tok[i] = (struct tok_entry){off, (uint32_t)strs[i].len, 0.0f, TT_NORMAL, 0};
        off += (uint32_t)strs[i].len;
    }
    t->arena[off] = 0;

    int et;
    const void *data;
    uint64_t m;
    if (hive_gguf_get_array(g, "tokenizer.ggml.scores", &et, &data, &m) == HIVE_OK) {
        if (m != n || !is_numeric(et))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu entries for %llu tokens",
                             hive_gguf_path(g), (unsigned long long)m, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) t->tok[i].score = (float)array_elem(et, data, i);
    }
    if (hive_gguf_get_array(g, "tokenizer.ggml.token_type", &et, &data, &m) == HIVE_OK) {
        if (m != n || !is_numeric(et))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: tokenizer.ggml.token_type has %llu entries for %llu tokens",
                             hive_gguf_path(g), (unsigned long long)m, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++) {
            double v = array_elem(et, data, i);
            t->tok[i].type = v >= TT_NORMAL && v <= TT_BYTE ? (uint8_t)v : TT_NORMAL;
        }
    }
    for (int32_t i = 0; i < t->n_vocab; i++) map_insert(t, i);
    return HIVE_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xAB>" -> 0xAB, else -1. */
static int byte_token_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int load_bytes(hive_tokenizer *t) {
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    for (int c = 0; c < 512; c++) t->byte_of_cp[c] = -1;
    if (t->kind == TOK_SPM) {
        for (int32_t i = 0; i < t->n_vocab; i++) {
            int b = byte_token_value(tok_text(t, i), t->tok[i].len);
            if (b >= 0 && t->byte_tok[b] < 0) t->byte_tok[b] = i;
        }
        return HIVE_OK;
    }
    build_byte_mapping(t);
    for (unsigned b = 0; b < 256; b++) {
        char s[4];
        t->byte_tok[b] = tok_find(t, s, (size_t)utf8_encode(t->cp_of_byte[b], s));
    }
    return HIVE_OK;
}

static int load_merges(hive_tokenizer *t, const hive_gguf *g, char *err) {
    const struct hive_str *strs;
    uint64_t n;
    if (hive_gguf_get_str_array(g, "tokenizer.ggml.merges", &strs, &n) != HIVE_OK) {
        hive_log(HIVE_LOG_WARN, "%s: BPE tokenizer without tokenizer.ggml.merges; text will encode to bytes", hive_gguf_path(g));
        return HIVE_OK;
    }
    if (n >= INT32_MAX) return hive_errf(err, HIVE_ERR_FORMAT, "%s: too many merges", hive_gguf_path(g));
    uint64_t cap = table_size(n);
    t->merge_mask = cap - 1;
    t->merge_key = hive_malloc_array(cap, sizeof *t->merge_key);
    t->merge_rank = hive_malloc_array(cap, sizeof *t->merge_rank);
    t->merge_result = hive_malloc_array(cap, sizeof *t->merge_result);
    size_t longest = 0;
    for (uint64_t i = 0; i < n; i++)
        if (strs[i].len > longest) longest = strs[i].len;
    char *joined = malloc(longest + 1);
    if (!t->merge_key || !t->merge_rank || !t->merge_result || !joined) {
        free(joined);
        return hive_errf(err, HIVE_ERR_NOMEM, "tokenizer: out of memory");
    }
    memset(t->merge_rank, 0xFF, cap * sizeof *t->merge_rank);
    uint64_t skipped = 0;
    for (uint64_t r = 0; r < n; r++) {
        const char *s = strs[r].ptr;
        size_t len = strs[r].len;
        int done = 0;
        /* "left right": byte-level texts have no raw spaces, but try every
         * space in case a vocabulary's tokens do. */
        for (size_t sp = 0; sp < len && !done; sp++) {
            if (s[sp] != ' ') continue;
            int32_t a = tok_find(t, s, sp), b = tok_find(t, s + sp + 1, len - sp - 1);
            if (a < 0 || b < 0) continue;
            memcpy(joined, s, sp);
            memcpy(joined + sp, s + sp + 1, len - sp - 1);
            int32_t m = tok_find(t, joined, len - 1);
            if (m < 0) continue;
            merge_insert(t, a, b, (int32_t)r, m);
            done = 1;
        }
        skipped += !done;
    }
    free(joined);
    if (skipped) hive_log(HIVE_LOG_WARN, "%s: %llu merges name tokens outside the vocabulary, ignored", hive_gguf_path(g), (unsigned long long)skipped);
    return HIVE_OK;
}

struct special_sort {
    unsigned char first;
    uint32_t len;
    int32_t id;
};

static int cmp_special(const void *x, const void *y) {
    const struct special_sort *a = x, *b = y;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int load_specials(hive_tokenizer *t, char *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int type = t->tok[i].type;
        n += t->tok[i].len && (type == TT_CONTROL || type == TT_UNKNOWN || type == TT_USER_DEFINED);
    }
    struct special_sort *v = hive_malloc_array(n ? (size_t)n : 1, sizeof *v);
    t->special = hive_malloc_array(n ? (size_t)n : 1, sizeof *t->special);
    if (!v || !t->special) {
        free(v);
        return hive_errf(err, HIVE_ERR_NOMEM, "tokenizer: out of memory");
    }
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int type = t->tok[i].type;
        if (t->tok[i].len && (type == TT_CONTROL || type == TT_UNKNOWN || type == TT_USER_DEFINED))
            v[n++] = (struct special_sort){(unsigned char)tok_text(t, i)[0], t->tok[i].len, i};
    }
    qsort(v, (size_t)n, sizeof *v, cmp_special);
    memset(t->special_start, 0, sizeof t->special_start);
    for (int32_t i = 0; i < n; i++) {
        t->special[i] = v[i].id;
        t->special_start[v[i].first + 1]++;
    }
    for (int b = 0; b < 256; b++) t->special_start[b + 1] += t->special_start[b];
    free(v);
    return HIVE_OK;
}

/* End-of-generation tokens: the eos/eot/eom ids and the tokens llama.cpp
 * recognises by their text. A token found by its text that the GGUF typed as
 * a user-defined word is made a control token, as llama.cpp does
 * ("control-looking token ... was not control-type"): phi-3's "</s>" is
 * user-defined in its GGUF, and without this a user's literal "</s>" would
 * become the EOS token even with special parsing off. As a control token it
 * now only matches with parse_special and decodes to "" unless asked. */
static void mark_eog(hive_tokenizer *t) {
    static const char *const names[] = {"<|im_end|>", "<|eot_id|>",      "<|eom_id|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|end_of_text|>", "<EOT>",      "</s>"};
    int32_t ids[] = {t->eos, t->eot, t->eom};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) t->tok[ids[i]].flags |= TOKF_EOG;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = tok_find(t, names[i], strlen(names[i]));
        if (id < 0) continue;
        t->tok[id].flags |= TOKF_EOG;
        if (t->tok[id].type == TT_USER_DEFINED) {
            hive_log(HIVE_LOG_DEBUG, "tokenizer: control-looking token %d '%s' was not control-type; made control", id,
                     names[i]);
            t->tok[id].type = TT_CONTROL;
        }
    }
}

int hive_tokenizer_load(hive_tokenizer **out, const hive_gguf *g, char *err) {
    *out = NULL;
    char model[64];
    if (hive_gguf_get_cstr(g, "tokenizer.ggml.model", model, sizeof model) != HIVE_OK)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no tokenizer (tokenizer.ggml.model missing)", hive_gguf_path(g));
    int kind = !strcmp(model, "llama") ? TOK_SPM : !strcmp(model, "gpt2") ? TOK_BPE : 0;
    if (!kind) return hive_errf(err, HIVE_ERR_UNSUPPORTED, "%s: tokenizer model '%s' is not supported", hive_gguf_path(g), model);

    hive_tokenizer *t = hive_calloc(1, sizeof *t);
    if (!t) return hive_errf(err, HIVE_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    int rc = load_tokens(t, g, err);
    if (rc == HIVE_OK) rc = load_bytes(t);
    if (rc == HIVE_OK && kind == TOK_BPE) {
        char pre[64] = "default";
        hive_gguf_get_cstr(g, "tokenizer.ggml.pre", pre, sizeof pre);
        t->pre = pretok_from_name(pre);
        if (t->pre < 0) {
            hive_log(HIVE_LOG_WARN, "%s: unknown pre-tokenizer '%s', using gpt-2's", hive_gguf_path(g), pre);
            t->pre = PRE_GPT2;
        }
        t->ignore_merges = t->pre == PRE_LLAMA3; /* llama3's tokenizer.json sets ignore_merges */
        rc = load_merges(t, g, err);
    }
    if (rc == HIVE_OK) rc = load_specials(t, err);
    if (rc != HIVE_OK) {
        hive_tokenizer_free(t);
        return rc;
    }
    int spm = kind == TOK_SPM;
    t->bos = read_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, spm && t->n_vocab > 1 ? 1 : -1);
    t->eos = read_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, spm && t->n_vocab > 2 ? 2 : -1);
    t->unk = read_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, spm ? 0 : -1);
    t->eot = read_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, -1);
    t->eom = read_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, -1);
    t->add_bos = read_flag(g, "tokenizer.ggml.add_bos_token", spm || t->pre == PRE_LLAMA3);
    t->add_eos = read_flag(g, "tokenizer.ggml.add_eos_token", 0);
    t->add_space_prefix = read_flag(g, "tokenizer.ggml.add_space_prefix", spm);
    mark_eog(t);
    *out = t;
    return HIVE_OK;
}

void hive_tokenizer_free(hive_tokenizer *t) {
    if (!t) return;
    free(t->tok);
    free(t->arena);
    free(t->map);
    free(t->merge_key);
    free(t->merge_rank);
    free(t->merge_result);
    free(t->special);
    free(t);
}

int32_t hive_tokenizer_n_vocab(const hive_tokenizer *t) { return t->n_vocab; }
int32_t hive_tokenizer_bos(const hive_tokenizer *t) { return t->bos; }
int32_t hive_tokenizer_eos(const hive_tokenizer *t) { return t->eos; }
int hive_tokenizer_add_bos(const hive_tokenizer *t) { return t->add_bos && t->bos >= 0; }

int hive_tokenizer_is_eog(const hive_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->tok[id].flags & TOKF_EOG);
}

int32_t hive_tokenizer_find(const hive_tokenizer *t, const char *text, size_t len) {
    return text ? tok_find(t, text, len) : -1;
}

const char *hive_tokenizer_token_text(const hive_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tok[id].len;
    return tok_text(t, id);
}

/* ---- encoding ---- */

/* The longest special token at text[pos..len), or -1. User-defined tokens
 * always match (they are plain added words); control and unknown ones only
 * when parse_special is set. */
static int32_t match_special(const hive_tokenizer *t, const char *text, size_t len, size_t pos, int parse_special) {
    unsigned char first = (unsigned char)text[pos];
    for (uint32_t k = t->special_start[first]; k < t->special_start[first + 1]; k++) {
        int32_t id = t->special[k];
        const struct tok_entry *e = &t->tok[id];
        if (!parse_special && e->type != TT_USER_DEFINED) continue;
        if (e->len <= len - pos && !memcmp(text + pos, t->arena + e->off, e->len)) return id;
    }
    return -1;
}

static int encode_fragment(const hive_tokenizer *t, const char *text, size_t len, int *prev_special, struct tok_ids *out) {
    if (!len) return HIVE_OK;
    int rc;
    if (t->kind == TOK_SPM)
        /* llama.cpp adds the dummy prefix at the start and after every special token. */
        rc = spm_encode(t, text, len, t->add_space_prefix && *prev_special, out);
    else
        rc = bpe_encode(t, text, len, out);
    *prev_special = 0;
    return rc;
}

int hive_tokenize(const hive_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                  int32_t *out, int cap) {
    if (!t || (!text && len) || cap < 0 || (cap > 0 && !out)) return -1;
    struct tok_ids ids = {0};
    if (add_special && t->add_bos && t->bos >= 0) tok_ids_push(&ids, t->bos);
    int prev_special = 1, rc = HIVE_OK;
    size_t frag = 0;
    for (size_t pos = 0; pos < len && rc == HIVE_OK;) {
        int32_t id = match_special(t, text, len, pos, parse_special);
        if (id < 0) {
            pos++;
            continue;
        }
        rc = encode_fragment(t, text + frag, pos - frag, &prev_special, &ids);
        tok_ids_push(&ids, id);
        prev_special = 1;
        pos += t->tok[id].len;
        frag = pos;
    }
    if (rc == HIVE_OK) rc = encode_fragment(t, text + frag, len - frag, &prev_special, &ids);
    if (add_special && t->add_eos && t->eos >= 0) tok_ids_push(&ids, t->eos);
    if (rc != HIVE_OK || ids.oom || ids.n > INT32_MAX) {
        free(ids.v);
        return -1;
    }
    for (size_t i = 0; i < ids.n && i < (size_t)cap; i++) out[i] = ids.v[i];
    int n = (int)ids.n;
    free(ids.v);
    return n;
}

/* ---- decoding ---- */

/* Appends s[0..n) to buf at *len, never past cap, always counting. */
static void put(char *buf, int cap, int *len, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, (*len)++)
        if (*len < cap) buf[*len] = s[i];
}

static void put_spm_text(char *buf, int cap, int *len, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 && (unsigned char)s[i + 2] == 0x81) {
            put(buf, cap, len, " ", 1);
            i += 3;
        } else {
            put(buf, cap, len, s + i, 1);
            i++;
        }
    }
}

static void put_bpe_text(const hive_tokenizer *t, char *buf, int cap, int *len, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp < 512 && t->byte_of_cp[cp] >= 0) {
            char b = (char)t->byte_of_cp[cp];
            put(buf, cap, len, &b, 1);
        } else {
            put(buf, cap, len, s + i, (size_t)l); /* not a mapped byte: keep as is */
        }
        i += (size_t)l;
    }
}

int hive_token_to_piece(const hive_tokenizer *t, int32_t id, int special, char *buf, int cap) {
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    if (cap < 0 || !buf) cap = 0;
    const struct tok_entry *e = &t->tok[id];
    const char *s = t->arena + e->off;
    int len = 0;
    switch (e->type) {
    case TT_CONTROL:
    case TT_UNKNOWN:
        if (special) put(buf, cap, &len, s, e->len);
        break;
    case TT_USER_DEFINED:
        put(buf, cap, &len, s, e->len);
        break;
    case TT_UNUSED:
        break;
    case TT_BYTE: {
        int b = byte_token_value(s, e->len);
        if (b >= 0) {
            char c = (char)b;
            put(buf, cap, &len, &c, 1);
        } else {
            put(buf, cap, &len, s, e->len);
        }
        break;
    }
    default:
        if (t->kind == TOK_SPM) put_spm_text(buf, cap, &len, s, e->len);
        else put_bpe_text(t, buf, cap, &len, s, e->len);
    }
    return len;
}

int hive_detokenize(const hive_tokenizer *t, const int32_t *ids, int n, int special, char *buf, int cap) {
    if (!t || n < 0 || (n && !ids)) return -1;
    if (cap < 0 || !buf) cap = 0;
    int len = 0;
    int strip = t->kind == TOK_SPM && t->add_space_prefix;
    char piece[256];
    for (int i = 0; i < n; i++) {
        int m = hive_token_to_piece(t, ids[i], special, piece, (int)sizeof piece);
        const char *p = piece;
        char *big = NULL;
        if (m > (int)sizeof piece) {
            big = malloc((size_t)m);
            if (!big) return -1;
            hive_token_to_piece(t, ids[i], special, big, m);
            p = big;
        }
        int skip = 0;
        if (strip && m > 0) {
            skip = p[0] == ' '; /* the dummy prefix the encoder added */
            strip = 0;
        }
        if (len > INT32_MAX - m) {
            free(big);
            return -1;
        }
        put(buf, cap, &len, p + skip, (size_t)(m - skip));
        free(big);
    }
    if (cap > 0) buf[len < cap ? len : cap - 1] = 0;
    return len;
}
