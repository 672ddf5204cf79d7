/* pull.c - `hive pull`: a GGUF from Hugging Face or a URL into hive's store.
 *
 * The file is written to DEST.partial; a later attempt (the automatic retries
 * after a cut transfer, or the next `hive pull`) asks for the rest with an
 * HTTP Range request. A server that answers 200 instead of 206 sends the
 * whole file again and the partial file restarts from zero. When complete:
 * the size (Content-Length / Content-Range, Hugging Face's X-Linked-Size), the
 * sha256 when the server publishes one (Hugging Face's X-Linked-ETag for LFS
 * files, or an RFC 9530 Repr-Digest: sha-256=:base64:) and that the file
 * parses as GGUF are checked, and only then is it renamed to DEST.
 *
 * Hugging Face references (endpoint $HF_ENDPOINT, default
 * https://huggingface.co; $HF_TOKEN is sent as a bearer token to it):
 *   hf:OWNER/REPO/PATH.gguf     -> ENDPOINT/OWNER/REPO/resolve/main/PATH.gguf
 *   OWNER/REPO:QUANT            -> the one .gguf of the repository's file list
 *   hf.co/OWNER/REPO[:QUANT]       (ENDPOINT/api/models/OWNER/REPO, "siblings")
 *                                  whose name holds QUANT (Q4_K_M when absent
 *                                  and the repository has several) */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hive/gguf.h"
#include "hive/store.h"

#define API_MAX (16u << 20)
#define USER_AGENT "hive-pull/1"

static const char *hf_endpoint(void) {
    const char *e = getenv("HF_ENDPOINT");
    return e && *e ? e : "https://huggingface.co";
}

