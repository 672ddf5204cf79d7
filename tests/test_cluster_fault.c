/* test_cluster_fault.c - the pipeline under hostile and broken conditions:
 *  - a head without the cluster key is refused (and the node stays up);
 *  - garbage bytes, truncated handshakes, oversized frame lengths and
 *    malformed authenticated messages sent to nodes while they serve a real
 *    run: no crash, and the real run's output stays identical;
 *  - through LAN proxies with added latency and jitter the output stays
 *    identical;
 *  - a node killed mid-generation, or a link cut, gives the head a clear
 *    error (not a hang).
 * Real `hive node` processes on 127.0.0.1; proxies in-process
 * (hive_lanproxy, the same code as the hive-lanproxy tool). */
#include "test_cluster_util.h"

#include "cluster/proto.h"
#include "hive/lanproxy.h"

#define PROMPT "Once upon a time"

static struct tc_env env;
static char model[512];
static int32_t ref[TC_MAX_TOK];
static int n_ref;

/* ---- attackers ---- */

static int raw_connect(const char *addr) {
    char host[64], err[HIVE_ERR_LEN];
    int port, fd = -1;
    if (hive_net_parse_hostport(addr, host, sizeof host, &port, err)) return -1;
    if (hive_net_connect(host, port, 10000, &fd, err)) return -1;
    return fd;
}

static void send_raw_and_close(const char *addr, const void *p, size_t n) {
    int fd = raw_connect(addr);
    if (fd < 0) return;
    hive_net_write_full(fd, p, n, NULL);
    close(fd);
}

/* An authenticated link that said HELLO as a control (or data) link. */
static hive_link *auth_link(const char *addr, uint8_t role, uint64_t session, int *hello_ok) {
    uint8_t key[HIVE_KEY_BYTES];
    char err[HIVE_ERR_LEN];
    if (hive_key_load(env.key, key, err)) return NULL;
    int fd = raw_connect(addr);
    hive_link *l = NULL;
    if (fd < 0 || hive_link_client(&l, fd, key, 10000, err)) {
        fprintf(stderr, "auth_link: %s\n", fd < 0 ? "cannot connect" : err);
        return NULL;
    }
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = role, .session = session};
    snprintf(h.name, sizeof h.name, "attacker");
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    proto_hello_encode(&w, &h);
    proto_send(l, MSG_HELLO, &w, err);
    hive_wbuf_free(&w);
    uint8_t type = 0;
    const uint8_t *p;
    size_t len;
    int rc = hive_link_recv(l, &type, &p, &len, 10000, err);
    *hello_ok = rc == HIVE_OK && type == MSG_HELLO_OK;
    if (rc) fprintf(stderr, "auth_link: no reply to HELLO: %s\n", err);
    return l;
}

/* Sends one frame and returns the reply type (0 on none / closed). */
static uint8_t request(hive_link *l, uint8_t type, const void *p, size_t n) {
    char err[HIVE_ERR_LEN];
    if (hive_link_send(l, type, p, n, NULL, 0, err)) return 0;
    uint8_t got = 0;
    const uint8_t *q;
    size_t len;
    if (hive_link_recv(l, &got, &q, &len, 10000, err)) return 0;
    return got;
}

