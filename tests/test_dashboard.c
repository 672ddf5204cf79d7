/* test_dashboard.c - the dashboard in a real browser: a 3-node cluster (two
 * `hive node`s and `hive serve --spread` with an API key)
 * answers a stream of long requests while headless Chromium loads
 * http://.../#key=KEY. The dumped DOM must show the three nodes, alive, and
 * a nonzero tokens/s. Screenshots at desktop (1280x900) and phone (390x844)
 * widths, and the whole page at desktop width, are left in the build
 * directory (dashboard-desktop.png, dashboard-phone.png,
 * dashboard-desktop-full.png) to be looked at.
 *
 * Also: the page and its files are public and carry a CSP, the data
 * endpoint needs the key, and the page has nothing from another origin.
 * Skips (77) when Chromium is not installed (scripts/setup.sh installs it). */
#include <pthread.h>
#include <stdatomic.h>

#include "http_util.h"
#include "serve_util.h"

#define KEY "dash-secret"

static atomic_int stop_load;
static atomic_int load_ok;
static const char *load_base;

static void *load(void *arg) {
    (void)arg;
    /* Answers short enough that a re-plan's replay (the head may move
     * layers off a node that a sanitizer build slows down) takes a moment,
     * not the whole look at the page; the loop keeps two in flight. */
    const char *body = "{\"prompt\":\"Once upon a time\",\"max_tokens\":400,\"temperature\":0,\"stream\":true}";
    while (!atomic_load(&stop_load)) {
        struct hu_resp r;
        if (hu_request(load_base, "POST", "/v1/completions", body, KEY, &r) == 0 && r.status == 200)
            atomic_fetch_add(&load_ok, 1);
        hu_free(&r);
    }
    return NULL;
}

static int find_chromium(char *out, size_t cap) {
    const char *names[] = {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"};
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *p = path;
        while (*p) {
            size_t n = strcspn(p, ":");
            snprintf(out, cap, "%.*s/%s", (int)n, p, names[i]);
            if (n && access(out, X_OK) == 0) return 0;
            p += n;
            if (*p == ':') p++;
        }
    }
    return -1;
}

/* Runs chromium headless with the given extra arguments; stdout to out_path
 * (or /dev/null). Returns the exit status. */