static int starts_with(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int ends_with_ci(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* ---- URLs: https, or http to this machine (tests) ---- */

static int url_check(const char *url, int *loopback, char *err) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = HIVE_OK;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0)) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "bad URL '%s'", url);
    } else {
        *loopback = !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strcmp(host, "[::1]");
        if (strcasecmp(scheme, "https") && !(!strcasecmp(scheme, "http") && *loopback))
            rc = hive_errf(err, HIVE_ERR_INVAL, "refusing %s: only https:// (http:// to 127.0.0.1 only)", url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static void curl_common(CURL *c, const char *url, int loopback, struct curl_slist **hdrs, char *errbuf) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* Hugging Face redirects to its CDN */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, loopback ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, loopback ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* stalled for a minute: give up (and retry) */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    const char *tok = getenv("HF_TOKEN");
    if (tok && *tok && starts_with(url, hf_endpoint()) && strlen(tok) < 512) {
        char h[600];
        snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
        *hdrs = curl_slist_append(*hdrs, h); /* libcurl drops it on a redirect to another host */
    }
}

static const char *http_reason(long status) {
    switch (status) {
    case 401: return " (unauthorized: a gated or private repository needs HF_TOKEN)";
    case 403: return " (forbidden)";
    case 404: return " (not found)";
    case 416: return " (range not satisfiable)";
    case 429: return " (too many requests)";
    default: return "";
    }
}

/* ---- the Hugging Face API: a repository's file list ---- */

static int http_get_json(const char *url, cJSON **out, char *err) {
    int loopback = 0;
    int rc = url_check(url, &loopback, err);
    if (rc) return rc;
    CURL *c = curl_easy_init();
    if (!c) return hive_errf(err, HIVE_ERR_NOMEM, "libcurl failed to start");
    struct hive_membuf m = {.max = API_MAX};
    struct curl_slist *h = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    curl_common(c, url, loopback, &h, cerr);
    h = curl_slist_append(h, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hive_membuf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    if (res != CURLE_OK) {
        if (m.too_big) rc = hive_errf(err, HIVE_ERR_FORMAT, "%s: answer larger than %u bytes", url, API_MAX);
        else if (status >= 400) rc = hive_errf(err, HIVE_ERR_IO, "%s: HTTP %ld%s", url, status, http_reason(status));
        else rc = hive_errf(err, HIVE_ERR_IO, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(res));
        free(m.p);
        return rc;
    }
    *out = m.p ? cJSON_ParseWithLength(m.p, m.n) : NULL;
    free(m.p);
    if (!*out) return hive_errf(err, HIVE_ERR_FORMAT, "%s: the answer is not JSON", url);
    return HIVE_OK;
}

static int name_ok(const char *s, size_t n) {
    if (!n || n > 96 || s[0] == '.' || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* A path inside a repository: plain parts, no "..", no odd characters. */
static int repo_path_ok(const char *p) {
    if (!*p || strlen(p) > 512 || p[0] == '/' || strstr(p, "..") || strstr(p, "//")) return 0;
    for (; *p; p++)
        if ((unsigned char)*p < 0x21 || *p == '\\' || *p == '?' || *p == '#' || *p == '%' || *p == 0x7f) return 0;
    return 1;
}

/* quant appears in file as a token: no letter/digit before it, '.', '-' or
 * the end after it (so Q4_K does not pick Q4_K_M). */
static int has_quant(const char *file, const char *quant) {
    size_t q = strlen(quant);
    for (const char *p = file; *p; p++) {
        if (strncasecmp(p, quant, q)) continue;
        if (p > file && isalnum((unsigned char)p[-1])) continue;
        char a = p[q];
        if (a == 0 || a == '.' || a == '-') return 1;
    }
    return 0;
}

/* A split GGUF (name-00001-of-00003.gguf) or a vision projector: not a model hive runs alone. */
static int skip_file(const char *f) {
    const char *base = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
    if (!strncasecmp(base, "mmproj", 6)) return 1;
    const char *of = strstr(base, "-of-");
    return of && of - base >= 6 && isdigit((unsigned char)of[-1]) && isdigit((unsigned char)of[4]);
}

static int hf_pick(const char *owner_repo, const char *quant, char *file, size_t cap, char *err) {
    char url[1024];
    snprintf(url, sizeof url, "%s/api/models/%s", hf_endpoint(), owner_repo);
    cJSON *root = NULL;
    int rc = http_get_json(url, &root, err);
    if (rc) return rc;
    const cJSON *sib = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "siblings") : NULL;
    if (!cJSON_IsArray(sib)) {
        cJSON_Delete(root);
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: no \"siblings\" file list", url);
    }
    const char *want = quant && *quant ? quant : NULL;
    char found[3][520], quants[400] = "";
    int n_found = 0, n_gguf = 0, n = 0;
    const char *only = NULL;
    for (const cJSON *s = sib->child; s && n < 100000; s = s->next, n++) {
        const cJSON *f = cJSON_IsObject(s) ? cJSON_GetObjectItemCaseSensitive(s, "rfilename") : NULL;
        const char *name = cJSON_IsString(f) ? f->valuestring : NULL;
        if (!name || !ends_with_ci(name, ".gguf") || !repo_path_ok(name) || skip_file(name)) continue;
        n_gguf++;
        only = name;
        if (strlen(quants) + strlen(name) + 3 < sizeof quants) {
            if (quants[0]) strcat(quants, ", ");
            strcat(quants, strrchr(name, '/') ? strrchr(name, '/') + 1 : name);
        }
        if (has_quant(name, want ? want : "Q4_K_M")) {
            if (n_found < 3) snprintf(found[n_found], sizeof found[0], "%s", name);
            n_found++;
        }
    }
    if (!want && n_gguf == 1) {
        snprintf(found[0], sizeof found[0], "%s", only);
        n_found = 1;
    }
    if (n_found == 1) {
        rc = snprintf(file, cap, "%s", found[0]) >= (int)cap ? hive_errf(err, HIVE_ERR_INVAL, "file name too long")
                                                            : HIVE_OK;
    } else if (n_found > 1) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "%s:%s matches %d files (%s, %s%s): name one with hf:%s/FILE.gguf",
                       owner_repo, want ? want : "Q4_K_M", n_found, found[0], found[1], n_found > 2 ? ", ..." : "",
                       owner_repo);
    } else if (!n_gguf) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "%s holds no single-file GGUF", owner_repo);
    } else {
        rc = hive_errf(err, HIVE_ERR_INVAL, "%s has no %s GGUF%s; it has: %.160s", owner_repo, want ? want : "Q4_K_M",
                       want ? "" : " (name a quant: OWNER/REPO:QUANT)", quants);
    }
    cJSON_Delete(root);
    return rc;
}