static void attack(const char *addr) {
    uint8_t junk[4096];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof junk; i++) {
        s = s * 1664525u + 1013904223u;
        junk[i] = (uint8_t)(s >> 24);
    }
    /* Garbage, a truncated hello, a well-formed hello from someone without
     * the key (random proof), and a hello claiming another version. */
    send_raw_and_close(addr, junk, sizeof junk);
    send_raw_and_close(addr, "HIVE\x01", 5);
    uint8_t hello[69 + 56];
    memcpy(hello, "HIVE\x01", 5);
    memcpy(hello + 5, junk, sizeof hello - 5);
    send_raw_and_close(addr, hello, sizeof hello);
    hello[4] = 9;
    send_raw_and_close(addr, hello, sizeof hello);
    /* A silent connection held open while the rest goes on. */
    int silent = raw_connect(addr);

    int ok = 0;
    char err[HIVE_ERR_LEN];
    /* Authenticated, then an absurd frame length on the raw socket. */
    hive_link *l = auth_link(addr, ROLE_CONTROL, 0, &ok);
    CHECK(l && ok);
    if (l) {
        uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
        hive_net_write_full(hive_link_fd(l), huge, 4, NULL);
        hive_link_close(l);
    }
    /* Authenticated, then a frame cut short. */
    l = auth_link(addr, ROLE_CONTROL, 0, &ok);
    if (l) {
        uint8_t part[8] = {100, 0, 0, 0, 1, 2, 3, 4};
        hive_net_write_full(hive_link_fd(l), part, sizeof part, NULL);
        hive_link_close(l);
    }
    /* A data link for a session that does not exist. */
    l = auth_link(addr, ROLE_DATA, 0x1234, &ok);
    CHECK(!ok);
    hive_link_close(l);
    /* Malformed requests on an authenticated control link: each gets an
     * ERROR (or is ignored) and the link keeps working. */
    l = auth_link(addr, ROLE_CONTROL, 0, &ok);
    CHECK(l && ok);
    if (l) {
        CHECK(request(l, MSG_QUERY, junk, 7) == MSG_ERROR);
        CHECK(request(l, MSG_SETUP, junk, 60) == MSG_ERROR);
        /* Weight messages out of order, then an oversized transfer. */
        hive_link_send(l, MSG_CHUNK, junk, 100, NULL, 0, err);
        hive_link_send(l, MSG_TENSOR_END, junk, 32, NULL, 0, err);
        CHECK(request(l, MSG_WEIGHTS_END, NULL, 0) == MSG_ERROR);
        struct proto_query q = {.first = 0, .last = 1, .file_size = 1};
        snprintf(q.file_name, sizeof q.file_name, "../../etc/passwd");
        struct hive_wbuf w;
        hive_wbuf_init(&w);
        proto_query_encode(&w, &q);
        CHECK(request(l, MSG_QUERY, w.p, w.len) == MSG_QUERY_REPLY);
        w.len = 0;
        hive_wbuf_u32(&w, 1000000000u);
        hive_wbuf_u64(&w, UINT64_MAX / 2);
        hive_wbuf_bytes(&w, junk, 64);
        hive_link_send(l, MSG_META, w.p, w.len, NULL, 0, err);
        struct proto_tensor t = {.type = 8, .n_dims = 2, .ne = {1ull << 39, 1ull << 39, 1, 1}, .n_bytes = 1};
        snprintf(t.name, sizeof t.name, "blk.0.attn_q.weight");
        w.len = 0;
        proto_tensor_encode(&w, &t);
        hive_link_send(l, MSG_TENSOR, w.p, w.len, NULL, 0, err);
        CHECK(request(l, MSG_WEIGHTS_END, NULL, 0) == MSG_ERROR);
        hive_wbuf_free(&w);
        /* Ring messages for unknown sessions and garbage ring messages are dropped. */
        static struct proto_fwd f = {.session = 42, .kind = KIND_TOKENS, .n_seq = 1};
        f.seq[0] = (struct proto_seq){.id = 1, .n_tok = 1};
        w.len = 0;
        hive_wbuf_init(&w);
        proto_fwd_encode_head(&w, &f);
        int32_t tok = 1;
        hive_link_send(l, MSG_FWD, w.p, w.len, &tok, sizeof tok, err);
        hive_wbuf_free(&w);
        hive_link_send(l, MSG_FWD, junk, 3, NULL, 0, err);
        hive_link_close(l);
    }
    /* A message type the node does not know closes that link only. */
    l = auth_link(addr, ROLE_CONTROL, 0, &ok);
    if (l) {
        CHECK(request(l, 200, junk, 10) == 0);
        hive_link_close(l);
    }
    if (silent >= 0) close(silent);
}

