/* models.c - finding models by name: hive's store, Ollama's store (read in
 * place through its manifests) and LM Studio's models directory; listing
 * them, removing from hive's store, and close matches for a name that finds
 * nothing. See include/hive/store.h for the layouts. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hive/gguf.h"
#include "hive/store.h"
#include "hive/tensor.h"

const char *hive_model_source_name(int source) {
    switch (source) {
    case HIVE_SRC_PATH: return "path";
    case HIVE_SRC_HIVE: return "hive";
    case HIVE_SRC_OLLAMA: return "ollama";
    case HIVE_SRC_LMSTUDIO: return "lmstudio";
    default: return "unknown";
    }
}

static int fmt(char *buf, size_t cap, const char *f, const char *a, const char *b) {
    int n = snprintf(buf, cap, f, a, b);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static const char *home_dir(void) {
    const char *h = getenv("HOME");
    return h && *h ? h : NULL;
}

int hive_store_dir(char *buf, size_t cap, char *err) {
    const char *env = getenv("HIVE_MODELS"), *xdg = getenv("XDG_DATA_HOME"), *home = home_dir();
    int bad;
    if (env && *env) bad = fmt(buf, cap, "%s%s", env, "");
    else if (xdg && *xdg) bad = fmt(buf, cap, "%s%s", xdg, "/hive/models");
    else if (home) bad = fmt(buf, cap, "%s%s", home, "/.local/share/hive/models");
    else return hive_errf(err, HIVE_ERR_INVAL, "no model store: set HIVE_MODELS or HOME");
    return bad ? hive_errf(err, HIVE_ERR_INVAL, "model store path too long") : HIVE_OK;
}

int hive_ollama_dir(char *buf, size_t cap, char *err) {
    const char *env = getenv("OLLAMA_MODELS"), *home = home_dir();
    int bad;
    if (env && *env) bad = fmt(buf, cap, "%s%s", env, "");
    else if (home) bad = fmt(buf, cap, "%s%s", home, "/.ollama/models");
    else return hive_errf(err, HIVE_ERR_INVAL, "no Ollama directory: set OLLAMA_MODELS or HOME");
    return bad ? hive_errf(err, HIVE_ERR_INVAL, "Ollama models path too long") : HIVE_OK;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_size(const char *p, uint64_t *size) {
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (size) *size = (uint64_t)st.st_size;
    return 1;
}

int hive_lmstudio_dirs(char dirs[2][HIVE_STORE_PATH_CAP]) {
    const char *home = home_dir();
    if (!home) return 0;
    static const char *rel[2] = {"/.lmstudio/models", "/.cache/lm-studio/models"};
    int n = 0;
    for (int i = 0; i < 2; i++)
        if (!fmt(dirs[n], HIVE_STORE_PATH_CAP, "%s%s", home, rel[i]) && is_dir(dirs[n])) n++;
    return n;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* A directory entry name hive will use: not hidden, no odd length. */
static int plain_entry(const char *n) { return n[0] && n[0] != '.' && strlen(n) < 256; }

/* GGUF magic at the start of the file. */
static int check_magic(const char *path, const char *what, char *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return hive_errf(err, HIVE_ERR_IO, "%s: cannot open %s: %s", what, path, strerror(errno));
    char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    if (n != 4 || memcmp(m, "GGUF", 4))
        return hive_errf(err, HIVE_ERR_FORMAT, "%s: %s is not a GGUF file", what, path);
    return HIVE_OK;
}

/* ---- a growing list of refs ---- */
struct ref_list {
    struct hive_model_ref *v;
    size_t n, cap;
};

static int list_push(struct ref_list *l, int source, const char *name, const char *path, uint64_t size) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        if (cap > 100000) return -1;
        struct hive_model_ref *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    struct hive_model_ref *r = &l->v[l->n];
    memset(r, 0, sizeof *r);
    r->source = source;
    r->size = size;
    if (snprintf(r->name, sizeof r->name, "%s", name) >= (int)sizeof r->name ||
        snprintf(r->path, sizeof r->path, "%s", path) >= (int)sizeof r->path)
        return 0; /* too long to be found again: leave it out */
    l->n++;
    return 0;
}

static int ref_cmp(const void *a, const void *b) {
    return strcmp(((const struct hive_model_ref *)a)->name, ((const struct hive_model_ref *)b)->name);
}

