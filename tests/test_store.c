/* test_store.c - models opened by name where they already are:
 *   - an Ollama store laid out by the test in Ollama's on-disk format
 *     (manifests/<registry>/<namespace>/<model>/<tag> JSON, blobs/sha256-<hex>,
 *     with config and template layers beside the model layer): `hive run -m
 *     NAME` runs the blob in place and prints what running the file by path
 *     prints; default tag, other tags, namespaces, $OLLAMA_MODELS;
 *   - bad input: a missing name (close matches listed), a manifest naming a
 *     missing blob, a blob that is not GGUF, a manifest that is not JSON: one
 *     clear line, exit 1;
 *   - LM Studio under a fake HOME (~/.lmstudio/models, ~/.cache/lm-studio/models);
 *   - hive's store first, then Ollama, then LM Studio; hive models; hive rm
 *     refuses other programs' models;
 *   - the manifest reader and name parser against malformed input. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hive/mkmodel.h"
#include "hive/store.h"

static char g_hive[512], g_tmp[256];

static int run_capture(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int one_line(const char *s) {
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(p, 1, n, f);
    return fclose(f) == 0 && k == n ? 0 : -1;
}

static int mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || access(tmp, F_OK) == 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Writes data as an Ollama blob; hex gets its digest. */
static int put_blob(const char *root, const void *data, size_t n, char hex[65]) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tmpblob", root);
    if (write_bytes(path, data, n) || hive_sha256_file(path, hex, NULL)) return -1;
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/blobs/sha256-%s", root, hex);
    return rename(path, dst);
}

/* A manifest as Ollama writes it: config, model, template and params layers. */
static int put_manifest(const char *root, const char *host, const char *ns, const char *model, const char *tag,
                        const char *model_hex, size_t model_size, const char *cfg_hex, size_t cfg_size) {
    char dir[1024], path[1200], json[4096];
    snprintf(dir, sizeof dir, "%s/manifests/%s/%s/%s", root, host, ns, model);
    if (mkdirs(dir)) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, tag);
    snprintf(json, sizeof json,
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
             "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:%s\","
             "\"size\":%zu},\"layers\":["
             "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":%zu},"
             "{\"mediaType\":\"application/vnd.ollama.image.template\",\"digest\":\"sha256:%s\",\"size\":%zu},"
             "{\"mediaType\":\"application/vnd.ollama.image.params\",\"digest\":\"sha256:%s\",\"size\":%zu}]}",
             cfg_hex, cfg_size, model_hex, model_size, cfg_hex, cfg_size, cfg_hex, cfg_size);
    return write_bytes(path, json, strlen(json));
}

static char g_env[2048];

/* hive ARGS with the test's environment; stdout only, or both when both. */
static int hive(const char *args, int both, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' %s %s", g_env, g_hive, args, both ? "2>&1" : "2>/dev/null");
    return run_capture(cmd, out, cap);
}

