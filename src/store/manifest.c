/* manifest.c - Ollama's model names and manifests, read from its store.
 *
 * On disk (Ollama's models directory):
 *   manifests/<host>/<namespace>/<model>/<tag>   JSON, Docker distribution
 *       manifest v2 style: {"schemaVersion":2, "config":{...},
 *       "layers":[{"mediaType":..., "digest":"sha256:<hex>", "size":N}, ...]}
 *   blobs/sha256-<hex>                           the layer's bytes
 * The GGUF is the layer of mediaType application/vnd.ollama.image.model.
 * Everything read here is untrusted: sizes and every field are checked. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hive/store.h"

#define MANIFEST_MAX (1u << 20)
#define MODEL_MEDIA_TYPE "application/vnd.ollama.image.model"

static int part_char_ok(char c, int host) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-' || (host && c == ':');
}

/* Copies [s, s+n) into dst after checking it is a valid name part. */
static int take_part(char *dst, size_t cap, const char *s, size_t n, int host, const char *what, const char *name,
                     char *err) {
    if (n == 0) return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': empty %s", name, what);
    if (n >= cap) return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': %s too long", name, what);
    if (s[0] == '.' || s[0] == '-' || (n >= 2 && s[0] == '.' && s[1] == '.'))
        return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': %s starts with '%c'", name, what, s[0]);
    for (size_t i = 0; i < n; i++)
        if (!part_char_ok(s[i], host))
            return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': character '%c' in %s", name, s[i],
                             what);
    memcpy(dst, s, n);
    dst[n] = 0;
    return HIVE_OK;
}

int hive_ollama_parse_name(const char *s, struct hive_ollama_name *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!s || !*s) return hive_errf(err, HIVE_ERR_INVAL, "empty Ollama model name");
    size_t len = strlen(s);
    if (len > 400) return hive_errf(err, HIVE_ERR_INVAL, "Ollama model name too long");
    /* Split on '/': 1 part model, 2 namespace/model, 3 host/namespace/model. */
    const char *parts[3];
    size_t lens[3];
    int np = 0;
    const char *p = s;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (np == 3) return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': too many '/'", s);
        parts[np] = p;
        lens[np] = slash ? (size_t)(slash - p) : strlen(p);
        np++;
        if (!slash) break;
        p = slash + 1;
    }
    /* The tag is after the last ':' of the last part (a host may hold a port). */
    const char *last = parts[np - 1];
    size_t last_len = lens[np - 1];
    const char *colon = memchr(last, ':', last_len);
    const char *tag = "latest";
    size_t tag_len = 6;
    if (colon) {
        tag = colon + 1;
        tag_len = last_len - (size_t)(colon - last) - 1;
        lens[np - 1] = (size_t)(colon - last);
        if (memchr(tag, ':', tag_len)) return hive_errf(err, HIVE_ERR_INVAL, "bad Ollama model name '%s': two tags", s);
    }
    const char *host = "registry.ollama.ai", *ns = "library";
    size_t host_len = strlen(host), ns_len = strlen(ns);
    if (np == 3) {
        host = parts[0];
        host_len = lens[0];
    }
    if (np >= 2) {
        ns = parts[np - 2];
        ns_len = lens[np - 2];
    }
    int rc;
    if ((rc = take_part(out->host, sizeof out->host, host, host_len, 1, "registry", s, err)) ||
        (rc = take_part(out->ns, sizeof out->ns, ns, ns_len, 0, "namespace", s, err)) ||
        (rc = take_part(out->model, sizeof out->model, parts[np - 1], lens[np - 1], 0, "model", s, err)) ||
        (rc = take_part(out->tag, sizeof out->tag, tag, tag_len, 0, "tag", s, err)))
        return rc;
    return HIVE_OK;
}

static int is_hex64(const char *s) {
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[64] == 0;
}