/* hive's store: NAME.gguf files; the name is without ".gguf". */
static void collect_hive(struct ref_list *l) {
    char dir[HIVE_STORE_PATH_CAP], path[HIVE_STORE_PATH_CAP];
    if (hive_store_dir(dir, sizeof dir, NULL)) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        uint64_t size;
        if (!plain_entry(e->d_name) || !ends_with(e->d_name, ".gguf")) continue;
        if (fmt(path, sizeof path, "%s/%s", dir, e->d_name) || !file_size(path, &size)) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(e->d_name) - 5), e->d_name);
        if (list_push(l, HIVE_SRC_HIVE, name, path, size)) break;
    }
    closedir(d);
}

/* Ollama's short name for host/ns/model:tag. */
static void ollama_display(char *buf, size_t cap, const char *host, const char *ns, const char *model,
                           const char *tag) {
    if (!strcmp(host, "registry.ollama.ai") && !strcmp(ns, "library")) snprintf(buf, cap, "%s:%s", model, tag);
    else if (!strcmp(host, "registry.ollama.ai")) snprintf(buf, cap, "%s/%s:%s", ns, model, tag);
    else snprintf(buf, cap, "%s/%s/%s:%s", host, ns, model, tag);
}

/* Entries of a directory that are plain names (sorted later by the caller). */
static int subdirs(const char *dir, char names[][256], int cap) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; n < cap && (e = readdir(d));)
        if (plain_entry(e->d_name)) snprintf(names[n++], 256, "%s", e->d_name);
    closedir(d);
    return n;
}

#define WALK_CAP 1024

static void collect_ollama(struct ref_list *l) {
    char root[HIVE_STORE_PATH_CAP], p[HIVE_STORE_PATH_CAP], blob[HIVE_STORE_PATH_CAP];
    if (hive_ollama_dir(root, sizeof root, NULL)) return;
    char(*hosts)[256] = malloc(4 * WALK_CAP * 256);
    if (!hosts) return;
    char(*nss)[256] = hosts + WALK_CAP, (*models)[256] = nss + WALK_CAP, (*tags)[256] = models + WALK_CAP;
    int nh = fmt(p, sizeof p, "%s%s", root, "/manifests") ? 0 : subdirs(p, hosts, WALK_CAP);
    for (int a = 0; a < nh; a++) {
        if (snprintf(p, sizeof p, "%s/manifests/%s", root, hosts[a]) >= (int)sizeof p) continue;
        int nn = subdirs(p, nss, WALK_CAP);
        for (int b = 0; b < nn; b++) {
            if (snprintf(p, sizeof p, "%s/manifests/%s/%s", root, hosts[a], nss[b]) >= (int)sizeof p) continue;
            int nm = subdirs(p, models, WALK_CAP);
            for (int c = 0; c < nm; c++) {
                if (snprintf(p, sizeof p, "%s/manifests/%s/%s/%s", root, hosts[a], nss[b], models[c]) >=
                    (int)sizeof p)
                    continue;
                int nt = subdirs(p, tags, WALK_CAP);
                for (int t = 0; t < nt; t++) {
                    struct hive_ollama_name on;
                    char full[1100], disp[HIVE_STORE_NAME_CAP];
                    snprintf(full, sizeof full, "%s/%s/%s:%s", hosts[a], nss[b], models[c], tags[t]);
                    uint64_t size = 0;
                    if (hive_ollama_parse_name(full, &on, NULL) ||
                        hive_ollama_lookup(root, &on, blob, sizeof blob, &size, NULL))
                        continue; /* not a model with a GGUF, or broken */
                    ollama_display(disp, sizeof disp, on.host, on.ns, on.model, on.tag);
                    if (list_push(l, HIVE_SRC_OLLAMA, disp, blob, size)) goto done;
                }
            }
        }
    }
done:
    free(hosts);
}

/* LM Studio: publisher/repo/file.gguf under each of its directories. */
static void collect_lmstudio(struct ref_list *l) {
    char dirs[2][HIVE_STORE_PATH_CAP], p[HIVE_STORE_PATH_CAP];
    int nd = hive_lmstudio_dirs(dirs);
    char(*pubs)[256] = malloc(3 * WALK_CAP * 256);
    if (!pubs) return;
    char(*repos)[256] = pubs + WALK_CAP, (*files)[256] = repos + WALK_CAP;
    for (int d = 0; d < nd; d++) {
        int np = subdirs(dirs[d], pubs, WALK_CAP);
        for (int a = 0; a < np; a++) {
            if (snprintf(p, sizeof p, "%s/%s", dirs[d], pubs[a]) >= (int)sizeof p || !is_dir(p)) continue;
            int nr = subdirs(p, repos, WALK_CAP);
            for (int b = 0; b < nr; b++) {
                if (snprintf(p, sizeof p, "%s/%s/%s", dirs[d], pubs[a], repos[b]) >= (int)sizeof p || !is_dir(p))
                    continue;
                int nf = subdirs(p, files, WALK_CAP);
                for (int c = 0; c < nf; c++) {
                    uint64_t size;
                    char name[800];
                    if (!ends_with(files[c], ".gguf")) continue;
                    if (snprintf(p, sizeof p, "%s/%s/%s/%s", dirs[d], pubs[a], repos[b], files[c]) >= (int)sizeof p ||
                        !file_size(p, &size))
                        continue;
                    snprintf(name, sizeof name, "%s/%s/%s", pubs[a], repos[b], files[c]);
                    if (list_push(l, HIVE_SRC_LMSTUDIO, name, p, size)) goto done;
                }
            }
        }
    }
done:
    free(pubs);
}