static void test_wrong_key(struct tc_node *node) {
    char other[300], stats[300];
    snprintf(other, sizeof other, "%s/other.key", env.dir);
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    uint8_t key[HIVE_KEY_BYTES];
    char err[HIVE_ERR_LEN];
    hive_key_generate(key);
    CHECK(hive_key_write(other, key, 1, err) == HIVE_OK);
    struct tc_node stranger;
    CHECK(tc_node_start(&env, &stranger, "stranger", NULL, other) == 0);
    int rc = tc_head_run(&env, model, stranger.addr, PROMPT, 8, stats, NULL);
    CHECKF(rc != 0, "a node with another key served us");
    CHECKF(tc_head_log_has(&env, "cluster key"), "the error does not name the key");
    CHECK(tc_node_alive(&stranger));
    CHECK(tc_node_stop(&stranger) == 0);
    /* A head with no key file at all fails cleanly too. */
    const char *nokey[] = {"--key", "/nonexistent/key", NULL};
    rc = tc_head_run(&env, model, node->addr, PROMPT, 8, stats, nokey);
    CHECK(rc != 0 && rc != -1);
}

static void test_garbage(struct tc_node *nodes, int n) {
    char peers[512], stats[300], log[300];
    tc_peers(nodes, n, peers, sizeof peers);
    snprintf(stats, sizeof stats, "%s/stats-bg.json", env.dir);
    snprintf(log, sizeof log, "%s/head-bg.log", env.dir);
    /* A real run in the background while the nodes are attacked. */
    char *argv[48];
    const char *spread[] = {"--spread", NULL};
    tc_head_argv(&env, argv, 48, model, peers, PROMPT, "120", stats, spread);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t head = tc_spawn(argv, -1, fd);
    close(fd);
    for (int i = 0; i < n; i++) attack(nodes[i].addr);
    int rc = tc_wait(head, 120000);
    CHECKF(rc == 0, "the run during the attack exited %d", rc);
    int32_t long_ref[TC_MAX_TOK];
    struct hive_sampler_params greedy = hive_sampler_default_params();
    int n_long = tc_reference(model, PROMPT, 120, &greedy, long_ref, TC_MAX_TOK);
    struct tc_stats st;
    CHECK(tc_read_stats(stats, &st) == 0);
    TC_CHECK_TOKENS(&st, long_ref, n_long, "run during attacks");
    for (int i = 0; i < n; i++) CHECKF(tc_node_alive(&nodes[i]), "node %d died under attack", i);
    /* And a fresh run afterwards. */
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    CHECK(tc_head_run(&env, model, peers, PROMPT, 40, stats, spread) == 0);
    CHECK(tc_read_stats(stats, &st) == 0);
    TC_CHECK_TOKENS(&st, ref, n_ref, "run after attacks");
}

static void test_lan_latency(struct tc_node *nodes, int n) {
    struct tc_proxies px;
    CHECK(tc_proxies_start(&px, nodes, n, 3, 1) == 0);
    char peers[512], stats[300];
    tc_proxies_peers(&px, peers, sizeof peers);
    snprintf(stats, sizeof stats, "%s/stats.json", env.dir);
    const char *spread[] = {"--spread", NULL};
    int rc = tc_head_run(&env, model, peers, PROMPT, 40, stats, spread);
    CHECKF(rc == 0, "run through the LAN proxies exited %d", rc);
    if (rc) tc_head_log_print(&env);
    struct tc_stats st;
    CHECK(tc_read_stats(stats, &st) == 0);
    CHECK(st.n_stages == n);
    TC_CHECK_TOKENS(&st, ref, n_ref, "run through LAN proxies");
    tc_proxies_stop(&px);
}

/* Starts a long run through delaying proxies and returns once it streams. */
static pid_t start_slow_run(const char *peers, char *out_path, size_t cap) {
    char stats[300], log[300];
    snprintf(stats, sizeof stats, "%s/stats-slow.json", env.dir);
    snprintf(log, sizeof log, "%s/head.log", env.dir);
    snprintf(out_path, cap, "%s/out.txt", env.dir);
    char *argv[48];
    const char *extra[] = {"--spread", "--timeout", "20000", NULL};
    tc_head_argv(&env, argv, 48, model, peers, PROMPT, "400", stats, extra);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, out, err);
    close(out);
    close(err);
    for (int i = 0; i < 3000; i++) { /* until text streams (bounded) */
        struct stat sb;
        if (stat(out_path, &sb) == 0 && sb.st_size > 20) break;
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        tc_sleep_ms(10);
    }
    return pid;
}

