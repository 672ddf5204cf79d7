/* convert.c - Hugging Face tokenizer.json (byte-level BPE) -> vocab-only GGUF.
 *
 * tokenizer.json: model.vocab {text: id}, model.merges ["a b", ...] or
 * [["a", "b"], ...], added_tokens [{id, content, special}, ...]. Token texts
 * are stored as written (byte-level mapped for the vocabulary, raw text for
 * added tokens, which are matched in raw text). Ids nobody names become
 * "[PAD<id>]" unused tokens. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/gguf.h"
#include "tokenizer/tok_internal.h"

#define MAX_JSON_BYTES (1u << 30)

static int read_json(const char *path, cJSON **out, char *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || (unsigned long)n > MAX_JSON_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return hive_errf(err, HIVE_ERR_IO, "%s: cannot size the file (or it is over 1 GiB)", path);
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return hive_errf(err, HIVE_ERR_IO, "read %s: short read", path);
    }
    buf[n] = 0;
    *out = cJSON_ParseWithLength(buf, (size_t)n);
    free(buf);
    if (!*out) return hive_errf(err, HIVE_ERR_FORMAT, "%s: not valid JSON", path);
    return HIVE_OK;
}

/* A token field of tokenizer_config.json: "text" or {"content": "text"}. */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The config beside path: ".../x-tokenizer.json" -> ".../x-tokenizer_config.json". */
static cJSON *read_config(const char *json_path) {
    static const char suffix[] = "tokenizer.json";
    size_t n = strlen(json_path), s = strlen(suffix);
    if (n < s || strcmp(json_path + n - s, suffix)) return NULL;
    char *p = malloc(n + 16);
    if (!p) return NULL;
    snprintf(p, n + 16, "%.*stokenizer_config.json", (int)(n - s), json_path);
    cJSON *cfg = NULL;
    char err[HIVE_ERR_LEN];
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        if (read_json(p, &cfg, err) != HIVE_OK) hive_log(HIVE_LOG_WARN, "ignoring %s", err);
    }
    free(p);
    return cfg;
}

struct vocab {
    const char **text; /* n entries, NULL = hole */
    int32_t *type;
    int64_t n;
    char **owned; /* strings allocated here */
    size_t n_owned;
};

static int32_t find_text(const struct vocab *v, const char *s) {
    if (!s) return -1;
    for (int64_t i = 0; i < v->n; i++) /* used for a handful of names only */
        if (v->text[i] && !strcmp(v->text[i], s)) return (int32_t)i;
    return -1;
}

static int32_t first_of(const struct vocab *v, const char *const *names) {
    for (; *names; names++) {
        int32_t id = find_text(v, *names);
        if (id >= 0) return id;
    }
    return -1;
}

static int add_owned(struct vocab *v, char *s) {
    if (!s) return HIVE_ERR_NOMEM;
    v->owned[v->n_owned++] = s;
    return HIVE_OK;
}

static int build_vocab(const cJSON *root, const char *path, struct vocab *v, char *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(model) || !cJSON_IsObject(vocab))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no model.vocab object", path);
    if (cJSON_IsString(type) && strcmp(type->valuestring, "BPE"))
        return hive_errf(err, HIVE_ERR_UNSUPPORTED, "%s: model type '%s' (only BPE is supported)", path, type->valuestring);

    int64_t max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= INT32_MAX || e->valuedouble != (double)(int64_t)e->valuedouble)
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: bad id for token '%s'", path, e->string ? e->string : "?");
        if ((int64_t)e->valuedouble > max_id) max_id = (int64_t)e->valuedouble;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= INT32_MAX || !cJSON_IsString(content))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: bad entry in added_tokens", path);
        if ((int64_t)id->valuedouble > max_id) max_id = (int64_t)id->valuedouble;
    }
    if (max_id < 0) return hive_errf(err, HIVE_ERR_FORMAT, "%s: empty vocabulary", path);
    v->n = max_id + 1;
    v->text = hive_calloc((size_t)v->n, sizeof *v->text);
    v->type = hive_malloc_array((size_t)v->n, sizeof *v->type);
    v->owned = hive_malloc_array((size_t)v->n, sizeof *v->owned);
    if (!v->text || !v->type || !v->owned) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", path);
    cJSON_ArrayForEach(e, vocab) {
        v->text[(int64_t)e->valuedouble] = e->string;
        v->type[(int64_t)e->valuedouble] = TT_NORMAL;
    }
    cJSON_ArrayForEach(e, added) {
        int64_t id = (int64_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        v->text[id] = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
        v->type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) ? TT_CONTROL : TT_USER_DEFINED;
    }
    for (int64_t i = 0; i < v->n; i++) {
        if (v->text[i]) continue;
        char name[32];
        snprintf(name, sizeof name, "[PAD%lld]", (long long)i);
        if (add_owned(v, strdup(name)) != HIVE_OK) return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", path);
        v->text[i] = v->owned[v->n_owned - 1];
        v->type[i] = TT_UNUSED;
    }
    return HIVE_OK;
}