static void collect(struct ref_list *l, int source) {
    size_t first = l->n;
    if (source == HIVE_SRC_HIVE) collect_hive(l);
    else if (source == HIVE_SRC_OLLAMA) collect_ollama(l);
    else collect_lmstudio(l);
    if (l->n > first) qsort(l->v + first, l->n - first, sizeof *l->v, ref_cmp);
}

int hive_store_list(hive_model_visit_fn fn, void *ctx) {
    struct ref_list l = {0};
    collect(&l, HIVE_SRC_HIVE);
    collect(&l, HIVE_SRC_OLLAMA);
    collect(&l, HIVE_SRC_LMSTUDIO);
    for (size_t i = 0; i < l.n; i++)
        if (fn(ctx, &l.v[i])) break;
    free(l.v);
    return HIVE_OK;
}

/* ---- close matches ---- */

static size_t edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 200 || nb > 200) return (size_t)-1;
    size_t row[201];
    for (size_t j = 0; j <= nb; j++) row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (!n) return 0;
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return 1;
    return 0;
}

/* How close m is to q: 0 = not close, else a rank (lower is closer). */
static size_t closeness(const char *q, const char *m) {
    char base[HIVE_STORE_NAME_CAP];
    snprintf(base, sizeof base, "%s", m);
    char *colon = strrchr(base, ':');
    if (colon) *colon = 0; /* an Ollama name without its tag */
    const char *slash = strrchr(base, '/');
    const char *file = slash ? slash + 1 : base; /* an LM Studio file name */
    size_t d = edit_distance(q, m), d2 = edit_distance(q, base), d3 = edit_distance(q, file);
    if (d2 < d) d = d2;
    if (d3 < d) d = d3;
    size_t limit = strlen(q) / 3;
    if (limit < 2) limit = 2;
    if (d <= limit) return d + 1;
    if (strlen(q) >= 3 && (contains_ci(m, q) || contains_ci(q, base))) return limit + 2;
    return 0;
}

int hive_store_close_matches(const char *name, char *buf, size_t cap, int n) {
    if (cap) buf[0] = 0;
    struct ref_list l = {0};
    collect(&l, HIVE_SRC_HIVE);
    collect(&l, HIVE_SRC_OLLAMA);
    collect(&l, HIVE_SRC_LMSTUDIO);
    size_t *rank = l.n ? calloc(l.n, sizeof *rank) : NULL;
    int found = 0;
    if (rank) {
        for (size_t i = 0; i < l.n; i++) rank[i] = closeness(name, l.v[i].name);
        size_t used = 0;
        while (found < n) {
            size_t best = 0, bi = 0;
            for (size_t i = 0; i < l.n; i++)
                if (rank[i] && (!best || rank[i] < best)) best = rank[i], bi = i;
            if (!best) break;
            rank[bi] = 0;
            int k = snprintf(buf + used, cap - used, "%s%s", found ? ", " : "", l.v[bi].name);
            if (k < 0 || (size_t)k >= cap - used) break;
            used += (size_t)k;
            found++;
        }
    }
    free(rank);
    free(l.v);
    return found;
}

/* ---- resolve ---- */

static int resolve_hive(const char *name, struct hive_model_ref *out) {
    char dir[HIVE_STORE_PATH_CAP];
    if (strchr(name, '/') || name[0] == '.' || hive_store_dir(dir, sizeof dir, NULL)) return 0;
    const char *suffix = ends_with(name, ".gguf") ? "" : ".gguf";
    if (snprintf(out->path, sizeof out->path, "%s/%s%s", dir, name, suffix) >= (int)sizeof out->path) return 0;
    if (!file_size(out->path, &out->size)) return 0;
    out->source = HIVE_SRC_HIVE;
    snprintf(out->name, sizeof out->name, "%.*s", (int)(strlen(name) - (*suffix ? 0 : 5)), name);
    return 1;
}