static void manifest_parser(void) {
    char hex[65], err[HIVE_ERR_LEN];
    uint64_t size;
    const char *good = "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1234}]}";
    CHECK(hive_ollama_manifest_parse(good, strlen(good), hex, &size, err) == HIVE_OK && size == 1234 &&
          !strcmp(hex, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    const char *bad[] = {
        "", "null", "[]", "{\"layers\":{}}", "{}", "{\"layers\":[]}", "{\"layers\":[1]}", "{\"layers\":[{}]}",
        "{\"layers\":[{\"mediaType\":5}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:abc\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha512:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/../x\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":-1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1.5}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":\"1\"}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1e300}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1},"
        "{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"size\":1}]}",
        "{\"layers\":[{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"sha256:",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = hive_ollama_manifest_parse(bad[i], strlen(bad[i]), hex, &size, err);
        CHECKF(rc == HIVE_ERR_FORMAT && err[0] && !hex[0], "bad manifest %zu accepted", i);
    }
    /* Every truncation of the good one fails cleanly (ASan watches). */
    for (size_t n = 0; n < strlen(good); n++) {
        char *cut = malloc(n + 1);
        memcpy(cut, good, n);
        cut[n] = 0;
        CHECK(hive_ollama_manifest_parse(cut, n, hex, &size, NULL) != HIVE_OK);
        free(cut);
    }
    /* Too large. */
    size_t big = (1u << 20) + 10;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    CHECK(hive_ollama_manifest_parse(huge, big, hex, &size, err) == HIVE_ERR_FORMAT);
    free(huge);

    struct hive_ollama_name n;
    CHECK(hive_ollama_parse_name("llama3.2", &n, err) == HIVE_OK && !strcmp(n.host, "registry.ollama.ai") &&
          !strcmp(n.ns, "library") && !strcmp(n.model, "llama3.2") && !strcmp(n.tag, "latest"));
    CHECK(hive_ollama_parse_name("qwen2.5:7b", &n, err) == HIVE_OK && !strcmp(n.model, "qwen2.5") &&
          !strcmp(n.tag, "7b"));
    CHECK(hive_ollama_parse_name("someone/m:q8_0", &n, err) == HIVE_OK && !strcmp(n.ns, "someone") &&
          !strcmp(n.host, "registry.ollama.ai"));
    CHECK(hive_ollama_parse_name("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", &n, err) == HIVE_OK &&
          !strcmp(n.host, "hf.co") && !strcmp(n.ns, "bartowski") && !strcmp(n.tag, "Q4_K_M"));
    CHECK(hive_ollama_parse_name("localhost:5000/ns/m", &n, err) == HIVE_OK && !strcmp(n.host, "localhost:5000") &&
          !strcmp(n.tag, "latest"));
    const char *bad_names[] = {"", "../x", "a/../b", "a/b/c/d", "m:", ":t", "a b", "m:t:u", "/m", "m/", ".hidden",
                               "ns/.m", "m:../../x", "a\\b", "m:t/x"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        CHECKF(hive_ollama_parse_name(bad_names[i], &n, err) == HIVE_ERR_INVAL, "name '%s' accepted", bad_names[i]);
}

int main(void) {
    snprintf(g_hive, sizeof g_hive, "%s/hive", HIVE_BIN_DIR);
    manifest_parser();
    if (access(g_hive, X_OK)) {
        printf("SKIP: %s not built\n", g_hive);
        return check_result("test_store");
    }
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hive_test_store_XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;

    /* The model: stories260K when ../shared has it (real text), else a synthetic one. */
    char model[1024], err[HIVE_ERR_LEN];
    const char *sd = shared_dir();
    struct stat st;
    snprintf(model, sizeof model, "%s/models/stories260K.gguf", sd ? sd : "/nonexistent");
    if (!sd || stat(model, &st) != 0) {
        snprintf(model, sizeof model, "%s/synthetic.gguf", g_tmp);
        struct hive_mkmodel_opts mo = {0};
        mo.dim = 64;
        mo.n_layers = 2;
        mo.n_heads = 4;
        mo.seed = 5;
        mo.n_threads = 1;
        CHECKF(hive_mkmodel(&mo, model, err) == HIVE_OK, "%s", err);
    }
    size_t size = 0;
    unsigned char *bytes = check_read_file(model, &size);
    CHECK(bytes && size > 1000);

    /* An Ollama store in $HOME/.ollama/models. */
    char home[512], root[700], dir[1024];
    snprintf(home, sizeof home, "%s/home", g_tmp);
    snprintf(root, sizeof root, "%s/.ollama/models", home);
    snprintf(dir, sizeof dir, "%s/blobs", root);
    CHECK(mkdirs(dir) == 0);
    char model_hex[65], cfg_hex[65], junk_hex[65];
    const char *cfg = "{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],"
                      "\"model_type\":\"260K\",\"file_type\":\"F32\",\"architecture\":\"amd64\",\"os\":\"linux\"}";
    CHECK(put_blob(root, bytes, size, model_hex) == 0);
    CHECK(put_blob(root, cfg, strlen(cfg), cfg_hex) == 0);
    const char *junk = "this is not a GGUF file, just some text\n";
    CHECK(put_blob(root, junk, strlen(junk), junk_hex) == 0);
    const char *host = "registry.ollama.ai";
    CHECK(put_manifest(root, host, "library", "tinystories", "latest", model_hex, size, cfg_hex, strlen(cfg)) == 0);
    CHECK(put_manifest(root, host, "library", "tinystories", "260k", model_hex, size, cfg_hex, strlen(cfg)) == 0);
    CHECK(put_manifest(root, host, "someone", "tiny", "q8", model_hex, size, cfg_hex, strlen(cfg)) == 0);
    CHECK(put_manifest(root, "hf.co", "karpathy", "tinyllamas", "F32", model_hex, size, cfg_hex, strlen(cfg)) == 0);
    char missing_hex[65];
    memset(missing_hex, 'e', 64);
    missing_hex[64] = 0;
    CHECK(put_manifest(root, host, "library", "broken", "latest", missing_hex, 1000, cfg_hex, strlen(cfg)) == 0);
    CHECK(put_manifest(root, host, "library", "notgguf", "latest", junk_hex, strlen(junk), cfg_hex, strlen(cfg)) == 0);
    CHECK(put_manifest(root, host, "library", "wrongsize", "latest", model_hex, size + 1, cfg_hex, strlen(cfg)) == 0);
    snprintf(dir, sizeof dir, "%s/manifests/%s/library/garbled", root, host);
    CHECK(mkdirs(dir) == 0);
    snprintf(dir, sizeof dir, "%s/manifests/%s/library/garbled/latest", root, host);
    CHECK(write_bytes(dir, "{\"layers\": [ {\"mediaType\": ", 27) == 0);

    /* Nothing in hive's store yet; no LM Studio. */
    char store[600];
    snprintf(store, sizeof store, "%s/store", g_tmp);
    CHECK(mkdirs(store) == 0);
    snprintf(g_env, sizeof g_env, "HOME='%s' HIVE_MODELS='%s' OLLAMA_MODELS= XDG_DATA_HOME=", home, store);

    char want[16384], out[16384], args[2048];
    const char *gen = "-p 'Once upon a time' -n 16 -t 1";
    snprintf(args, sizeof args, "run -m '%s' %s", model, gen);
    CHECK(hive(args, 0, want, sizeof want) == 0 && strlen(want) > 4);
    const char *names[] = {"tinystories", "TinyStories", "tinystories:latest", "tinystories:260k", "someone/tiny:q8",
                           "registry.ollama.ai/library/tinystories:latest", "hf.co/karpathy/tinyllamas:F32"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(args, sizeof args, "run -m '%s' %s", names[i], gen);
        int rc = hive(args, 0, out, sizeof out);
        CHECKF(rc == 0 && !strcmp(out, want), "%s: exit %d: [%s] vs [%s]", names[i], rc, out, want);
    }
    /* The blob is read in place: the resolved path is Ollama's file. */
    struct hive_model_ref ref;
    setenv("HOME", home, 1);
    setenv("HIVE_MODELS", store, 1);
    unsetenv("OLLAMA_MODELS");
    CHECKF(hive_store_resolve("tinystories", &ref, err) == HIVE_OK && ref.source == HIVE_SRC_OLLAMA &&
               strstr(ref.path, "/.ollama/models/blobs/sha256-") && strstr(ref.path, model_hex) &&
               !strcmp(ref.name, "tinystories:latest") && ref.size == size,
           "%s", err);
    /* $OLLAMA_MODELS moves the store. */
    char moved[700];
    snprintf(moved, sizeof moved, "%s/ollama-elsewhere", g_tmp);
    CHECK(rename(root, moved) == 0);
    setenv("OLLAMA_MODELS", moved, 1);
    CHECK(hive_store_resolve("tinystories:260k", &ref, err) == HIVE_OK && strstr(ref.path, "ollama-elsewhere"));
    snprintf(args, sizeof args, "run -m tinystories %s", gen);
    CHECK(hive(args, 0, out, sizeof out) == 1); /* the command's env has OLLAMA_MODELS empty: HOME's, now gone */
    CHECK(rename(moved, root) == 0);
    unsetenv("OLLAMA_MODELS");

    /* Bad input: one line, exit 1. */
    struct {
        const char *name, *needle;
    } bad[] = {{"tinystorie", "tinystories"},          /* a close match listed */
               {"tinystories:7b", "tinystories:260k"}, /* no such tag */
               {"broken", "missing"},
               {"notgguf", "not a GGUF"},
               {"wrongsize", "manifest says"},
               {"garbled", "manifest"},
               {"nothing-like-it-at-all", "hive models"},
               {"/no/such/file.gguf", "no such file"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "run -m '%s' -p hi -n 4", bad[i].name);
        int rc = hive(args, 1, out, sizeof out);
        CHECKF(rc == 1 && one_line(out) && strstr(out, bad[i].needle), "%s: exit %d: %s", bad[i].name, rc, out);
    }
    /* The other commands resolve the same way. */
    int rc = hive("bench -m tinystories --prompt 4 --decode 4 -r 1 -t 1", 0, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, model_hex), "bench: exit %d: %s", rc, out);
    rc = hive("plan -m notgguf --peers 127.0.0.1:1", 1, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "not a GGUF"), "plan: exit %d: %s", rc, out);
    rc = hive("serve -m broken", 1, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "missing"), "serve: exit %d: %s", rc, out);

    /* LM Studio under the same fake HOME. */
    snprintf(dir, sizeof dir, "%s/.lmstudio/models/someone/Tiny-GGUF", home);
    CHECK(mkdirs(dir) == 0);
    snprintf(dir, sizeof dir, "%s/.lmstudio/models/someone/Tiny-GGUF/tiny-Q8_0.gguf", home);
    CHECK(write_bytes(dir, bytes, size) == 0);
    snprintf(dir, sizeof dir, "%s/.lmstudio/models/someone/Tiny-GGUF/mmproj-tiny-f16.gguf", home);
    CHECK(write_bytes(dir, junk, strlen(junk)) == 0);
    snprintf(dir, sizeof dir, "%s/.cache/lm-studio/models/other/Two-GGUF", home);
    CHECK(mkdirs(dir) == 0);
    snprintf(dir, sizeof dir, "%s/.cache/lm-studio/models/other/Two-GGUF/two-Q4_0.gguf", home);
    CHECK(write_bytes(dir, bytes, size) == 0);
    snprintf(dir, sizeof dir, "%s/.cache/lm-studio/models/other/Two-GGUF/two-Q8_0.gguf", home);
    CHECK(write_bytes(dir, bytes, size) == 0);
    const char *lm[] = {"someone/Tiny-GGUF/tiny-Q8_0.gguf", "someone/Tiny-GGUF", "tiny-Q8_0", "tiny-Q8_0.gguf",
                        "other/Two-GGUF/two-Q4_0.gguf", "two-Q8_0"};
    for (size_t i = 0; i < sizeof lm / sizeof lm[0]; i++) {
        snprintf(args, sizeof args, "run -m '%s' %s", lm[i], gen);
        rc = hive(args, 0, out, sizeof out);
        CHECKF(rc == 0 && !strcmp(out, want), "%s: exit %d: [%s]", lm[i], rc, out);
    }
    CHECK(hive_store_resolve("tiny-Q8_0", &ref, err) == HIVE_OK && ref.source == HIVE_SRC_LMSTUDIO &&
          strstr(ref.path, "/.lmstudio/models/someone/Tiny-GGUF/tiny-Q8_0.gguf"));
    rc = hive("run -m other/Two-GGUF -p hi -n 4", 1, out, sizeof out); /* two files: name one */
    CHECKF(rc == 1 && one_line(out) && strstr(out, "two-Q4_0.gguf") && strstr(out, "two-Q8_0.gguf"), "exit %d: %s", rc,
           out);
    rc = hive("run -m ../../etc/passwd -p hi -n 4", 1, out, sizeof out);
    CHECK(rc == 1 && one_line(out));

    /* hive's store comes first: a file named like the Ollama model shadows it. */
    snprintf(dir, sizeof dir, "%s/tinystories.gguf", store);
    CHECK(write_bytes(dir, bytes, size) == 0);
    CHECK(hive_store_resolve("tinystories", &ref, err) == HIVE_OK && ref.source == HIVE_SRC_HIVE);
    CHECK(hive_store_resolve("tinystories:latest", &ref, err) == HIVE_OK && ref.source == HIVE_SRC_OLLAMA);

    /* hive models: every source, broken Ollama entries left out. */
    rc = hive("models", 1, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "tinystories:latest") && strstr(out, "someone/tiny:q8") &&
               strstr(out, "hf.co/karpathy/tinyllamas:F32") && strstr(out, "someone/Tiny-GGUF/tiny-Q8_0.gguf") &&
               strstr(out, "other/Two-GGUF/two-Q4_0.gguf") && strstr(out, "ollama") && strstr(out, "lmstudio") &&
               strstr(out, "llama") && !strstr(out, "broken") && !strstr(out, "garbled"),
           "exit %d: %s", rc, out);
    /* hive rm: Ollama's and LM Studio's files are theirs. */
    rc = hive("rm tinystories:260k", 1, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "ollama rm"), "exit %d: %s", rc, out);
    snprintf(dir, sizeof dir, "%s/blobs/sha256-%s", root, model_hex);
    CHECK(stat(dir, &st) == 0);
    rc = hive("rm someone/Tiny-GGUF/tiny-Q8_0.gguf", 1, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "LM Studio"), "exit %d: %s", rc, out);
    rc = hive("rm tinystories", 1, out, sizeof out);
    snprintf(dir, sizeof dir, "%s/tinystories.gguf", store);
    CHECK(rc == 0 && stat(dir, &st) != 0);

    free(bytes);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_result("test_store");
}