/* Merges as "left right" strings; pairs are joined here into one arena. */
static int build_merges(const cJSON *root, const char *path, const char ***out, char **arena, uint64_t *n, char *err) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "merges");
    *out = NULL, *arena = NULL, *n = 0;
    if (!merges) return HIVE_OK;
    if (!cJSON_IsArray(merges)) return hive_errf(err, HIVE_ERR_FORMAT, "%s: model.merges is not an array", path);
    int count = cJSON_GetArraySize(merges);
    size_t bytes = 1;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next))
            bytes += strlen(m->child->valuestring) + strlen(m->child->next->valuestring) + 2;
        else if (!cJSON_IsString(m))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: a merge is neither \"a b\" nor [\"a\", \"b\"]", path);
    }
    const char **list = hive_malloc_array(count ? (size_t)count : 1, sizeof *list);
    char *buf = malloc(bytes);
    if (!list || !buf) {
        free(list), free(buf);
        return hive_errf(err, HIVE_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t off = 0;
    int i = 0;
    cJSON_ArrayForEach(m, merges) {
        if (cJSON_IsString(m)) {
            list[i++] = m->valuestring;
            continue;
        }
        list[i++] = buf + off;
        off += (size_t)snprintf(buf + off, bytes - off, "%s %s", m->child->valuestring, m->child->next->valuestring) + 1;
    }
    *out = list, *arena = buf, *n = (uint64_t)count;
    return HIVE_OK;
}

/* BOS from a TemplateProcessing post-processor: the special token in front
 * of $A in "single", if any. */
static const char *post_processor_bos(const cJSON *root) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pp, "type");
    if (cJSON_IsString(type) && !strcmp(type->valuestring, "Sequence")) {
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(pp, "processors")) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "TemplateProcessing")) pp = p, type = t;
        }
    }
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "TemplateProcessing")) return NULL;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *first = cJSON_IsArray(single) ? single->child : NULL;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp, "id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

int hive_vocab_from_tokenizer_json(const char *json_path, const char *pre, const char *out_gguf, char *err) {
    if (!json_path || !out_gguf) return hive_errf(err, HIVE_ERR_INVAL, "vocab: missing path");
    if (!pre) pre = "default";
    if (pretok_from_name(pre) < 0) return hive_errf(err, HIVE_ERR_INVAL, "vocab: unknown pre-tokenizer '%s'", pre);
    cJSON *root = NULL, *cfg = NULL;
    struct vocab v = {0};
    const char **merges = NULL;
    char *merge_arena = NULL;
    uint64_t n_merges = 0;
    hive_gguf_writer *w = NULL;
    int rc = read_json(json_path, &root, err);
    if (rc == HIVE_OK) rc = build_vocab(root, json_path, &v, err);
    if (rc == HIVE_OK) rc = build_merges(root, json_path, &merges, &merge_arena, &n_merges, err);
    if (rc != HIVE_OK) goto done;
    cfg = read_config(json_path);

    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<|startoftext|>", NULL};
    static const char *const eos_names[] = {"<|end_of_text|>", "</s>", "<|endoftext|>", NULL};
    int32_t bos = -1, eos = -1, eot = find_text(&v, "<|eot_id|>");
    int add_bos = -1;
    if (cfg) {
        bos = find_text(&v, config_token(cfg, "bos_token"));
        eos = find_text(&v, config_token(cfg, "eos_token"));
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
        if (cJSON_IsBool(ab)) add_bos = cJSON_IsTrue(ab);
    } else {
        bos = first_of(&v, bos_names);
        eos = first_of(&v, eos_names);
    }
    const char *pp_bos = post_processor_bos(root);
    if (pp_bos && find_text(&v, pp_bos) >= 0) {
        bos = find_text(&v, pp_bos);
        if (add_bos < 0) add_bos = 1;
    }
    const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    if (cJSON_IsArray(tmpl)) { /* [{"name": "default", "template": ...}, ...] */
        const cJSON *t, *pick = NULL;
        cJSON_ArrayForEach(t, tmpl) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
            if (!pick || (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))) pick = t;
        }
        tmpl = cJSON_GetObjectItemCaseSensitive(pick, "template");
    }

    w = hive_gguf_writer_new();
    if (!w) {
        rc = hive_errf(err, HIVE_ERR_NOMEM, "vocab: out of memory");
        goto done;
    }
    rc = hive_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (rc == HIVE_OK) rc = hive_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    if (rc == HIVE_OK) rc = hive_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", v.text, (uint64_t)v.n);
    if (rc == HIVE_OK) rc = hive_gguf_writer_set_array(w, "tokenizer.ggml.token_type", HIVE_GGUF_INT32, v.type, (uint64_t)v.n);
    if (rc == HIVE_OK && n_merges) rc = hive_gguf_writer_set_str_array(w, "tokenizer.ggml.merges", merges, n_merges);
    if (rc == HIVE_OK && bos >= 0) rc = hive_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (rc == HIVE_OK && eos >= 0) rc = hive_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (rc == HIVE_OK && eot >= 0) rc = hive_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)eot);
    if (rc == HIVE_OK && add_bos >= 0) rc = hive_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    if (rc == HIVE_OK && cJSON_IsString(tmpl)) rc = hive_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl->valuestring);
    if (rc != HIVE_OK) {
        rc = hive_errf(err, rc, "vocab: building the GGUF metadata failed (%s)", hive_status_name(rc));
        goto done;
    }
    rc = hive_gguf_writer_write(w, out_gguf, err);
done:
    hive_gguf_writer_free(w);
    for (size_t i = 0; i < v.n_owned; i++) free(v.owned[i]);
    free(v.owned);
    free(v.text);
    free(v.type);
    free(merges);
    free(merge_arena);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return rc;
}