static int chromium(const char *bin, const struct tc_env *e, const char *const *extra, const char *out_path) {
    char profile[256];
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium", e->dir);
    char *argv[32];
    int k = 0;
    const char *fixed[] = {bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--disable-quic", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--hide-scrollbars", profile};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[k++] = (char *)fixed[i];
    for (int i = 0; extra[i] && k < 31; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    int fd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    char log[256];
    snprintf(log, sizeof log, "%s/chromium.log", e->dir);
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid = tc_spawn(argv, fd, lfd);
    if (fd >= 0) close(fd);
    if (lfd >= 0) close(lfd);
    return tc_wait(pid, 120000);
}

/* The value of attribute attr in the first tag that contains needle. */
static int attr_after(const char *dom, const char *needle, const char *attr, char *out, size_t cap) {
    const char *p = strstr(dom, needle);
    if (!p) return -1;
    const char *end = strchr(p, '>');
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", attr);
    const char *a = strstr(p, pat);
    if (!a || (end && a > end)) return -1;
    a += strlen(pat);
    size_t n = strcspn(a, "\"");
    if (n >= cap) return -1;
    memcpy(out, a, n);
    out[n] = '\0';
    return 0;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The dumped page: 3 nodes, alive, a nonzero tokens/s, the ring drawn. */
static int dom_ok(const char *dom, char *why, size_t cap) {
    char v[64] = "";
    int n_nodes = count(dom, "class=\"node\"");
    if (!strstr(dom, "data-ready=\"1\"")) return snprintf(why, cap, "the page never got its data"), 0;
    if (strstr(dom, "API key needed")) return snprintf(why, cap, "the page asks for the key"), 0;
    if (n_nodes != 3) return snprintf(why, cap, "%d nodes on the page", n_nodes), 0;
    if (!strstr(dom, "data-node-name=\"alpha\"") || !strstr(dom, "data-node-name=\"beta\"") ||
        !strstr(dom, "data-node-name=\"gamma\""))
        return snprintf(why, cap, "a node's name is missing"), 0;
    if (count(dom, "class=\"node\" data-state=\"alive\"") != 3) return snprintf(why, cap, "not every node shows alive"), 0;
    if (attr_after(dom, "id=\"node-count\"", "data-value", v, sizeof v) || strcmp(v, "3"))
        return snprintf(why, cap, "node count '%s'", v), 0;
    if (attr_after(dom, "id=\"tps-now\"", "data-value", v, sizeof v) || !(atof(v) > 0))
        return snprintf(why, cap, "tokens/s on the page: '%s'", v), 0;
    if (count(dom, "data-member=") != 4 || count(dom, "data-hop=") != 4)
        return snprintf(why, cap, "the ring has %d members and %d hops", count(dom, "data-member="), count(dom, "data-hop=")), 0;
    if (!strstr(dom, "class=\"hop slowest\"")) return snprintf(why, cap, "no hop is marked slowest"), 0;
    if (count(dom, "data-ledger-node=") != 3) /* the ledger on disk: every node has computed for a finished request */
        return snprintf(why, cap, "the ledger's totals list %d nodes", count(dom, "data-ledger-node=")), 0;
    printf("dashboard: %d nodes, %s tokens/s on the page\n", n_nodes, v);
    return 1;
}

int main(void) {
    char model[1024], browser[1024];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    if (find_chromium(browser, sizeof browser)) {
        printf("SKIP: chromium is not installed (scripts/setup.sh installs it: apt-get install chromium)\n");
        return SKIP_CODE;
    }
    struct tc_env e;
    tc_setup(&e);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct tc_node nodes[3] = {0};
    struct ts_serve sv = {0};
    pthread_t th[2];
    int n_th = 0;
    CHECK(tc_node_start(&e, &nodes[0], "alpha", NULL, NULL) == 0);
    CHECK(tc_node_start(&e, &nodes[1], "beta", NULL, NULL) == 0);
    CHECK(tc_node_start(&e, &nodes[2], "gamma", NULL, NULL) == 0);
    if (check_failures) goto out;
    char peers[256];
    tc_peers(nodes, 3, peers, sizeof peers);
    /* Under ASan beside other tests and a browser, a node can be silent for
     * more than the default 1.5 s without being gone: be patient here. */
    const char *args[] = {"-m", model, "--peers", peers, "--key", e.key, "--spread", "--port", "0",
                          "-t", "1", "--api-key", KEY, "--slots", "4", "--dead-after", "10000", NULL};
    int rc = ts_serve_start(&e, &sv, args);
    if (rc == 77) {
        printf("SKIP: no scheduler\n");
        tc_cleanup(&e);
        return SKIP_CODE;
    }
    CHECK(rc == 0);
    if (rc) goto out;

    /* the page is public, the data is not */
    struct hu_resp r;
    CHECK(hu_request(sv.base, "GET", "/", NULL, NULL, &r) == 0 && r.status == 200 && strstr(r.body.p, "<html"));
    CHECK(r.headers.p && strstr(r.headers.p, "Content-Security-Policy: default-src 'self'"));
    CHECK(!strstr(r.body.p, "http://") && !strstr(r.body.p, "https://")); /* nothing from elsewhere */
    hu_free(&r);
    CHECK(hu_request(sv.base, "GET", "/app.js", NULL, NULL, &r) == 0 && r.status == 200 &&
          strstr(r.headers.p, "text/javascript"));
    CHECK(!strstr(r.body.p, "https://"));
    hu_free(&r);
    CHECK(hu_request(sv.base, "GET", "/style.css", NULL, NULL, &r) == 0 && r.status == 200);
    hu_free(&r);
    CHECK(hu_request(sv.base, "GET", "/v1/hive/cluster", NULL, NULL, &r) == 0 && r.status == 401);
    hu_free(&r);
    CHECK(hu_request(sv.base, "GET", "/metrics", NULL, NULL, &r) == 0 && r.status == 401);
    hu_free(&r);
    CHECK(hu_request(sv.base, "POST", "/", "{}", NULL, &r) == 0 && r.status == 405);
    hu_free(&r);

    /* One short answer first: the ledger then credits every node, however
     * slow the long answers below are (sanitizer builds). */
    CHECK(hu_request(sv.base, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":4}", KEY, &r) == 0 &&
          r.status == 200);
    hu_free(&r);
    load_base = sv.base;
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, load, NULL) == 0) n_th++;
    /* a few seconds of history for the chart, and the ring's timings */
    for (int i = 0; i < 100 && atomic_load(&load_ok) < 1; i++) tc_sleep_ms(100);
    tc_sleep_ms(2500);
    CHECK(hu_request(sv.base, "GET", "/v1/hive/cluster", NULL, KEY, &r) == 0 && r.status == 200);
    cJSON *doc = cJSON_Parse(r.body.p ? r.body.p : "");
    CHECK(doc && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "nodes")) == 3);
    CHECK(doc && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "stages")) == 3);
    CHECK(doc && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "ledger")) == 3);
    cJSON_Delete(doc);
    hu_free(&r);

    char url[256], dom_path[256], shot[512], shot_arg[600];
    snprintf(url, sizeof url, "%s/#key=%s", sv.base, KEY);
    snprintf(dom_path, sizeof dom_path, "%s/dom.html", e.dir);
    const char *dump[] = {"--virtual-time-budget=4000", "--dump-dom", url, NULL};
    /* A live view: a re-plan in the middle (the head moves layers off a node
     * that runs slow) empties the ring for a moment, so look up to 6 times. */
    char why[256] = "";
    for (int attempt = 0; attempt < 6; attempt++) {
        if (attempt) tc_sleep_ms(1000);
        rc = chromium(browser, &e, dump, dom_path);
        char *dom = check_read_file(dom_path, NULL);
        if (rc || !dom) {
            snprintf(why, sizeof why, "chromium --dump-dom exited %d", rc);
            free(dom);
            continue;
        }
        if (dom_ok(dom, why, sizeof why)) {
            why[0] = '\0';
            free(dom);
            break;
        }
        free(dom);
        fprintf(stderr, "attempt %d: %s\n", attempt + 1, why);
    }
    CHECKF(!why[0], "%s", why);
    static const struct { const char *name, *size; } shots[] = {{"desktop", "--window-size=1280,900"},
                                                                {"phone", "--window-size=390,844"},
                                                                {"desktop-full", "--window-size=1280,2100"}};
    for (int i = 0; i < 3; i++) {
        snprintf(shot, sizeof shot, "%s/dashboard-%s.png", HIVE_BIN_DIR, shots[i].name);
        snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
        unlink(shot);
        const char *a[] = {"--virtual-time-budget=4000", shots[i].size, shot_arg, url, NULL};
        rc = chromium(browser, &e, a, NULL);
        struct stat sb;
        CHECKF(rc == 0 && stat(shot, &sb) == 0 && sb.st_size > 10000, "screenshot %s (chromium exit %d)", shot, rc);
        printf("screenshot: %s\n", shot);
    }
out:
    atomic_store(&stop_load, 1);
    if (sv.pid > 0) { /* the load threads end with their requests; stopping the server ends them sooner */
        for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
        CHECK(ts_serve_stop(&sv) == 0);
    }
    for (int i = 0; i < 3; i++) CHECK(tc_node_stop(&nodes[i]) == 0);
    curl_global_cleanup();
    tc_cleanup(&e);
    return check_result("test_dashboard");
}
