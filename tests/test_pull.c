/* test_pull.c - `hive pull` against a small HTTP server this test runs on
 * 127.0.0.1 (a thread, one connection at a time, Range support):
 *   - a plain URL, checked with Hugging Face's X-Linked-ETag sha256;
 *   - a transfer cut halfway resumes (Range) and gives the same sha256, both
 *     within one pull (retries) and from a .partial left by an earlier pull;
 *   - a server without Range support restarts the download cleanly;
 *   - a corrupted byte (served sha256 mismatch, X-Linked-ETag or Repr-Digest)
 *     is refused and the final name never appears;
 *   - 404 and an HTML page give one clear line and exit 1;
 *   - OWNER/REPO:QUANT through a fake Hugging Face API ($HF_ENDPOINT) and its
 *     302 redirect to a "CDN", hf:OWNER/REPO/FILE.gguf;
 *   - hive models lists the result, hive rm removes it.
 * The served GGUF is a small synthetic model (hive_mkmodel). */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hive/mkmodel.h"
#include "hive/store.h"

/* ---- the server ---- */

static unsigned char *g_file;     /* the GGUF served */
static size_t g_size;
static char g_sha[65];            /* its sha256 */
static size_t g_cut = 0;          /* /cut/ and /cutall/: bytes sent before closing */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_requests;            /* every request */
static int g_cut_requests;        /* requests to /cut/ */
static long g_last_range = -1;    /* start of the last Range header, -1 none */
static int g_ranges;              /* requests that carried a Range header */

static int g_listen = -1;
static volatile int g_stop;

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void reply_simple(int fd, const char *status, const char *type, const char *body, const char *extra) {
    char h[1024];
    snprintf(h, sizeof h, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
             status, type, strlen(body), extra ? extra : "");
    send_all(fd, h, strlen(h));
    send_all(fd, body, strlen(body));
}

/* Serves data[0..size) honouring "Range: bytes=N-" when ranges; sends at
 * most limit body bytes (0 = all) and then closes. */
static void serve_file(int fd, const unsigned char *data, size_t size, long range, int ranges, size_t limit,
                       const char *extra) {
    char h[1024];
    size_t from = 0;
    if (ranges && range >= 0) {
        if ((size_t)range >= size) {
            snprintf(h, sizeof h, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\n"
                                  "Content-Length: 0\r\nConnection: close\r\n\r\n", size);
            send_all(fd, h, strlen(h));
            return;
        }
        from = (size_t)range;
        snprintf(h, sizeof h, "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                              "Accept-Ranges: bytes\r\nContent-Range: bytes %zu-%zu/%zu\r\nContent-Length: %zu\r\n%s"
                              "Connection: close\r\n\r\n", from, size - 1, size, size - from, extra ? extra : "");
    } else {
        snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n%sContent-Length: %zu\r\n%s"
                              "Connection: close\r\n\r\n", ranges ? "Accept-Ranges: bytes\r\n" : "", size,
                 extra ? extra : "");
    }
    send_all(fd, h, strlen(h));
    size_t n = size - from;
    if (limit && limit < n) n = limit;
    send_all(fd, data + from, n);
}