/* The answer of a run that lost a stage must be the undisturbed one. */
static int32_t slow_ref[TC_MAX_TOK];
static int n_slow_ref;

static void check_slow_run_tokens(const char *what) {
    char stats[300];
    snprintf(stats, sizeof stats, "%s/stats-slow.json", env.dir);
    struct tc_stats st;
    CHECKF(tc_read_stats(stats, &st) == 0, "%s: no stats", what);
    TC_CHECK_TOKENS(&st, slow_ref, n_slow_ref, what);
}

static void test_node_death(struct tc_node *nodes) {
    struct hive_sampler_params greedy = hive_sampler_default_params();
    n_slow_ref = tc_reference(model, PROMPT, 400, &greedy, slow_ref, TC_MAX_TOK);
    struct tc_proxies px;
    CHECK(tc_proxies_start(&px, nodes, 2, 5, 0) == 0);
    char peers[512], out[300];
    tc_proxies_peers(&px, peers, sizeof peers);
    pid_t head = start_slow_run(peers, out, sizeof out);
    CHECK(head > 0);
    if (head > 0) {
        kill(nodes[1].pid, SIGKILL);
        waitpid(nodes[1].pid, NULL, 0);
        nodes[1].pid = 0;
        int rc = tc_wait(head, 60000);
        CHECKF(rc == 0, "head exited %d after a node died (-1: it hung)", rc);
        CHECKF(tc_head_log_has(&env, "closed the connection") && tc_head_log_has(&env, "re-planning"),
               "the notice does not say what happened");
        check_slow_run_tokens("run that lost a node");
        if (rc) tc_head_log_print(&env);
    }
    CHECK(tc_node_alive(&nodes[0]));
    tc_proxies_stop(&px);

    /* A link cut by the network (proxy drops every connection). */
    CHECK(tc_node_start(&env, &nodes[1], "n1b", NULL, NULL) == 0);
    CHECK(tc_proxies_start(&px, nodes, 2, 5, 0) == 0);
    tc_proxies_peers(&px, peers, sizeof peers);
    head = start_slow_run(peers, out, sizeof out);
    CHECK(head > 0);
    if (head > 0) {
        char reply[128];
        CHECK(hive_lanproxy_command(px.p[1], "cut", reply, sizeof reply) == HIVE_OK);
        int rc = tc_wait(head, 60000);
        CHECKF(rc == 0, "head exited %d after a link was cut (-1: it hung)", rc);
        CHECKF(tc_head_log_has(&env, "re-planning"), "no recovery notice after the cut");
        check_slow_run_tokens("run through a cut link");
        if (rc) tc_head_log_print(&env);
    }
    tc_proxies_stop(&px);
    CHECK(tc_node_alive(&nodes[0]) && tc_node_alive(&nodes[1]));
}

int main(void) {
    tc_setup(&env);
    shared_path(model, sizeof model, "models/stories260K.gguf");
    struct hive_sampler_params greedy = hive_sampler_default_params();
    n_ref = tc_reference(model, PROMPT, 40, &greedy, ref, TC_MAX_TOK);
    CHECK(n_ref > 5);
    struct tc_node nodes[3];
    int started = 0;
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        started += tc_node_start(&env, &nodes[i], name, NULL, NULL) == 0;
    }
    CHECK(started == 3);
    if (started == 3) {
        test_wrong_key(&nodes[0]);
        test_garbage(nodes, tc_small() ? 2 : 3);
        test_lan_latency(nodes, tc_small() ? 2 : 3);
        test_node_death(nodes);
    }
    for (int i = 0; i < 3; i++) {
        if (nodes[i].pid <= 0) continue;
        CHECKF(tc_node_alive(&nodes[i]), "node %d died", i);
        CHECKF(tc_node_stop(&nodes[i]) == 0, "node %d did not exit cleanly", i);
    }
    tc_cleanup(&env);
    return check_result("test_cluster_fault");
}
