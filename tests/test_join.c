/* test_join.c - the cluster follows the machines that are there (issue 7):
 * `hive serve --peers auto` plans over the nodes it finds on the LAN (here
 * loopback multicast on a private port); a node started in the middle of a
 * long answer is used by the next request, and the answers on the larger
 * ring equal the single-node ones. */
#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "test_cluster_util.h"

#define PROMPT "Once upon a time"
#define N_LONG (tc_small() ? 600 : 1500) /* tokens: long enough that a node starts in the middle */

static struct tc_env env;

struct body {
    char *p;
    size_t n;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    struct body *b = arg;
    char *q = realloc(b->p, b->n + size * n + 1);
    if (!q) return 0;
    memcpy(q + b->n, p, size * n);
    b->p = q;
    b->n += size * n;
    b->p[b->n] = '\0';
    return size * n;
}

/* GET or POST (json != NULL); returns the HTTP status, body in *out (malloc'd). */
static long http(const char *url, const char *json, char **out) {
    CURL *c = curl_easy_init();
    struct body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    struct curl_slist *h = NULL;
    if (json) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    *out = b.p;
    return status;
}

static int n_stages(const char *base) {
    char url[256], *body = NULL;
    snprintf(url, sizeof url, "%s/v1/hive/stats", base);
    int n = -1;
    if (http(url, NULL, &body) == 200) {
        cJSON *doc = cJSON_Parse(body);
        n = cJSON_GetArraySize(cJSON_GetObjectItem(doc, "stages"));
        cJSON_Delete(doc);
    }
    free(body);
    return n;
}

static char *completion_text(const char *base, int max_tokens) {
    char url[256], req[256], *body = NULL, *text = NULL;
    snprintf(url, sizeof url, "%s/v1/completions", base);
    snprintf(req, sizeof req, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0}", PROMPT, max_tokens);
    if (http(url, req, &body) == 200) {
        cJSON *doc = cJSON_Parse(body);
        cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "choices"), 0), "text");
        if (cJSON_IsString(t)) text = strdup(t->valuestring);
        cJSON_Delete(doc);
    }
    free(body);
    return text;
}

int main(void) {
    tc_setup(&env);
    char model[512];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    setenv("HIVE_MDNS_PORT", "53572", 1);
    setenv("HIVE_MDNS_IFACE", "127.0.0.1", 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    struct tc_node a, b;
    CHECK(tc_node_start(&env, &a, "join-a", NULL, NULL) == 0);
    /* The server: this machine and what it finds (node a). */
    char log[300];
    snprintf(log, sizeof log, "%s/serve.log", env.dir);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    char *argv[] = {env.bin, "serve", "-m", model, "--peers", "auto", "--key", env.key, "--port", "0", "--spread",
                    "-t", "1", "--slots", "4", NULL};
    int efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t srv = tc_spawn(argv, pfd[1], efd);
    close(pfd[1]);
    close(efd);
    char base[128] = "";
    tc_read_listening(pfd[0], base, sizeof base, 30000);
    CHECKF(base[0], "hive serve did not start (see %s)", log);
    if (base[0]) {
        char *ref = completion_text(base, N_LONG); /* the reference on the first ring */
        CHECK(ref != NULL);
        CHECKF(n_stages(base) == 2, "the first plan has %d stages, expected this machine and node a", n_stages(base));
        /* A long answer runs while node b starts. */
        pid_t client = fork();
        if (client == 0) {
            char *t = completion_text(base, N_LONG);
            _exit(t && ref && !strcmp(t, ref) ? 0 : 1);
        }
        tc_sleep_ms(50);
        CHECK(tc_node_start(&env, &b, "join-b", NULL, NULL) == 0);
        CHECKF(waitpid(client, NULL, WNOHANG) == 0, "the answer ended before node b was up (make it longer)");
        CHECKF(tc_wait(client, 120000) == 0, "the answer during the join differs from the reference or failed");
        /* Between requests the head connects node b and re-plans; the next
         * request runs on a plan that uses it. */
        int stages = n_stages(base);
        for (int i = 0; i < 100 && stages != 3; i++) {
            tc_sleep_ms(100);
            stages = n_stages(base);
        }
        char *again = completion_text(base, N_LONG);
        stages = n_stages(base);
        CHECKF(stages == 3, "node b was not used by the next request (%d stages)", stages);
        CHECKF(again && ref && !strcmp(again, ref), "the answer on the larger ring differs");
        free(again);
        free(ref);
        kill(srv, SIGTERM);
        CHECK(tc_wait(srv, 20000) == 0);
        tc_node_stop(&b);
    }
    close(pfd[0]);
    tc_node_stop(&a);
    if (check_failures) {
        char *text = check_read_file(log, NULL);
        fprintf(stderr, "serve log:\n%s\n", text ? text : "(none)");
        free(text);
    }
    curl_global_cleanup();
    tc_cleanup(&env);
    return check_result("test_join");
}