/* 1 found, 0 not an Ollama model here, -1 an error of its own (in err). */
static int resolve_ollama(const char *name, struct hive_model_ref *out, char *err) {
    char root[HIVE_STORE_PATH_CAP];
    struct hive_ollama_name on;
    if (hive_ollama_parse_name(name, &on, NULL) || hive_ollama_dir(root, sizeof root, NULL)) return 0;
    char mpath[HIVE_STORE_PATH_CAP];
    struct stat st;
    if (snprintf(mpath, sizeof mpath, "%s/manifests/%s/%s/%s/%s", root, on.host, on.ns, on.model, on.tag) >=
            (int)sizeof mpath ||
        stat(mpath, &st) != 0)
        return 0;
    if (hive_ollama_lookup(root, &on, out->path, sizeof out->path, &out->size, err)) return -1;
    char what[HIVE_STORE_NAME_CAP + 16];
    ollama_display(out->name, sizeof out->name, on.host, on.ns, on.model, on.tag);
    snprintf(what, sizeof what, "Ollama model %s", out->name);
    if (check_magic(out->path, what, err)) return -1;
    out->source = HIVE_SRC_OLLAMA;
    return 1;
}

static int safe_rel(const char *name) {
    if (name[0] == '/' || strstr(name, "..") || strstr(name, "//")) return 0;
    return 1;
}

/* 1 found, 0 not, -1 ambiguous (err). */
static int resolve_lmstudio(const char *name, struct hive_model_ref *out, char *err) {
    char dirs[2][HIVE_STORE_PATH_CAP];
    int nd = hive_lmstudio_dirs(dirs);
    if (!nd || !safe_rel(name)) return 0;
    int slashes = 0;
    for (const char *p = name; *p; p++) slashes += *p == '/';
    struct ref_list l = {0};
    collect(&l, HIVE_SRC_LMSTUDIO);
    const struct hive_model_ref *hit = NULL;
    int hits = 0;
    char first[HIVE_STORE_NAME_CAP] = "", second[HIVE_STORE_NAME_CAP] = "";
    for (size_t i = 0; i < l.n; i++) {
        const char *n = l.v[i].name;
        const char *file = strrchr(n, '/') + 1;
        size_t flen = strlen(file);
        int match;
        if (slashes == 2) match = !strcmp(n, name); /* publisher/repo/file.gguf */
        else if (slashes == 1) match = !strncmp(n, name, strlen(name)) && n[strlen(name)] == '/' &&
                                       strncasecmp(file, "mmproj", 6); /* publisher/repo */
        else if (slashes == 0)
            match = !strcmp(file, name) || (strlen(name) + 5 == flen && !strncmp(file, name, strlen(name)));
        else match = 0;
        if (!match) continue;
        if (!hits) hit = &l.v[i], snprintf(first, sizeof first, "%s", n);
        else if (hits == 1) snprintf(second, sizeof second, "%s", n);
        hits++;
    }
    int rc = 0;
    if (hits == 1) {
        *out = *hit;
        char what[HIVE_STORE_NAME_CAP + 24];
        snprintf(what, sizeof what, "LM Studio model %s", out->name);
        rc = check_magic(out->path, what, err) ? -1 : 1;
    } else if (hits > 1) {
        hive_errf(err, HIVE_ERR_INVAL, "'%s' matches %d LM Studio files (%s, %s%s): name one as publisher/repo/file.gguf",
                  name, hits, first, second, hits > 2 ? ", ..." : "");
        rc = -1;
    }
    free(l.v);
    return rc;
}

int hive_store_resolve(const char *name, struct hive_model_ref *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!name || !*name) return hive_errf(err, HIVE_ERR_INVAL, "empty model name");
    if (strlen(name) >= HIVE_STORE_NAME_CAP) return hive_errf(err, HIVE_ERR_INVAL, "model name too long");
    if (file_size(name, &out->size)) {
        out->source = HIVE_SRC_PATH;
        snprintf(out->name, sizeof out->name, "%s", name);
        snprintf(out->path, sizeof out->path, "%s", name);
        return HIVE_OK;
    }
    if (resolve_hive(name, out)) return HIVE_OK;
    int r = resolve_ollama(name, out, err);
    if (r) return r > 0 ? HIVE_OK : HIVE_ERR_FORMAT;
    /* Ollama keeps names as they were pulled, mostly lowercase: Llama3.2 finds llama3.2. */
    char lower[HIVE_STORE_NAME_CAP];
    size_t ln = strlen(name);
    for (size_t i = 0; i <= ln; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    if (strcmp(lower, name) && (r = resolve_ollama(lower, out, err)) != 0) return r > 0 ? HIVE_OK : HIVE_ERR_FORMAT;
    r = resolve_lmstudio(name, out, err);
    if (r) return r > 0 ? HIVE_OK : HIVE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    char close[200];
    int n = hive_store_close_matches(name, close, sizeof close, 4);
    int looks_path = strchr(name, '/') || ends_with(name, ".gguf");
    if (n)
        return hive_errf(err, HIVE_ERR_INVAL, "no model '%s' (not a file, nor in hive's store, Ollama or LM Studio); close: %s",
                         name, close);
    return hive_errf(err, HIVE_ERR_INVAL, "no model '%s' (%s; `hive models` lists what there is, `hive pull` fetches one)",
                     name, looks_path ? "no such file, nor a known model name" : "not a file, nor in hive's store, Ollama or LM Studio");
}