int hive_ollama_manifest_parse(const char *json, size_t len, char hex[65], uint64_t *size, char *err) {
    hex[0] = 0;
    *size = 0;
    if (len > MANIFEST_MAX) return hive_errf(err, HIVE_ERR_FORMAT, "manifest larger than %u bytes", MANIFEST_MAX);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return hive_errf(err, HIVE_ERR_FORMAT, "manifest is not JSON");
    int rc = HIVE_OK, found = 0;
    const cJSON *layers = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "layers") : NULL;
    if (!cJSON_IsObject(root)) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest is not a JSON object");
        goto out;
    }
    if (!cJSON_IsArray(layers)) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest has no \"layers\" array");
        goto out;
    }
    int i = 0;
    for (const cJSON *l = layers->child; l; l = l->next, i++) {
        if (i >= 4096) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest has more than 4096 layers");
            goto out;
        }
        const cJSON *mt = cJSON_IsObject(l) ? cJSON_GetObjectItemCaseSensitive(l, "mediaType") : NULL;
        if (!cJSON_IsString(mt) || !mt->valuestring) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest layer %d has no string mediaType", i);
            goto out;
        }
        if (strcmp(mt->valuestring, MODEL_MEDIA_TYPE)) continue;
        if (found) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest has two model layers");
            goto out;
        }
        found = 1;
        const cJSON *dg = cJSON_GetObjectItemCaseSensitive(l, "digest");
        const cJSON *sz = cJSON_GetObjectItemCaseSensitive(l, "size");
        const char *d = cJSON_IsString(dg) ? dg->valuestring : NULL;
        if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71 || !is_hex64(d + 7)) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest model layer digest is not sha256:<64 lowercase hex>");
            goto out;
        }
        /* JSON numbers are doubles: exact for integers below 2^53. */
        if (!cJSON_IsNumber(sz) || !(sz->valuedouble >= 0) || sz->valuedouble > 9007199254740992.0 ||
            floor(sz->valuedouble) != sz->valuedouble) {
            rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest model layer size is not a non-negative integer");
            goto out;
        }
        memcpy(hex, d + 7, 65);
        *size = (uint64_t)sz->valuedouble;
    }
    if (!found) rc = hive_errf(err, HIVE_ERR_FORMAT, "manifest has no model layer (%s)", MODEL_MEDIA_TYPE);
out:
    if (rc) hex[0] = 0;
    cJSON_Delete(root);
    return rc;
}

/* Reads a whole small file (at most max bytes). */
static char *read_small(const char *path, size_t max, size_t *len, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hive_errf(err, HIVE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        hive_errf(err, bad ? HIVE_ERR_IO : HIVE_ERR_FORMAT, "%s: %s", path,
                  bad ? "read failed" : "larger than 1 MiB: not a manifest");
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

int hive_ollama_lookup(const char *models_dir, const struct hive_ollama_name *n, char *path, size_t cap,
                       uint64_t *size, char *err) {
    char mpath[HIVE_STORE_PATH_CAP];
    int k = snprintf(mpath, sizeof mpath, "%s/manifests/%s/%s/%s/%s", models_dir, n->host, n->ns, n->model, n->tag);
    if (k <= 0 || (size_t)k >= sizeof mpath) return hive_errf(err, HIVE_ERR_INVAL, "Ollama manifest path too long");
    struct stat st;
    if (stat(mpath, &st) != 0 || !S_ISREG(st.st_mode))
        return hive_errf(err, HIVE_ERR_INVAL, "no Ollama manifest %s", mpath);
    size_t len = 0;
    char *json = read_small(mpath, MANIFEST_MAX, &len, err);
    if (!json) return HIVE_ERR_FORMAT;
    char hex[65], e2[HIVE_ERR_LEN];
    uint64_t declared = 0;
    int rc = hive_ollama_manifest_parse(json, len, hex, &declared, e2);
    free(json);
    if (rc) return hive_errf(err, rc, "Ollama model %s:%s: %s (%s)", n->model, n->tag, e2, mpath);
    k = snprintf(path, cap, "%s/blobs/sha256-%s", models_dir, hex);
    if (k <= 0 || (size_t)k >= cap) return hive_errf(err, HIVE_ERR_INVAL, "Ollama blob path too long");
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return hive_errf(err, HIVE_ERR_IO, "Ollama model %s:%s: its manifest names blob sha256-%.12s..., which is missing (%s)",
                         n->model, n->tag, hex, path);
    if ((uint64_t)st.st_size != declared)
        return hive_errf(err, HIVE_ERR_FORMAT, "Ollama model %s:%s: blob %s is %llu bytes, its manifest says %llu",
                         n->model, n->tag, path, (unsigned long long)st.st_size, (unsigned long long)declared);
    if (size) *size = declared;
    return HIVE_OK;
}