/* ENDPOINT/OWNER/REPO/resolve/main/PATH with each path part escaped. */
static int hf_url(const char *owner_repo, const char *path, char *url, size_t cap, char *err) {
    int k = snprintf(url, cap, "%s/%s/resolve/main", hf_endpoint(), owner_repo);
    if (k <= 0 || (size_t)k >= cap) return hive_errf(err, HIVE_ERR_INVAL, "URL too long");
    size_t used = (size_t)k;
    char part[520];
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        snprintf(part, sizeof part, "%.*s", (int)n, p);
        char *esc = curl_easy_escape(NULL, part, 0);
        if (!esc) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
        k = snprintf(url + used, cap - used, "/%s", esc);
        curl_free(esc);
        if (k <= 0 || (size_t)k >= cap - used) return hive_errf(err, HIVE_ERR_INVAL, "URL too long");
        used += (size_t)k;
        p += n + (slash ? 1 : 0);
    }
    return HIVE_OK;
}

int hive_pull_resolve_ref(const char *ref, char *url, size_t url_cap, char *file, size_t file_cap, char *err) {
    if (!ref || !*ref) return hive_errf(err, HIVE_ERR_INVAL, "empty reference");
    if (strlen(ref) > 1500) return hive_errf(err, HIVE_ERR_INVAL, "reference too long");
    if (starts_with(ref, "https://") || starts_with(ref, "http://")) {
        int loopback;
        int rc = url_check(ref, &loopback, err);
        if (rc) return rc;
        if (snprintf(url, url_cap, "%s", ref) >= (int)url_cap) return hive_errf(err, HIVE_ERR_INVAL, "URL too long");
        /* The file name: the last path part, without query or fragment. */
        const char *end = ref + strcspn(ref, "?#");
        const char *slash = end;
        while (slash > ref && slash[-1] != '/') slash--;
        size_t n = (size_t)(end - slash);
        if (snprintf(file, file_cap, "%.*s", (int)n, slash) >= (int)file_cap)
            return hive_errf(err, HIVE_ERR_INVAL, "file name too long");
        return HIVE_OK;
    }
    const char *r = ref;
    if (starts_with(r, "hf:")) r += 3;
    else if (starts_with(r, "hf.co/")) r += 6;
    else if (starts_with(r, "huggingface.co/")) r += 15;
    /* OWNER/REPO then /PATH.gguf or :QUANT or nothing. */
    const char *s1 = strchr(r, '/');
    if (!s1) return hive_errf(err, HIVE_ERR_INVAL, "bad reference '%s' (hf:OWNER/REPO/FILE.gguf, OWNER/REPO:QUANT or https://...)", ref);
    size_t repo_len = strcspn(s1 + 1, "/:");
    char owner_repo[200];
    if (!name_ok(r, (size_t)(s1 - r)) || !name_ok(s1 + 1, repo_len))
        return hive_errf(err, HIVE_ERR_INVAL, "bad Hugging Face repository in '%s'", ref);
    snprintf(owner_repo, sizeof owner_repo, "%.*s", (int)(s1 + 1 + repo_len - r), r);
    const char *rest = s1 + 1 + repo_len;
    char path[520];
    int rc;
    if (*rest == '/') {
        if (!repo_path_ok(rest + 1) || !ends_with_ci(rest, ".gguf") || strlen(rest + 1) >= sizeof path)
            return hive_errf(err, HIVE_ERR_INVAL, "bad file '%s' in '%s' (a .gguf path in the repository)", rest + 1, ref);
        snprintf(path, sizeof path, "%s", rest + 1);
    } else {
        const char *quant = *rest == ':' ? rest + 1 : NULL;
        if (quant && !name_ok(quant, strlen(quant))) return hive_errf(err, HIVE_ERR_INVAL, "bad quant '%s'", quant);
        if ((rc = hf_pick(owner_repo, quant, path, sizeof path, err))) return rc;
    }
    if ((rc = hf_url(owner_repo, path, url, url_cap, err))) return rc;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (snprintf(file, file_cap, "%s", base) >= (int)file_cap) return hive_errf(err, HIVE_ERR_INVAL, "file name too long");
    return HIVE_OK;
}