int hive_store_remove(const char *name, char *err) {
    struct hive_model_ref r;
    memset(&r, 0, sizeof r);
    if (!name || !*name) return hive_errf(err, HIVE_ERR_INVAL, "empty model name");
    if (strlen(name) >= HIVE_STORE_NAME_CAP) return hive_errf(err, HIVE_ERR_INVAL, "model name too long");
    if (!resolve_hive(name, &r)) {
        char e2[HIVE_ERR_LEN];
        struct hive_model_ref other;
        if (hive_store_resolve(name, &other, e2) == HIVE_OK && other.source != HIVE_SRC_PATH)
            return hive_errf(err, HIVE_ERR_INVAL, "'%s' is %s's model (%s): remove it with %s", name,
                             other.source == HIVE_SRC_OLLAMA ? "Ollama" : "LM Studio", other.path,
                             other.source == HIVE_SRC_OLLAMA ? "`ollama rm`" : "LM Studio");
        char close[160];
        char dir[HIVE_STORE_PATH_CAP] = "";
        hive_store_dir(dir, sizeof dir, NULL);
        if (hive_store_close_matches(name, close, sizeof close, 4))
            return hive_errf(err, HIVE_ERR_INVAL, "no model '%s' in hive's store (%s); close: %s", name, dir, close);
        return hive_errf(err, HIVE_ERR_INVAL, "no model '%s' in hive's store (%s)", name, dir);
    }
    if (remove(r.path) != 0) return hive_errf(err, HIVE_ERR_IO, "cannot remove %s: %s", r.path, strerror(errno));
    char part[HIVE_STORE_PATH_CAP + 16];
    snprintf(part, sizeof part, "%s.partial", r.path);
    remove(part);
    return HIVE_OK;
}

/* ---- what a file holds ---- */

/* llama.cpp's llama_ftype values. */
static const char *ftype_name(uint32_t t) {
    static const struct {
        uint32_t v;
        const char *n;
    } k[] = {{0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {7, "Q8_0"},     {8, "Q5_0"},
             {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},  {13, "Q3_K_L"},  {14, "Q4_K_S"},
             {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},
             {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},  {26, "IQ3_S"},
             {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},  {31, "IQ1_M"},   {32, "BF16"},
             {36, "TQ1_0"},   {37, "TQ2_0"}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].v == t) return k[i].n;
    return NULL;
}

int hive_model_info_read(const char *path, struct hive_model_info *info, char *err) {
    memset(info, 0, sizeof *info);
    hive_gguf *g = NULL;
    int rc = hive_gguf_open(&g, path, err);
    if (rc) return rc;
    if (hive_gguf_get_cstr(g, "general.architecture", info->arch, sizeof info->arch)) snprintf(info->arch, sizeof info->arch, "?");
    uint32_t ft;
    const char *fn = hive_gguf_get_u32(g, "general.file_type", &ft) == HIVE_OK ? ftype_name(ft) : NULL;
    int64_t counts[64] = {0};
    for (int64_t i = 0; i < hive_gguf_n_tensors(g); i++) {
        const struct hive_gguf_tensor *t = hive_gguf_tensor(g, i);
        int64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) n *= t->ne[d];
        info->n_params += n;
        if (t->n_dims >= 2 && t->type >= 0 && t->type < 64) counts[t->type] += n;
    }
    if (fn) {
        snprintf(info->file_type, sizeof info->file_type, "%s", fn);
    } else {
        int best = -1;
        for (int t = 0; t < 64; t++)
            if (counts[t] && (best < 0 || counts[t] > counts[best])) best = t;
        snprintf(info->file_type, sizeof info->file_type, "%s", best >= 0 ? hive_type_name(best) : "?");
        for (char *p = info->file_type; *p; p++) *p = (char)toupper((unsigned char)*p);
    }
    hive_gguf_close(g);
    return HIVE_OK;
}
