/* test_net.c - sockets, cluster key files, wire buffers, and links: the
 * handshake, frames both ways, and a server that survives hostile peers
 * (garbage, truncated or reflected hellos, silence, bad lengths, tampered
 * frames, replayed sessions) and still serves a real peer afterwards.
 * Everything runs on 127.0.0.1. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hive/net.h"
#include "net/net_internal.h"

static uint8_t KEY[HIVE_KEY_BYTES], OTHER_KEY[HIVE_KEY_BYTES];

/* Deterministic bytes for a payload: xorshift seeded per frame. */
static void fill(uint8_t *p, size_t n, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static int small_scale(void) {
    const char *s = getenv("HIVE_TEST_SCALE");
    return s && !strcmp(s, "small");
}

/* ---- wire buffers ---- */

static void test_wire_buffers(void) {
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    hive_wbuf_u8(&w, 0xab);
    hive_wbuf_u32(&w, 0x01020304u);
    hive_wbuf_u64(&w, 0x1122334455667788ull);
    hive_wbuf_f32(&w, 1.0f);
    hive_wbuf_str(&w, "hi");
    hive_wbuf_bytes(&w, "xyz", 3);
    /* Little-endian on the wire, independent of this machine. 1.0f = 0x3f800000. */
    static const uint8_t expect[] = {0xab, 4, 3, 2, 1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                     0, 0, 0x80, 0x3f, 2, 0, 0, 0, 'h', 'i', 'x', 'y', 'z'};
    CHECK(!w.bad);
    CHECK(w.len == sizeof expect);
    CHECK(w.len == sizeof expect && !memcmp(w.p, expect, sizeof expect));

    struct hive_rbuf r;
    char s[8];
    hive_rbuf_init(&r, w.p, w.len);
    CHECK(hive_rbuf_u8(&r) == 0xab);
    CHECK(hive_rbuf_u32(&r) == 0x01020304u);
    CHECK(hive_rbuf_u64(&r) == 0x1122334455667788ull);
    CHECK(hive_rbuf_f32(&r) == 1.0f);
    hive_rbuf_str(&r, s, sizeof s);
    CHECK(!strcmp(s, "hi"));
    CHECK(hive_rbuf_left(&r) == 3);
    const uint8_t *b = hive_rbuf_bytes(&r, 3);
    CHECK(b && !memcmp(b, "xyz", 3));
    CHECK(!r.bad && hive_rbuf_left(&r) == 0);
    /* overrun: zeros, bad, and stays bad */
    CHECK(hive_rbuf_u32(&r) == 0);
    CHECK(r.bad);
    CHECK(hive_rbuf_u8(&r) == 0 && r.bad);
    CHECK(hive_rbuf_bytes(&r, 0) == NULL);

    hive_rbuf_init(&r, expect, 3);
    CHECK(hive_rbuf_u32(&r) == 0 && r.bad);
    hive_rbuf_init(&r, expect, sizeof expect);
    CHECK(hive_rbuf_bytes(&r, sizeof expect + 1) == NULL && r.bad);
    /* a string whose declared length runs past the end */
    static const uint8_t long_str[] = {200, 0, 0, 0, 'a', 'b'};
    hive_rbuf_init(&r, long_str, sizeof long_str);
    hive_rbuf_str(&r, s, sizeof s);
    CHECK(r.bad && s[0] == '\0');
    /* a string that does not fit the caller's buffer */
    static const uint8_t fit_str[] = {8, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'};
    hive_rbuf_init(&r, fit_str, sizeof fit_str);
    hive_rbuf_str(&r, s, sizeof s); /* 8 chars + NUL > 8 */
    CHECK(r.bad);
    static const uint8_t nul_str[] = {3, 0, 0, 0, 'a', 0, 'b'};
    hive_rbuf_init(&r, nul_str, sizeof nul_str);
    hive_rbuf_str(&r, s, sizeof s);
    CHECK(r.bad);
    hive_rbuf_init(&r, NULL, 0);
    CHECK(hive_rbuf_bytes(&r, 0) != NULL && !r.bad);
    CHECK(hive_rbuf_u8(&r) == 0 && r.bad);
    hive_wbuf_free(&w);
    CHECK(w.p == NULL && w.len == 0);
}

/* ---- host:port ---- */

static void test_hostport(void) {
    char host[64], err[HIVE_ERR_LEN];
    int port = -1;
    CHECK(hive_net_parse_hostport("127.0.0.1:8080", host, sizeof host, &port, err) == HIVE_OK);
    CHECK(!strcmp(host, "127.0.0.1") && port == 8080);
    CHECK(hive_net_parse_hostport("[::1]:9000", host, sizeof host, &port, err) == HIVE_OK);
    CHECK(!strcmp(host, "::1") && port == 9000);
    CHECK(hive_net_parse_hostport("node-a.local:0", host, sizeof host, &port, err) == HIVE_OK);
    CHECK(!strcmp(host, "node-a.local") && port == 0);
    CHECK(hive_net_parse_hostport("localhost:65535", host, sizeof host, &port, err) == HIVE_OK && port == 65535);
    const char *bad[] = {"", "host", ":80", "host:", "host:65536", "host:-1", "host:8x", "::1:80",
                         "[::1]", "[::1]80", "[]:80", "host:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(hive_net_parse_hostport(bad[i], host, sizeof host, &port, err) == HIVE_ERR_INVAL, "'%s'", bad[i]);
    char tiny[4];
    CHECK(hive_net_parse_hostport("abcdef:1", tiny, sizeof tiny, &port, err) == HIVE_ERR_INVAL);
}

/* ---- sockets ---- */

static void test_sockets(void) {
    char err[HIVE_ERR_LEN];
    int lfd, port = 0;
    CHECK(hive_net_listen("127.0.0.1", 0, &lfd, &port, err) == HIVE_OK);
    CHECK(port > 0);
    int afd = -1;
    CHECK(hive_net_accept(lfd, 50, &afd, err) == HIVE_ERR_TIMEOUT); /* nobody connects */
    int cfd = -1;
    CHECK(hive_net_connect("127.0.0.1", port, 2000, &cfd, err) == HIVE_OK);
    CHECK(hive_net_accept(lfd, 2000, &afd, err) == HIVE_OK);
    /* Both ends probe a silent peer (keepalive), so a vanished head is noticed. */
    for (int k = 0; k < 2; k++) {
        int fd = k ? afd : cfd, on = 0, idle = 0;
        socklen_t len = sizeof on;
        CHECK(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) == 0 && on == 1);
        len = sizeof idle;
        CHECK(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0 && idle > 0 && idle <= 60);
    }
    char buf[4];
    CHECK(hive_net_read_full(afd, buf, 4, 50, err) == HIVE_ERR_TIMEOUT);
    CHECK(hive_net_write_full(cfd, "ping", 4, err) == HIVE_OK);
    CHECK(hive_net_read_full(afd, buf, 4, 2000, err) == HIVE_OK && !memcmp(buf, "ping", 4));
    close(cfd);
    CHECK(hive_net_read_full(afd, buf, 4, 2000, err) == HIVE_ERR_CLOSED);
    /* Writing to a closed peer fails instead of killing us with SIGPIPE. */
    static uint8_t big[1 << 20];
    int rc = HIVE_OK;
    for (int i = 0; i < 8 && rc == HIVE_OK; i++) rc = hive_net_write_full(afd, big, sizeof big, err);
    CHECK(rc == HIVE_ERR_CLOSED || rc == HIVE_ERR_IO);
    close(afd);
    close(lfd);
    /* A port nobody listens on: refused, not hung. */
    CHECK(hive_net_listen("127.0.0.1", 0, &lfd, &port, err) == HIVE_OK);
    close(lfd);
    CHECK(hive_net_connect("127.0.0.1", port, 2000, &cfd, err) == HIVE_ERR_IO);
    CHECK(hive_net_connect("", port, 2000, &cfd, err) == HIVE_ERR_INVAL);
}

/* ---- cluster key files ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static void test_key_files(void) {
    char dir_tmpl[] = "/tmp/hive-test-net-XXXXXX";
    char *dir = mkdtemp(dir_tmpl);
    CHECK(dir != NULL);
    if (!dir) return;
    char path[512], other[512], err[HIVE_ERR_LEN];
    snprintf(path, sizeof path, "%s/cluster.key", dir);
    snprintf(other, sizeof other, "%s/bad.key", dir);

    uint8_t a[HIVE_KEY_BYTES], b[HIVE_KEY_BYTES], loaded[HIVE_KEY_BYTES];
    hive_key_generate(a);
    hive_key_generate(b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(hive_key_save(path, a, err) == HIVE_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* The file is the hex of the key and a newline, formatted independently here. */
    char expect[2 * HIVE_KEY_BYTES + 2], got[200] = {0};
    for (int i = 0; i < HIVE_KEY_BYTES; i++) snprintf(expect + 2 * i, 3, "%02x", a[i]);
    strcat(expect, "\n");
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(got, 1, sizeof got - 1, f) : 0;
    if (f) fclose(f);
    CHECK(n == 65 && !strcmp(got, expect));
    CHECK(hive_key_load(path, loaded, err) == HIVE_OK && !memcmp(loaded, a, sizeof a));
    /* no silent overwrite; an explicit one works */
    CHECK(hive_key_save(path, b, err) == HIVE_ERR_INVAL);
    CHECK(hive_key_load(path, loaded, err) == HIVE_OK && !memcmp(loaded, a, sizeof a));
    CHECK(hive_key_write(path, b, 1, err) == HIVE_OK);
    CHECK(hive_key_load(path, loaded, err) == HIVE_OK && !memcmp(loaded, b, sizeof b));
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    /* strict parsing */
    char hex64[65];
    memset(hex64, 'a', 64);
    hex64[64] = '\0';
    char text[200];
    snprintf(text, sizeof text, "%s", hex64);
    write_file(other, text); /* no newline: fine */
    CHECK(hive_key_load(other, loaded, err) == HIVE_OK && loaded[0] == 0xaa && loaded[31] == 0xaa);
    snprintf(text, sizeof text, "%.32s%.32s\r\n", "0123456789ABCDEF0123456789abcdef", hex64);
    write_file(other, text);
    CHECK(hive_key_load(other, loaded, err) == HIVE_OK && loaded[0] == 0x01 && loaded[7] == 0xef);
    const char *bad[] = {"", "\n", "abc\n", "%.63s\n", "%.64sa\n", "%.64s\nmore\n", "%.64s \n", "%.60sxyzw\n",
                         " %.64s\n", "%.64s\n\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(text, sizeof text, bad[i], hex64);
#pragma GCC diagnostic pop
        write_file(other, text);
        err[0] = '\0';
        CHECKF(hive_key_load(other, loaded, err) == HIVE_ERR_FORMAT, "case %zu", i);
        CHECK(strlen(err) > 0);
    }
    unlink(other);
    CHECK(hive_key_load(other, loaded, err) == HIVE_ERR_IO);
    CHECK(strstr(err, "hive keygen") != NULL);

    /* default path */
    char def[512];
    setenv("HIVE_KEY_FILE", path, 1);
    CHECK(hive_key_default_path(def, sizeof def) == HIVE_OK && !strcmp(def, path));
    CHECK(hive_key_load_default(loaded, err) == HIVE_OK && !memcmp(loaded, b, sizeof b));
    unsetenv("HIVE_KEY_FILE");
    const char *old_home = getenv("HOME");
    char saved_home[512];
    snprintf(saved_home, sizeof saved_home, "%s", old_home ? old_home : "");
    const char *old_xdg = getenv("XDG_CONFIG_HOME");
    char saved_xdg[512];
    snprintf(saved_xdg, sizeof saved_xdg, "%s", old_xdg ? old_xdg : "");
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", dir, 1);
    char want[600];
    snprintf(want, sizeof want, "%s/.config/hive/cluster.key", dir);
    CHECK(hive_key_default_path(def, sizeof def) == HIVE_OK && !strcmp(def, want));
    char tiny[8];
    CHECK(hive_key_default_path(tiny, sizeof tiny) == HIVE_ERR_INVAL);

    /* `hive keygen`, when the binary is built */
    char hive_bin[512], cmd[2048];
    snprintf(hive_bin, sizeof hive_bin, "%s/hive", HIVE_BIN_DIR);
    if (access(hive_bin, X_OK) == 0) {
        snprintf(cmd, sizeof cmd, "'%s' keygen > '%s/out.txt' 2>/dev/null", hive_bin, dir);
        CHECK(system(cmd) == 0); /* default path under $HOME, directories created */
        CHECK(hive_key_load(want, loaded, err) == HIVE_OK);
        CHECK(stat(want, &st) == 0 && (st.st_mode & 0777) == 0600);
        snprintf(cmd, sizeof cmd, "'%s' keygen 2>/dev/null >/dev/null", hive_bin);
        CHECK(system(cmd) != 0); /* exists: refused */
        uint8_t again[HIVE_KEY_BYTES];
        CHECK(hive_key_load(want, again, err) == HIVE_OK && !memcmp(again, loaded, sizeof again));
        snprintf(cmd, sizeof cmd, "'%s' keygen --force >/dev/null", hive_bin);
        CHECK(system(cmd) == 0);
        CHECK(hive_key_load(want, again, err) == HIVE_OK && memcmp(again, loaded, sizeof again) != 0);
        snprintf(cmd, sizeof cmd, "'%s' keygen -o '%s/x/y/k' >/dev/null", hive_bin, dir);
        CHECK(system(cmd) == 0);
        snprintf(want, sizeof want, "%s/x/y/k", dir);
        CHECK(hive_key_load(want, again, err) == HIVE_OK);
        snprintf(cmd, sizeof cmd, "rm -rf '%s/.config' '%s/x' '%s/out.txt'", dir, dir, dir);
        CHECK(system(cmd) == 0);
    } else {
        printf("note: %s not built, skipping the keygen command checks\n", hive_bin);
    }
    if (saved_home[0]) setenv("HOME", saved_home, 1);
    else unsetenv("HOME");
    if (saved_xdg[0]) setenv("XDG_CONFIG_HOME", saved_xdg, 1);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

/* ---- link pairs ---- */

struct server_arg {
    int lfd;
    const uint8_t *key;
    hive_link *link;
    int rc;
    char err[HIVE_ERR_LEN];
};

static void *accept_link(void *p) {
    struct server_arg *a = p;
    int fd;
    a->rc = hive_net_accept(a->lfd, 5000, &fd, a->err);
    if (a->rc == HIVE_OK) a->rc = hive_link_server(&a->link, fd, a->key, 5000, a->err);
    return NULL;
}

/* Connects a client with key_c to a server with key_s over loopback. */
static void link_pair(const uint8_t *key_c, const uint8_t *key_s, hive_link **client, int *rc_c, hive_link **server,
                      int *rc_s) {
    char err[HIVE_ERR_LEN];
    struct server_arg sa = {.key = key_s};
    int port;
    *client = *server = NULL;
    *rc_c = *rc_s = -1;
    if (hive_net_listen("127.0.0.1", 0, &sa.lfd, &port, err) != HIVE_OK) return;
    pthread_t t;
    pthread_create(&t, NULL, accept_link, &sa);
    int fd;
    *rc_c = hive_net_connect("127.0.0.1", port, 5000, &fd, err);
    if (*rc_c == HIVE_OK) *rc_c = hive_link_client(client, fd, key_c, 5000, err);
    if (*rc_c && *rc_c != HIVE_ERR_AUTH) fprintf(stderr, "  client: %s\n", err);
    pthread_join(t, NULL);
    if (sa.rc && sa.rc != HIVE_ERR_AUTH) fprintf(stderr, "  server: %s\n", sa.err);
    *rc_s = sa.rc;
    *server = sa.link;
    close(sa.lfd);
}

struct frame_spec {
    size_t len;
    uint8_t type;
    uint64_t seed;
};

struct sender_arg {
    hive_link *link;
    const struct frame_spec *frames;
    size_t n;
    int rc;
};

static void *send_frames(void *p) {
    struct sender_arg *a = p;
    char err[HIVE_ERR_LEN];
    a->rc = HIVE_OK;
    for (size_t i = 0; i < a->n && a->rc == HIVE_OK; i++) {
        const struct frame_spec *f = &a->frames[i];
        uint8_t *buf = malloc(f->len ? f->len : 1);
        fill(buf, f->len, f->seed);
        /* split into head and body to exercise both */
        size_t head = f->len < 7 ? f->len : 7;
        a->rc = hive_link_send(a->link, f->type, buf, head, buf + head, f->len - head, err);
        free(buf);
    }
    return NULL;
}

/* Sends frames on tx from a thread and checks them as they arrive on rx. */
static int exchange(hive_link *tx, hive_link *rx, const struct frame_spec *frames, size_t n) {
    struct sender_arg sa = {.link = tx, .frames = frames, .n = n};
    pthread_t t;
    pthread_create(&t, NULL, send_frames, &sa);
    int ok = 1;
    char err[HIVE_ERR_LEN];
    for (size_t i = 0; i < n && ok; i++) {
        uint8_t type = 0;
        const uint8_t *payload = NULL;
        size_t len = 0;
        int rc = hive_link_recv(rx, &type, &payload, &len, 10000, err);
        if (rc != HIVE_OK) {
            fprintf(stderr, "  recv frame %zu: %s\n", i, err);
            ok = 0;
            break;
        }
        uint8_t *want = malloc(frames[i].len ? frames[i].len : 1);
        fill(want, frames[i].len, frames[i].seed);
        if (type != frames[i].type || len != frames[i].len || (len && memcmp(payload, want, len))) {
            fprintf(stderr, "  frame %zu differs (type %d len %zu)\n", i, type, len);
            ok = 0;
        }
        free(want);
    }
    pthread_join(t, NULL);
    return ok && sa.rc == HIVE_OK;
}

static void test_link_data(void) {
    hive_link *c, *s;
    int rc_c, rc_s;
    link_pair(KEY, KEY, &c, &rc_c, &s, &rc_s);
    CHECK(rc_c == HIVE_OK && rc_s == HIVE_OK);
    if (rc_c || rc_s) {
        hive_link_close(c);
        hive_link_close(s);
        return;
    }
    CHECK(net_secretstream_inplace_ok()); /* else links use the slower copying path */

    size_t n_small = small_scale() ? 200 : 2000;
    size_t n = 4 + n_small;
    struct frame_spec *frames = calloc(n, sizeof *frames);
    frames[0] = (struct frame_spec){0, 1, 11};
    frames[1] = (struct frame_spec){1, 2, 12};
    frames[2] = (struct frame_spec){1u << 20, 3, 13};
    frames[3] = (struct frame_spec){3 << 20, 255, 14};
    for (size_t i = 0; i < n_small; i++) frames[4 + i] = (struct frame_spec){(i * 37) % 300, (uint8_t)i, 100 + i};
    CHECK(exchange(c, s, frames, n));
    CHECK(exchange(s, c, frames, n));

    /* A timeout leaves the link usable. */
    char err[HIVE_ERR_LEN];
    uint8_t type;
    const uint8_t *payload;
    size_t len;
    CHECK(hive_link_recv(s, &type, &payload, &len, 30, err) == HIVE_ERR_TIMEOUT);
    CHECK(!hive_link_is_dead(s));
    CHECK(exchange(c, s, frames, 3));

    /* Counters: what one side sent, the other received. */
    CHECK(hive_link_bytes_sent(c) == hive_link_bytes_received(s));
    CHECK(hive_link_bytes_sent(s) == hive_link_bytes_received(c));
    CHECK(hive_link_bytes_sent(c) > (4u << 20));
    /* Oversized payloads are refused before anything is allocated or sent. */
    uint64_t before = hive_link_bytes_sent(c);
    CHECK(hive_link_send(c, 1, NULL, 0, NULL, (size_t)HIVE_LINK_MAX_PAYLOAD + 1, err) == HIVE_ERR_INVAL);
    CHECK(hive_link_bytes_sent(c) == before && !hive_link_is_dead(c));

    /* Close: the other side sees a clean EOF. */
    hive_link_close(c);
    CHECK(hive_link_recv(s, &type, &payload, &len, 2000, err) == HIVE_ERR_CLOSED);
    hive_link_close(s);
    free(frames);
}

static void test_wrong_key(void) {
    hive_link *c, *s;
    int rc_c, rc_s;
    link_pair(KEY, OTHER_KEY, &c, &rc_c, &s, &rc_s);
    CHECK(rc_c == HIVE_ERR_AUTH);
    CHECK(rc_s == HIVE_ERR_AUTH);
    CHECK(c == NULL && s == NULL);
}

/* ---- a server under attack ---- */

struct conn_result {
    int hs_rc;    /* handshake */
    int recv_rc;  /* what ended the frame loop */
    int frames;   /* frames echoed */
};

struct serve_arg {
    int lfd;
    int n_conns;
    int result_pipe;
};

/* Accepts n_conns connections one after another; echoes frames on each
 * authenticated one, and reports how each connection ended. */
static void *serve(void *p) {
    struct serve_arg *a = p;
    for (int i = 0; i < a->n_conns; i++) {
        char err[HIVE_ERR_LEN];
        struct conn_result r = {.hs_rc = -1, .recv_rc = -1};
        int fd;
        if (hive_net_accept(a->lfd, 10000, &fd, err) != HIVE_OK) {
            r.hs_rc = -2;
        } else {
            hive_link *l = NULL;
            r.hs_rc = hive_link_server(&l, fd, KEY, 1000, err);
            while (l) {
                uint8_t type;
                const uint8_t *payload;
                size_t len;
                r.recv_rc = hive_link_recv(l, &type, &payload, &len, 3000, err);
                if (r.recv_rc != HIVE_OK) break;
                if (hive_link_send(l, type, payload, len, NULL, 0, err) != HIVE_OK) break;
                r.frames++;
            }
            hive_link_close(l);
        }
        if (write(a->result_pipe, &r, sizeof r) != (ssize_t)sizeof r) break;
    }
    return NULL;
}

static struct conn_result next_result(int fd) {
    struct conn_result r = {-3, -3, -3};
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 20000) == 1 && read(fd, &r, sizeof r) != (ssize_t)sizeof r) r.hs_rc = -4;
    return r;
}