/* ---- sha256 ---- */

static void to_hex(const unsigned char *b, size_t n, char *hex) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = d[b[i] >> 4];
        hex[2 * i + 1] = d[b[i] & 15];
    }
    hex[2 * n] = 0;
}

int hive_sha256_file(const char *path, char hex[65], char *err) {
    if (sodium_init() < 0) return hive_errf(err, HIVE_ERR_IO, "libsodium failed to start");
    FILE *f = fopen(path, "rb");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char *buf = malloc(1 << 20), out[32];
    size_t n;
    while (buf && (n = fread(buf, 1, 1 << 20, f)) > 0) crypto_hash_sha256_update(&st, buf, n);
    int bad = !buf || ferror(f);
    free(buf);
    fclose(f);
    if (bad) return hive_errf(err, HIVE_ERR_IO, "reading %s failed", path);
    crypto_hash_sha256_final(&st, out);
    to_hex(out, 32, hex);
    return HIVE_OK;
}

/* ---- one transfer ---- */

struct xfer {
    CURL *curl;
    int fd;               /* the .partial, locked */
    uint64_t offset;      /* bytes already there when this attempt started */
    uint64_t written;     /* bytes written by this attempt */
    uint64_t total;       /* the whole file's size, 0 when unknown */
    int started;          /* the first body byte arrived */
    int restarted;        /* the server sent the whole file (200), the partial restarted */
    char magic[4];
    int n_magic;
    /* headers of the current response */
    char content_type[96];
    char content_range[128];
    uint64_t content_length;
    int have_length;
    /* published by any response of the chain (Hugging Face sends them on the redirect) */
    char sha[65];
    uint64_t linked_size;
    char fail[HIVE_ERR_LEN];
    /* progress */
    int progress;
    double t0, last_draw;
    uint64_t session_bytes; /* over every attempt, for the speed */
    const char *label;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
}

static int hex64_lower(const char *s, size_t n, char out[65]) {
    if (n != 64) return 0;
    for (size_t i = 0; i < 64; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (!isxdigit((unsigned char)c)) return 0;
        out[i] = c;
    }
    out[64] = 0;
    return 1;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
    struct xfer *x = ud;
    size_t len = size * nitems;
    char line[512];
    if (len >= sizeof line) return len; /* no header we read is that long */
    memcpy(line, buf, len);
    line[len] = 0;
    trim(line);
    if (!strncmp(line, "HTTP/", 5)) { /* a new response in the chain */
        x->content_type[0] = x->content_range[0] = 0;
        x->content_length = 0;
        x->have_length = 0;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon) return len;
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "content-type")) {
        snprintf(x->content_type, sizeof x->content_type, "%s", v);
    } else if (!strcasecmp(line, "content-range")) {
        snprintf(x->content_range, sizeof x->content_range, "%s", v);
    } else if (!strcasecmp(line, "content-length")) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (!errno && end != v && !*end && v[0] != '-') x->content_length = n, x->have_length = 1;
    } else if (!strcasecmp(line, "x-linked-size")) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (end != v && !*end && v[0] != '-') x->linked_size = n;
    } else if (!strcasecmp(line, "x-linked-etag")) {
        /* "hex" or W/"hex": the sha256 of an LFS file */
        if (!strncmp(v, "W/", 2)) v += 2;
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
        hex64_lower(v, n, x->sha);
    } else if (!strcasecmp(line, "repr-digest")) {
        /* RFC 9530: sha-256=:BASE64:, possibly among others */
        char *p = strcasestr(v, "sha-256=:");
        if (p) {
            p += 9;
            char *e = strchr(p, ':');
            unsigned char bin[32];
            size_t bin_len = 0;
            if (e && !sodium_base642bin(bin, sizeof bin, p, (size_t)(e - p), NULL, &bin_len, NULL,
                                        sodium_base64_VARIANT_ORIGINAL) &&
                bin_len == 32)
                to_hex(bin, 32, x->sha);
        }
    }
    return len;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The first body bytes: decide between resuming (206) and restarting (200). */