static void handle(int fd) {
    char req[8192];
    size_t n = 0;
    while (n < sizeof req - 1) {
        ssize_t k = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (k <= 0) return;
        n += (size_t)k;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char path[1024];
    if (sscanf(req, "GET %1023s", path) != 1) {
        reply_simple(fd, "400 Bad Request", "text/plain", "bad\n", NULL);
        return;
    }
    long range = -1;
    for (char *p = req; (p = strchr(p, '\n'));) {
        p++;
        if (!strncasecmp(p, "Range: bytes=", 13)) range = strtol(p + 13, NULL, 10);
    }
    int cut_no;
    pthread_mutex_lock(&g_mu);
    g_requests++;
    g_last_range = range;
    if (range >= 0) g_ranges++;
    cut_no = !strncmp(path, "/cut/", 5) ? g_cut_requests++ : -1;
    pthread_mutex_unlock(&g_mu);

    char etag[128], repr[160];
    snprintf(etag, sizeof etag, "X-Linked-ETag: \"%s\"\r\nX-Linked-Size: %zu\r\n", g_sha, g_size);
    {
        unsigned char bin[32];
        for (int i = 0; i < 32; i++) sscanf(g_sha + 2 * i, "%2hhx", &bin[i]);
        char enc[64];
        sodium_bin2base64(enc, sizeof enc, bin, sizeof bin, sodium_base64_VARIANT_ORIGINAL);
        snprintf(repr, sizeof repr, "Repr-Digest: sha-256=:%s:\r\n", enc);
    }
    if (!strncmp(path, "/ok/", 4)) {
        serve_file(fd, g_file, g_size, range, 1, 0, etag);
    } else if (!strncmp(path, "/plain/", 7)) { /* no hash published */
        serve_file(fd, g_file, g_size, range, 1, 0, NULL);
    } else if (!strncmp(path, "/cut/", 5)) { /* the first transfer stops halfway */
        serve_file(fd, g_file, g_size, range, 1, cut_no == 0 ? g_size / 2 : 0, etag);
    } else if (!strncmp(path, "/cutall/", 8)) { /* every transfer stops after g_cut bytes */
        serve_file(fd, g_file, g_size, range, 1, g_cut, etag);
    } else if (!strncmp(path, "/norange/", 9)) {
        serve_file(fd, g_file, g_size, range, 0, 0, etag);
    } else if (!strncmp(path, "/bad/", 5) || !strncmp(path, "/badrepr/", 9)) {
        unsigned char *copy = malloc(g_size);
        memcpy(copy, g_file, g_size);
        copy[g_size - 100] ^= 0x40; /* one byte of tensor data */
        serve_file(fd, copy, g_size, range, 1, 0, path[4] == '/' ? etag : repr);
        free(copy);
    } else if (!strncmp(path, "/reprok/", 8)) {
        serve_file(fd, g_file, g_size, range, 1, 0, repr);
    } else if (!strncmp(path, "/html/", 6)) {
        reply_simple(fd, "200 OK", "text/html; charset=utf-8", "<!doctype html><html><body>Sign in</body></html>\n",
                     NULL);
    } else if (!strcmp(path, "/api/models/test/repo")) {
        reply_simple(fd, "200 OK", "application/json",
                     "{\"id\":\"test/repo\",\"siblings\":[{\"rfilename\":\".gitattributes\"},{\"rfilename\":\"README.md\"},"
                     "{\"rfilename\":\"repo-Q4_K_M.gguf\"},{\"rfilename\":\"repo-Q8_0.gguf\"},"
                     "{\"rfilename\":\"repo-Q4_K.gguf\"},"
                     "{\"rfilename\":\"big/repo-Q6_K-00001-of-00002.gguf\"},{\"rfilename\":\"mmproj-Q8_0.gguf\"}]}",
                     NULL);
    } else if (!strncmp(path, "/test/repo/resolve/main/", 24) && strncmp(path + 24, "repo-", 5)) {
        reply_simple(fd, "404 Not Found", "text/plain", "Entry not found\n", "X-Error-Code: EntryNotFound\r\n");
    } else if (!strncmp(path, "/test/repo/resolve/main/", 24)) { /* Hugging Face: 302 to its CDN */
        char extra[1400];
        snprintf(extra, sizeof extra, "Location: /cdn/%s\r\n%s", path + 24, etag);
        reply_simple(fd, "302 Found", "text/plain", "Found. Redirecting\n", extra);
    } else if (!strncmp(path, "/cdn/", 5)) {
        serve_file(fd, g_file, g_size, range, 1, 0, NULL);
    } else {
        reply_simple(fd, "404 Not Found", "text/plain", "Entry not found\n", NULL);
    }
}

static void *server_main(void *arg) {
    (void)arg;
    while (!g_stop) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            break;
        }
        handle(fd);
        shutdown(fd, SHUT_WR);
        char sink[4096];
        struct timeval tv = {0, 200000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (recv(fd, sink, sizeof sink, 0) > 0) {
        }
        close(fd);
    }
    return NULL;
}