static int raw_connect(int port) {
    int fd = -1;
    char err[HIVE_ERR_LEN];
    if (hive_net_connect("127.0.0.1", port, 5000, &fd, err) != HIVE_OK) fprintf(stderr, "  connect: %s\n", err);
    return fd;
}

/* A relay between a client and the server that records client->server bytes
 * and can flip one of them. */
struct relay {
    int lfd, port, target_port;
    long flip_at; /* c2s offset to corrupt, -1 = none */
    uint8_t *rec;
    size_t rec_len, rec_cap;
};

static void *relay_main(void *p) {
    struct relay *r = p;
    char err[HIVE_ERR_LEN];
    int a, b;
    if (hive_net_accept(r->lfd, 10000, &a, err) != HIVE_OK) return NULL;
    if (hive_net_connect("127.0.0.1", r->target_port, 5000, &b, err) != HIVE_OK) {
        close(a);
        return NULL;
    }
    size_t c2s = 0;
    for (;;) {
        struct pollfd pfd[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
        if (poll(pfd, 2, 10000) <= 0) break;
        uint8_t buf[65536];
        int from = pfd[0].revents ? 0 : 1;
        int src = from ? b : a, dst = from ? a : b;
        ssize_t n = recv(src, buf, sizeof buf, 0);
        if (n <= 0) break;
        if (from == 0) {
            if (r->flip_at >= 0 && (size_t)r->flip_at >= c2s && (size_t)r->flip_at < c2s + (size_t)n)
                buf[r->flip_at - (long)c2s] ^= 0x20;
            if (r->rec_len + (size_t)n <= r->rec_cap) {
                memcpy(r->rec + r->rec_len, buf, (size_t)n);
                r->rec_len += (size_t)n;
            }
            c2s += (size_t)n;
        }
        if (hive_net_write_full(dst, buf, (size_t)n, err) != HIVE_OK) break;
    }
    close(a);
    close(b);
    return NULL;
}

static void relay_start(struct relay *r, pthread_t *t, int target_port, long flip_at) {
    char err[HIVE_ERR_LEN];
    r->target_port = target_port;
    r->flip_at = flip_at;
    r->rec_len = 0;
    if (!r->rec) {
        r->rec_cap = 1 << 20;
        r->rec = malloc(r->rec_cap);
    }
    hive_net_listen("127.0.0.1", 0, &r->lfd, &r->port, err);
    pthread_create(t, NULL, relay_main, r);
}

static void relay_join(struct relay *r, pthread_t t) {
    pthread_join(t, NULL);
    close(r->lfd);
}

/* A genuine client that sends frames through the given port and checks the echoes. */
static int real_peer(int port, int n_frames, uint64_t *handshake_bytes) {
    char err[HIVE_ERR_LEN];
    int fd = raw_connect(port);
    hive_link *l = NULL;
    if (fd < 0 || hive_link_client(&l, fd, KEY, 5000, err) != HIVE_OK) {
        fprintf(stderr, "  real peer: %s\n", fd < 0 ? "no connection" : err);
        return 0;
    }
    if (handshake_bytes) *handshake_bytes = hive_link_bytes_sent(l);
    int ok = 1;
    for (int i = 0; i < n_frames && ok; i++) {
        uint8_t msg[100], type;
        fill(msg, sizeof msg, 500 + (uint64_t)i);
        const uint8_t *payload;
        size_t len;
        ok = hive_link_send(l, (uint8_t)(10 + i), msg, sizeof msg, NULL, 0, err) == HIVE_OK &&
             hive_link_recv(l, &type, &payload, &len, 5000, err) == HIVE_OK && type == 10 + i && len == sizeof msg &&
             !memcmp(payload, msg, sizeof msg);
    }
    hive_link_close(l);
    return ok;
}

/* Connects with the real key, then writes raw bytes as if they were frames. */
static int keyed_raw(int port, const void *bytes, size_t n, int then_close) {
    char err[HIVE_ERR_LEN];
    int fd = raw_connect(port);
    hive_link *l = NULL;
    if (fd < 0 || hive_link_client(&l, fd, KEY, 5000, err) != HIVE_OK) return 0;
    hive_net_write_full(hive_link_fd(l), bytes, n, err);
    if (then_close) shutdown(hive_link_fd(l), SHUT_WR);
    /* wait for the server to hang up so the result is in */
    uint8_t type;
    const uint8_t *payload;
    size_t len;
    hive_link_recv(l, &type, &payload, &len, 5000, err);
    hive_link_close(l);
    return 1;
}

static void test_hostile_peers(void) {
    char err[HIVE_ERR_LEN];
    int pipefd[2];
    if (pipe(pipefd) != 0) return;
    struct serve_arg sa = {.n_conns = 14, .result_pipe = pipefd[1]};
    int port;
    if (hive_net_listen("127.0.0.1", 0, &sa.lfd, &port, err) != HIVE_OK) return;
    pthread_t server;
    pthread_create(&server, NULL, serve, &sa);
    struct conn_result r;
    uint8_t junk[256];
    fill(junk, sizeof junk, 77);

    /* 1. a genuine session through a recording relay */
    struct relay rel = {0};
    pthread_t rt;
    uint64_t hs_bytes = 0;
    relay_start(&rel, &rt, port, -1);
    CHECK(real_peer(rel.port, 2, &hs_bytes));
    relay_join(&rel, rt);
    r = next_result(pipefd[0]);
    CHECK(r.hs_rc == HIVE_OK && r.frames == 2 && r.recv_rc == HIVE_ERR_CLOSED);
    CHECK(hs_bytes > 0 && rel.rec_len > hs_bytes);

    /* 2. replay of that recorded session: fresh server nonce, proof fails */
    int fd = raw_connect(port);
    hive_net_write_full(fd, rel.rec, rel.rec_len, err);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_AUTH, "replay: %d", r.hs_rc);
    close(fd);

    /* 3. garbage bytes */
    fd = raw_connect(port);
    hive_net_write_full(fd, junk, sizeof junk, err);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_PROTO, "garbage: %d", r.hs_rc);
    close(fd);

    /* 4. right magic and version, random rest: fails at the proof */
    uint8_t fake[69 + 56];
    memcpy(fake, junk, sizeof fake);
    memcpy(fake, "HIVE\x01", 5);
    fd = raw_connect(port);
    hive_net_write_full(fd, fake, sizeof fake, err);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_AUTH, "fake hello: %d", r.hs_rc);
    close(fd);

    /* 5. truncated hello, then hang up */
    fd = raw_connect(port);
    hive_net_write_full(fd, fake, 20, err);
    shutdown(fd, SHUT_WR);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_CLOSED, "truncated: %d", r.hs_rc);
    close(fd);

    /* 6. connects and says nothing */
    fd = raw_connect(port);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_TIMEOUT, "silent: %d", r.hs_rc);
    close(fd);

    /* 7. reflection: send the server its own hello and then its own proof back */
    fd = raw_connect(port);
    uint8_t hello[69], proof[56];
    CHECK(hive_net_read_full(fd, hello, sizeof hello, 5000, err) == HIVE_OK);
    hive_net_write_full(fd, hello, sizeof hello, err);
    if (hive_net_read_full(fd, proof, sizeof proof, 5000, err) == HIVE_OK)
        hive_net_write_full(fd, proof, sizeof proof, err);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_ERR_AUTH, "reflection: %d", r.hs_rc);
    close(fd);

    /* 8-9. after a valid handshake: lengths out of range */
    static const uint8_t huge_len[4] = {0xff, 0xff, 0xff, 0xff}, tiny_len[4] = {5, 0, 0, 0};
    CHECK(keyed_raw(port, huge_len, 4, 0));
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_OK && r.recv_rc == HIVE_ERR_PROTO, "huge length: %d %d", r.hs_rc, r.recv_rc);
    CHECK(keyed_raw(port, tiny_len, 4, 0));
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_OK && r.recv_rc == HIVE_ERR_PROTO, "tiny length: %d %d", r.hs_rc, r.recv_rc);

    /* 10. after a valid handshake: a plausible length and random bytes */
    uint8_t forged[4 + 100];
    forged[0] = 100;
    forged[1] = forged[2] = forged[3] = 0;
    memcpy(forged + 4, junk, 100);
    CHECK(keyed_raw(port, forged, sizeof forged, 0));
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_OK && r.recv_rc == HIVE_ERR_PROTO, "random frame: %d %d", r.hs_rc, r.recv_rc);

    /* 11. a genuine frame with one ciphertext byte flipped in transit */
    relay_start(&rel, &rt, port, (long)hs_bytes + 4 + 10);
    CHECK(!real_peer(rel.port, 1, NULL)); /* the echo never comes */
    relay_join(&rel, rt);
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_OK && r.recv_rc == HIVE_ERR_PROTO && r.frames == 0, "tampered: %d %d", r.hs_rc,
           r.recv_rc);

    /* 12. hangs up in the middle of a frame */
    uint8_t partial[4 + 50] = {200, 0, 0, 0};
    CHECK(keyed_raw(port, partial, sizeof partial, 1));
    r = next_result(pipefd[0]);
    CHECKF(r.hs_rc == HIVE_OK && r.recv_rc == HIVE_ERR_CLOSED, "mid-frame close: %d %d", r.hs_rc, r.recv_rc);

    /* 13. wrong key, from a real client */
    fd = raw_connect(port);
    hive_link *l = NULL;
    CHECK(hive_link_client(&l, fd, OTHER_KEY, 5000, err) == HIVE_ERR_AUTH && l == NULL);
    r = next_result(pipefd[0]);
    CHECK(r.hs_rc == HIVE_ERR_AUTH && r.frames == 0);

    /* 14. and the server still serves a real peer */
    CHECK(real_peer(port, 3, NULL));
    r = next_result(pipefd[0]);
    CHECK(r.hs_rc == HIVE_OK && r.frames == 3);

    pthread_join(server, NULL);
    close(sa.lfd);
    close(pipefd[0]);
    close(pipefd[1]);
    free(rel.rec);
}

int main(void) {
    signal(SIGPIPE, SIG_DFL); /* prove that nothing relies on ignoring it */
    hive_key_generate(KEY);
    hive_key_generate(OTHER_KEY);
    test_wire_buffers();
    test_hostport();
    test_sockets();
    test_key_files();
    test_link_data();
    test_wrong_key();
    test_hostile_peers();
    return check_result("test_net");
}