static int on_first_data(struct xfer *x) {
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!strncasecmp(x->content_type, "text/html", 9)) {
        snprintf(x->fail, sizeof x->fail, "the server sent an HTML page, not a GGUF file");
        return -1;
    }
    if (status == 206) {
        unsigned long long a, b, t;
        if (sscanf(x->content_range, "bytes %llu-%llu/%llu", &a, &b, &t) != 3 || a != x->offset || b < a || b >= t) {
            snprintf(x->fail, sizeof x->fail, "the server answered the range request with '%s'", x->content_range);
            return -1;
        }
        x->total = t;
    } else if (status == 200) {
        /* No Range support (or no partial file): start from zero. */
        if (x->offset) x->restarted = 1;
        if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
            snprintf(x->fail, sizeof x->fail, "cannot truncate the partial file: %s", strerror(errno));
            return -1;
        }
        x->offset = 0;
        x->total = x->have_length ? x->content_length : 0;
    } else {
        snprintf(x->fail, sizeof x->fail, "unexpected HTTP %ld", status);
        return -1;
    }
    return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->started) {
        x->started = 1;
        if (on_first_data(x)) return 0;
    }
    if (x->offset == 0) { /* the file's first bytes: GGUF's magic, or stop early */
        for (size_t i = 0; x->n_magic < 4 && i < n; i++) x->magic[x->n_magic++] = ptr[i];
        if (x->n_magic == 4 && x->written < 4 && memcmp(x->magic, "GGUF", 4)) {
            snprintf(x->fail, sizeof x->fail, "the server sent something that is not a GGUF file");
            return 0;
        }
    }
    if (x->total && x->offset + x->written + n > x->total) {
        snprintf(x->fail, sizeof x->fail, "the server sent more than the %llu bytes it announced",
                 (unsigned long long)x->total);
        return 0;
    }
    if (write_all(x->fd, ptr, n)) {
        snprintf(x->fail, sizeof x->fail, "writing the partial file failed: %s", strerror(errno));
        return 0;
    }
    x->written += n;
    x->session_bytes += n;
    return n;
}

static void human(char *buf, size_t cap, double bytes) {
    if (bytes >= 1e9) snprintf(buf, cap, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6) snprintf(buf, cap, "%.1f MB", bytes / 1e6);
    else snprintf(buf, cap, "%.0f kB", bytes / 1e3);
}

static void draw(struct xfer *x, int final) {
    double t = now_s();
    if (!final && t - x->last_draw < 0.2) return;
    x->last_draw = t;
    uint64_t have = x->offset + x->written;
    double el = t - x->t0, speed = el > 0.05 ? (double)x->session_bytes / el : 0;
    char a[32], b[32], s[32], eta[32] = "--:--";
    human(a, sizeof a, (double)have);
    human(b, sizeof b, (double)x->total);
    human(s, sizeof s, speed);
    int pct = x->total ? (int)(have * 100 / x->total) : 0;
    if (x->total && speed > 0 && have <= x->total) {
        double left = (double)(x->total - have) / speed;
        if (left < 360000) snprintf(eta, sizeof eta, "%d:%02d:%02d", (int)left / 3600, (int)left / 60 % 60, (int)left % 60);
    }
    int bar = pct * 30 / 100;
    if (x->total)
        fprintf(stderr, "\r%-24.24s [%-30.*s] %3d%% %s / %s  %s/s  %s left\033[K", x->label, bar,
                "##############################", pct, a, b, s, eta);
    else
        fprintf(stderr, "\r%-24.24s %s  %s/s\033[K", x->label, a, s);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct xfer *x = ud;
    if (x->progress && x->started) draw(x, 0);
    return 0;
}

enum attempt_result { ATT_DONE, ATT_RETRY, ATT_FAIL, ATT_RESTART };