static int server_start(int *port) {
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(g_listen, (struct sockaddr *)&a, sizeof a) || listen(g_listen, 16) ||
        getsockname(g_listen, (struct sockaddr *)&a, &len))
        return -1;
    *port = ntohs(a.sin_port);
    return 0;
}

/* ---- helpers ---- */

static char g_tmp[256];

static int run_capture(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int one_line(const char *s) {
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '\n' && strchr(s, '\n') == s + n - 1;
}

static int sha_is(const char *path, const char *want) {
    char hex[65];
    return hive_sha256_file(path, hex, NULL) == HIVE_OK && !strcmp(hex, want);
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(p, 1, n, f);
    return fclose(f) == 0 && k == n ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static char g_hive[512], g_store[512], g_env[1024];

/* hive pull ARGS with the test's store, stdout and stderr into out. */
static int pull(const char *args, char *out, size_t cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' pull %s 2>&1", g_env, g_hive, args);
    return run_capture(cmd, out, cap);
}

static int served(int *requests, int *ranges, long *last_range) {
    pthread_mutex_lock(&g_mu);
    *requests = g_requests;
    *ranges = g_ranges;
    *last_range = g_last_range;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

int main(void) {
    snprintf(g_hive, sizeof g_hive, "%s/hive", HIVE_BIN_DIR);
    if (access(g_hive, X_OK)) {
        printf("SKIP: %s not built\n", g_hive);
        return SKIP_CODE;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_tmp, sizeof g_tmp, "/tmp/hive_test_pull_XXXXXX");
    if (!mkdtemp(g_tmp)) return 1;
    snprintf(g_store, sizeof g_store, "%s/store", g_tmp);

    /* The model served: small and synthetic. */
    char model[512], err[HIVE_ERR_LEN];
    snprintf(model, sizeof model, "%s/src.gguf", g_tmp);
    struct hive_mkmodel_opts mo = {0};
    mo.dim = 64;
    mo.n_layers = 2;
    mo.n_heads = 4;
    mo.seed = 12;
    mo.n_threads = 1;
    CHECKF(hive_mkmodel(&mo, model, err) == HIVE_OK, "%s", err);
    g_file = check_read_file(model, &g_size);
    CHECK(g_file && g_size > 10000);
    CHECK(hive_sha256_file(model, g_sha, err) == HIVE_OK);
    g_cut = g_size / 3 + 1; /* /cutall/ needs 3 transfers */

    int port = 0;
    pthread_t th;
    CHECK(server_start(&port) == 0);
    CHECK(pthread_create(&th, NULL, server_main, NULL) == 0);
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    snprintf(g_env, sizeof g_env, "HIVE_MODELS='%s' HF_ENDPOINT='%s' HOME='%s' XDG_DATA_HOME= OLLAMA_MODELS=", g_store,
             base, g_tmp);

    char out[8192], args[2048], dest[1024], part[1100];
    int req0, req1, ranges0, ranges1;
    long last;

    /* A plain URL; X-Linked-ETag checked. The store is created. */
    snprintf(args, sizeof args, "%s/ok/a.gguf", base);
    int rc = pull(args, out, sizeof out);
    snprintf(dest, sizeof dest, "%s/a.gguf", g_store);
    CHECKF(rc == 0, "exit %d: %s", rc, out);
    CHECK(sha_is(dest, g_sha));
    CHECKF(strstr(out, dest) != NULL, "%s", out);
    snprintf(part, sizeof part, "%s.partial", dest);
    CHECK(!exists(part));
    /* Again: already there, nothing downloaded. */
    served(&req0, &ranges0, &last);
    rc = pull(args, out, sizeof out);
    served(&req1, &ranges1, &last);
    CHECKF(rc == 0 && strstr(out, "already") && req1 == req0, "exit %d, %d requests: %s", rc, req1 - req0, out);
    /* -o FILE, no hash published (size + GGUF checks only). */
    snprintf(args, sizeof args, "-q -o '%s/o.gguf' %s/plain/x.gguf", g_tmp, base);
    rc = pull(args, out, sizeof out);
    snprintf(dest, sizeof dest, "%s/o.gguf", g_tmp);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);

    /* A transfer cut halfway: the same pull resumes with Range. */
    served(&req0, &ranges0, &last);
    snprintf(args, sizeof args, "%s/cut/c.gguf", base);
    rc = pull(args, out, sizeof out);
    served(&req1, &ranges1, &last);
    snprintf(dest, sizeof dest, "%s/c.gguf", g_store);
    CHECKF(rc == 0, "exit %d: %s", rc, out);
    CHECK(sha_is(dest, g_sha));
    CHECKF(req1 - req0 == 2 && ranges1 - ranges0 == 1 && last == (long)(g_size / 2), "%d requests, %d ranges, last %ld",
           req1 - req0, ranges1 - ranges0, last);
    /* Cut three times in a row: still one pull. */
    snprintf(args, sizeof args, "%s/cutall/d.gguf", base);
    rc = pull(args, out, sizeof out);
    snprintf(dest, sizeof dest, "%s/d.gguf", g_store);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);

    /* A .partial left by an interrupted pull: the next pull asks for the rest. */
    snprintf(dest, sizeof dest, "%s/r.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    CHECK(write_bytes(part, g_file, g_size / 2) == 0);
    served(&req0, &ranges0, &last);
    snprintf(args, sizeof args, "%s/ok/r.gguf", base);
    rc = pull(args, out, sizeof out);
    served(&req1, &ranges1, &last);
    CHECKF(rc == 0 && sha_is(dest, g_sha) && !exists(part), "exit %d: %s", rc, out);
    CHECKF(req1 - req0 == 1 && ranges1 - ranges0 == 1 && last == (long)(g_size / 2), "%d requests, last range %ld",
           req1 - req0, last);
    /* A .partial of another file (an older version): the resumed file fails
     * the sha256 check, and the pull downloads it once more from zero. */
    snprintf(dest, sizeof dest, "%s/s.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    {
        unsigned char *stale = malloc(g_size / 2);
        memcpy(stale, g_file, g_size / 2);
        stale[g_size / 2 - 10] ^= 1;
        CHECK(write_bytes(part, stale, g_size / 2) == 0);
        free(stale);
    }
    served(&req0, &ranges0, &last);
    snprintf(args, sizeof args, "%s/ok/s.gguf", base);
    rc = pull(args, out, sizeof out);
    served(&req1, &ranges1, &last);
    CHECKF(rc == 0 && sha_is(dest, g_sha) && !exists(part), "exit %d: %s", rc, out);
    CHECKF(req1 - req0 == 2 && ranges1 - ranges0 == 1 && last == -1, "%d requests, last range %ld", req1 - req0, last);
    /* A .partial as long as the file (416): restarted, still right. */
    snprintf(dest, sizeof dest, "%s/f.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    CHECK(write_bytes(part, g_file, g_size) == 0);
    snprintf(args, sizeof args, "%s/ok/f.gguf", base);
    rc = pull(args, out, sizeof out);
    CHECKF(rc == 0 && sha_is(dest, g_sha) && !exists(part), "exit %d: %s", rc, out);

    /* A server without Range support: the partial (here garbage) restarts from zero. */
    snprintf(dest, sizeof dest, "%s/n.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    {
        unsigned char junk[5000];
        memset(junk, 0xA5, sizeof junk);
        CHECK(write_bytes(part, junk, sizeof junk) == 0);
    }
    served(&req0, &ranges0, &last);
    snprintf(args, sizeof args, "%s/norange/n.gguf", base);
    rc = pull(args, out, sizeof out);
    served(&req1, &ranges1, &last);
    CHECKF(rc == 0 && sha_is(dest, g_sha) && !exists(part), "exit %d: %s", rc, out);
    CHECK(req1 - req0 == 1 && ranges1 - ranges0 == 1 && last == 5000);

    /* One corrupted byte: the served sha256 does not match; refused, no file left. */
    const char *bad[] = {"bad", "badrepr"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "%s/%s/b.gguf", base, bad[i]);
        rc = pull(args, out, sizeof out);
        snprintf(dest, sizeof dest, "%s/b.gguf", g_store);
        snprintf(part, sizeof part, "%s.partial", dest);
        CHECKF(rc == 1 && one_line(out) && strstr(out, "sha256"), "%s: exit %d: %s", bad[i], rc, out);
        CHECK(!exists(dest) && !exists(part));
    }
    /* Repr-Digest that matches is accepted. */
    snprintf(args, sizeof args, "%s/reprok/g.gguf", base);
    rc = pull(args, out, sizeof out);
    snprintf(dest, sizeof dest, "%s/g.gguf", g_store);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);

    /* 404 and an HTML page: one clear line, exit 1, nothing left. */
    snprintf(args, sizeof args, "%s/missing/m.gguf", base);
    rc = pull(args, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "404"), "exit %d: %s", rc, out);
    snprintf(dest, sizeof dest, "%s/m.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    CHECK(!exists(dest) && !exists(part));
    snprintf(args, sizeof args, "%s/html/h.gguf", base);
    rc = pull(args, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "HTML"), "exit %d: %s", rc, out);
    snprintf(dest, sizeof dest, "%s/h.gguf", g_store);
    snprintf(part, sizeof part, "%s.partial", dest);
    CHECK(!exists(dest) && !exists(part));
    /* Refused before any request: http:// to another host, a bad reference. */
    rc = pull("http://example.com/x.gguf", out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "https"), "exit %d: %s", rc, out);
    rc = pull("hf:../../etc/x.gguf", out, sizeof out);
    CHECKF(rc == 1 && one_line(out), "exit %d: %s", rc, out);
    rc = pull("nothing-here", out, sizeof out);
    CHECKF(rc == 1 && one_line(out), "exit %d: %s", rc, out);

    /* Hugging Face: OWNER/REPO:QUANT from the file list, the 302 to the CDN
     * carrying X-Linked-ETag; Q4_K does not pick Q4_K_M, split files and
     * mmproj are skipped. */
    served(&req0, &ranges0, &last);
    rc = pull("test/repo:q4_k_m", out, sizeof out);
    snprintf(dest, sizeof dest, "%s/repo-Q4_K_M.gguf", g_store);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);
    rc = pull("hf.co/test/repo:Q4_K", out, sizeof out);
    snprintf(dest, sizeof dest, "%s/repo-Q4_K.gguf", g_store);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);
    rc = pull("hf:test/repo/repo-Q8_0.gguf", out, sizeof out);
    snprintf(dest, sizeof dest, "%s/repo-Q8_0.gguf", g_store);
    CHECKF(rc == 0 && sha_is(dest, g_sha), "exit %d: %s", rc, out);
    rc = pull("test/repo:Q6_K", out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "Q6_K") && strstr(out, "repo-Q8_0.gguf"), "exit %d: %s", rc, out);
    rc = pull("test/norepo:Q4_0", out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "404"), "exit %d: %s", rc, out);
    rc = pull("hf:test/repo/nofile.gguf", out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "404"), "exit %d: %s", rc, out);

    /* hive models lists the store; hive rm removes. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s '%s' models 2>&1", g_env, g_hive);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "repo-Q4_K_M") && strstr(out, "llama") && strstr(out, "hive"), "exit %d: %s", rc,
           out);
    snprintf(cmd, sizeof cmd, "%s '%s' rm repo-Q4_K_M 2>&1", g_env, g_hive);
    rc = run_capture(cmd, out, sizeof out);
    snprintf(dest, sizeof dest, "%s/repo-Q4_K_M.gguf", g_store);
    CHECKF(rc == 0 && !exists(dest), "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "%s '%s' rm repo-Q4_K_M 2>&1", g_env, g_hive);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 1 && one_line(out) && strstr(out, "repo-Q4_K"), "exit %d: %s", rc, out); /* close: repo-Q4_K */
    /* -m NAME finds a pulled model. */
    snprintf(cmd, sizeof cmd, "%s '%s' run -m repo-Q8_0 -p '' -n 4 -t 1 2>&1 >/dev/null", g_env, g_hive);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0, "exit %d: %s", rc, out);

    g_stop = 1;
    shutdown(g_listen, SHUT_RDWR);
    close(g_listen);
    pthread_join(th, NULL);
    free(g_file);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_result("test_pull");
}