static int attempt(struct xfer *x, const char *url, int loopback, char *err) {
    struct stat st;
    if (fstat(x->fd, &st) != 0) return hive_errf(err, HIVE_ERR_IO, "partial file: %s", strerror(errno)), ATT_FAIL;
    x->offset = (uint64_t)st.st_size;
    x->written = 0;
    x->started = 0;
    x->n_magic = 0;
    x->fail[0] = 0;
    x->total = 0;
    if (lseek(x->fd, 0, SEEK_END) < 0) return hive_errf(err, HIVE_ERR_IO, "partial file: %s", strerror(errno)), ATT_FAIL;
    CURL *c = curl_easy_init();
    if (!c) return hive_errf(err, HIVE_ERR_NOMEM, "libcurl failed to start"), ATT_FAIL;
    x->curl = c;
    struct curl_slist *h = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    curl_common(c, url, loopback, &h, cerr);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    char range[64];
    if (x->offset) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    x->curl = NULL;
    if (x->progress && x->started) draw(x, 1);
    if (x->fail[0]) return hive_errf(err, HIVE_ERR_FORMAT, "%s: %s", url, x->fail), ATT_FAIL;
    if (res == CURLE_HTTP_RETURNED_ERROR && status == 416 && x->offset)
        return ATT_RESTART; /* the partial file is not a prefix of this one */
    if (res == CURLE_HTTP_RETURNED_ERROR)
        return hive_errf(err, HIVE_ERR_IO, "%s: HTTP %ld%s", url, status, http_reason(status)), ATT_FAIL;
    if (res != CURLE_OK) {
        hive_errf(err, HIVE_ERR_IO, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(res));
        int cut = res == CURLE_PARTIAL_FILE || res == CURLE_RECV_ERROR || res == CURLE_OPERATION_TIMEDOUT ||
                  res == CURLE_GOT_NOTHING || res == CURLE_SEND_ERROR || res == CURLE_HTTP2_STREAM ||
                  res == CURLE_HTTP2;
        return cut ? ATT_RETRY : ATT_FAIL;
    }
    if (!x->started && status == 200 && x->offset == 0) { /* an empty body */
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: empty answer, not a GGUF file", url), ATT_FAIL;
    }
    uint64_t have = x->offset + x->written;
    if (x->total && have != x->total) {
        hive_errf(err, HIVE_ERR_IO, "%s: transfer ended at %llu of %llu bytes", url, (unsigned long long)have,
                  (unsigned long long)x->total);
        return ATT_RETRY;
    }
    return ATT_DONE;
}

static int make_dirs(const char *path) {
    char tmp[HIVE_STORE_PATH_CAP];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != 0) continue;
        char c = tmp[i];
        tmp[i] = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        tmp[i] = c;
    }
    return 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The complete file: size, hash, format. */
static int verify(const struct xfer *x, const char *part, const char *url, char *err) {
    uint64_t have = x->offset + x->written;
    if (x->linked_size && have != x->linked_size)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: got %llu bytes, the server says the file has %llu", url,
                         (unsigned long long)have, (unsigned long long)x->linked_size);
    if (x->sha[0]) {
        char got[65];
        int rc = hive_sha256_file(part, got, err);
        if (rc) return rc;
        if (strcmp(got, x->sha))
            return hive_errf(err, HIVE_ERR_FORMAT, "%s: sha256 mismatch (got %.16s..., the server says %.16s...): refused",
                             url, got, x->sha);
    }
    char e2[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    if (hive_gguf_open(&g, part, e2) != HIVE_OK)
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: not a usable GGUF file: %s", url, e2);
    hive_gguf_close(g);
    return HIVE_OK;
}

static int download(const char *url, const char *dest, const char *label, const struct hive_pull_opts *o, char *err) {
    int loopback = 0;
    int rc = url_check(url, &loopback, err);
    if (rc) return rc;
    char part[HIVE_STORE_PATH_CAP + 16];
    snprintf(part, sizeof part, "%s.partial", dest);
    struct xfer x;
    memset(&x, 0, sizeof x);
    x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x.fd < 0) return hive_errf(err, HIVE_ERR_IO, "cannot create %s: %s", part, strerror(errno));
    if (flock(x.fd, LOCK_EX | LOCK_NB) != 0) {
        close(x.fd);
        return hive_errf(err, HIVE_ERR_BUSY, "%s is being downloaded by another hive pull", part);
    }
    x.progress = o->progress;
    x.label = label;
    x.t0 = now_s();
    int retries = o->retries < 0 ? 3 : o->retries, restarts = 0;
    int remove_part = 0;
    struct stat st0;
    /* A partial file left by an earlier pull may be of an older version of
     * the file: when what it completes fails the checks, download once more
     * from zero before refusing. */
    int had_partial = fstat(x.fd, &st0) == 0 && st0.st_size > 0;
    for (int pass = 0;; pass++) {
        x.restarted = 0;
        for (int n = 0;; n++) {
            int r = attempt(&x, url, loopback, err);
            if (r == ATT_DONE) break;
            if (r == ATT_RESTART && restarts++ == 0) {
                if (ftruncate(x.fd, 0) != 0) r = ATT_FAIL;
                else continue;
            }
            if (r == ATT_RETRY && n < retries) {
                if (o->progress) fprintf(stderr, "hive pull: %s; resuming\n", err);
                sleep_ms(300 * (n + 1));
                continue;
            }
            rc = r == ATT_RETRY ? HIVE_ERR_IO : HIVE_ERR_FORMAT;
            /* A cut transfer keeps its partial file for the next pull; a refused one does not. */
            remove_part = r != ATT_RETRY;
            if (r == ATT_RETRY) {
                size_t l = strlen(err);
                snprintf(err + l, HIVE_ERR_LEN - l, " (run hive pull again to resume)");
            }
            goto out;
        }
        rc = verify(&x, part, url, err);
        if (rc == HIVE_OK) break;
        if (rc == HIVE_ERR_FORMAT && pass == 0 && had_partial && !x.restarted && ftruncate(x.fd, 0) == 0) {
            if (o->progress) fprintf(stderr, "hive pull: %s; the partial file was stale: downloading again\n", err);
            continue;
        }
        remove_part = 1;
        goto out;
    }
    if (rename(part, dest) != 0) {
        rc = hive_errf(err, HIVE_ERR_IO, "cannot rename %s to %s: %s", part, dest, strerror(errno));
        remove_part = 1;
        goto out;
    }
    rc = HIVE_OK;
out:
    if (remove_part) unlink(part);
    close(x.fd);
    return rc;
}

int hive_pull(const struct hive_pull_opts *o, char *path, size_t cap, char *err) {
    char url[2048], file[520], dest[HIVE_STORE_PATH_CAP];
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return hive_errf(err, HIVE_ERR_IO, "libcurl failed to start");
    int rc = hive_pull_resolve_ref(o->ref, url, sizeof url, file, sizeof file, err);
    if (rc) goto out;
    if (o->dest) {
        if (snprintf(dest, sizeof dest, "%s", o->dest) >= (int)sizeof dest) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "output path too long");
            goto out;
        }
    } else {
        char dir[HIVE_STORE_PATH_CAP];
        if (!file[0] || file[0] == '.' || strchr(file, '/') || strchr(file, '\\') || strlen(file) > 250) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "cannot name a file after '%s' (use -o FILE)", o->ref);
            goto out;
        }
        if ((rc = hive_store_dir(dir, sizeof dir, err))) goto out;
        if (make_dirs(dir)) {
            rc = hive_errf(err, HIVE_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
            goto out;
        }
        if (snprintf(dest, sizeof dest, "%s/%s%s", dir, file, ends_with_ci(file, ".gguf") ? "" : ".gguf") >=
            (int)sizeof dest) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "output path too long");
            goto out;
        }
    }
    if (snprintf(path, cap, "%s", dest) >= (int)cap) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "output path too long");
        goto out;
    }
    struct stat st;
    if (o->already) *o->already = 0;
    if (!o->force && stat(dest, &st) == 0) { /* already there */
        if (o->already) *o->already = 1;
        goto out;
    }
    rc = download(url, dest, file, o, err);
out:
    curl_global_cleanup();
    return rc;
}
