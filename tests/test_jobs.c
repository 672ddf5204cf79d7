/* test_jobs.c - jobs on a 4-node local cluster (stories260K), through the
 * real `hive job` binary:
 *  - the planner forms replicas (4 of 1 node); a --map job of 24 prompts
 *    completes and every answer equals that prompt run alone, greedy (the
 *    reference is computed in-process with the model API);
 *  - the same job with one node killed (SIGKILL) and one frozen (SIGSTOP)
 *    mid-job: all 24 complete, each once, the answers still equal the
 *    references, and the ledger credits each subtask to the node that
 *    finished it;
 *  - the queen killed (SIGKILL) mid-job: every ledger entry committed
 *    before the kill is there afterwards, PRAGMA integrity_check passes, and
 *    a restarted job adds to it;
 *  - a worker (`hive worker --queen`) joining mid-job takes subtasks (the
 *    queen's replica behind a LAN proxy with latency, so the job lasts);
 *  - a worker frozen (SIGSTOP) mid-job: the queen drops it when its
 *    heartbeats stop, and a second worker finishes every subtask;
 *  - a worker with --backend pointed at a second `hive serve` (standing in
 *    for Ollama) completes subtasks, through the completions API (answers
 *    equal the references) and through the chat API. */
#include <sqlite3.h>

#include "serve_util.h"

#include "hive/gguf.h"
#include "hive/ledger.h"

#define N_PROMPTS 24
#define N_NODES 4

static struct tc_env env;
static char model[512], map_path[256], ledger_path[256];
static char prompts[N_PROMPTS][96];
static char *refs[N_PROMPTS];

/* The answer text of prompt i run alone, greedy: the generated tokens'
 * pieces up to (not including) an end-of-generation token. */
static char *reference_text(const hive_tokenizer *tok, const char *prompt, int n_predict) {
    static int32_t ids[TC_MAX_TOK];
    struct hive_sampler_params sp = hive_sampler_default_params();
    int n_prompt = hive_tokenize(tok, prompt, strlen(prompt), 1, 0, ids, TC_MAX_TOK);
    int n = tc_reference(model, prompt, n_predict, &sp, ids, TC_MAX_TOK);
    if (n < n_prompt) return NULL;
    char *text = calloc(1, 16 * (size_t)(n - n_prompt) + 1);
    size_t len = 0;
    for (int i = n_prompt; text && i < n; i++) {
        if (hive_tokenizer_is_eog(tok, ids[i])) break;
        char piece[64];
        int k = hive_token_to_piece(tok, ids[i], 0, piece, sizeof piece);
        if (k > 0 && k <= (int)sizeof piece && len + (size_t)k < 16 * (size_t)(n - n_prompt)) {
            memcpy(text + len, piece, (size_t)k);
            len += (size_t)k;
        }
    }
    return text;
}

static int setup_prompts(int n_predict) {
    const char *who[] = {"cat", "dog", "girl", "boy", "bird", "fish", "king", "frog"};
    const char *what[] = {"loved to play", "had a red ball", "went to the park"};
    FILE *f = fopen(map_path, "w");
    if (!f) return -1;
    for (int i = 0; i < N_PROMPTS; i++) {
        snprintf(prompts[i], sizeof prompts[i], "Once upon a time, there was a %s who %s", who[i % 8], what[i / 8]);
        fprintf(f, "%s\n", prompts[i]);
    }
    fclose(f);
    char err[HIVE_ERR_LEN];
    hive_gguf *g = NULL;
    hive_tokenizer *tok = NULL;
    if (hive_gguf_open(&g, model, err) || hive_tokenizer_load(&tok, g, err)) {
        fprintf(stderr, "tokenizer: %s\n", err);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < N_PROMPTS && !rc; i++) {
        free(refs[i]);
        refs[i] = reference_text(tok, prompts[i], n_predict);
        if (!refs[i]) rc = -1;
    }
    hive_tokenizer_free(tok);
    hive_gguf_close(g);
    return rc;
}

/* Starts `hive job --map` (over the nodes when peers is set) with extra
 * arguments; stdout (JSON) and stderr to files. */
static pid_t job_start_ex(const char *peers, int n_predict, const char *out, const char *log,
                          const char *const *extra) {
    char n[16];
    snprintf(n, sizeof n, "%d", n_predict);
    const char *fixed[] = {env.bin, "job", "--map", map_path, "--key", env.key, "-n", n, "--no-merge", "--json",
                           "--ledger", ledger_path, "--deadline", "30000", "--timeout", "240000"};
    char *argv[40];
    int k = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) argv[k++] = (char *)fixed[i];
    if (peers) {
        argv[k++] = "-m", argv[k++] = model;
        argv[k++] = "--peers", argv[k++] = (char *)peers;
    }
    for (int i = 0; extra && extra[i] && k < 39; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, ofd, efd);
    close(ofd);
    close(efd);
    return pid;
}

static pid_t job_start(const char *peers, int n_predict, const char *out, const char *log) {
    return job_start_ex(peers, n_predict, out, log, NULL);
}

static void print_file(const char *path) {
    FILE *f = fopen(path, "r");
    char buf[512];
    while (f && fgets(buf, sizeof buf, f)) fprintf(stderr, "  | %s", buf);
    if (f) fclose(f);
}

static int file_has(const char *path, const char *s) {
    char *buf = check_read_file(path, NULL);
    int has = buf && strstr(buf, s);
    free(buf);
    return has;
}

/* Checks a finished job's JSON: done, 24 answers, each index once, each
 * equal to its reference. done_by[i] gets who answered subtask i. */
static void check_job(const char *out, char done_by[N_PROMPTS][64], const char *what) {
    char *buf = check_read_file(out, NULL);
    char *json = buf ? strchr(buf, '{') : NULL; /* after "workers: listening on ..." */
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    free(buf);
    CHECKF(doc != NULL, "%s: the job printed no JSON", what);
    if (!doc) return;
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "state"));
    CHECKF(state && !strcmp(state, "done"), "%s: state %s", what, state ? state : "(none)");
    cJSON *subs = cJSON_GetObjectItem(doc, "subtasks"), *s;
    CHECKF(cJSON_GetArraySize(subs) == N_PROMPTS, "%s: %d subtasks", what, cJSON_GetArraySize(subs));
    int seen[N_PROMPTS] = {0}, same = 0;
    cJSON_ArrayForEach(s, subs) {
        int i = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(s, "index"));
        if (i < 0 || i >= N_PROMPTS) continue;
        seen[i]++;
        const char *ans = cJSON_GetStringValue(cJSON_GetObjectItem(s, "answer"));
        const char *by = cJSON_GetStringValue(cJSON_GetObjectItem(s, "done_by"));
        snprintf(done_by[i], 64, "%s", by ? by : "");
        if (ans && refs[i] && !strcmp(ans, refs[i])) same++;
        else fprintf(stderr, "%s: subtask %d by %s:\n  got '%s'\n  ref '%s'\n", what, i, by ? by : "?",
                     ans ? ans : "(null)", refs[i] ? refs[i] : "(null)");
    }
    int once = 1;
    for (int i = 0; i < N_PROMPTS; i++) once &= seen[i] == 1;
    CHECKF(once, "%s: a subtask is missing or twice in the result", what);
    CHECKF(same == N_PROMPTS, "%s: %d of %d answers equal the single-node greedy reference", what, same, N_PROMPTS);
    cJSON_Delete(doc);
}

/* Ledger entries so far (any job); -1 when it cannot be read yet. */
static int ledger_entries(void) {
    sqlite3 *db = NULL;
    int n = -1;
    if (sqlite3_open_v2(ledger_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM entries", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* The worker entries of the last job, per subtask: the node credited. */
static void ledger_workers(char nodes[N_PROMPTS][64], int count[N_PROMPTS]) {
    sqlite3 *db = NULL;
    memset(count, 0, N_PROMPTS * sizeof *count);
    if (sqlite3_open_v2(ledger_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) return;
    sqlite3_stmt *st = NULL;
    const char *q = "SELECT subtask, node FROM entries WHERE role = 'worker' AND "
                    "job = (SELECT job FROM entries ORDER BY id DESC LIMIT 1)";
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *sub = (const char *)sqlite3_column_text(st, 0), *node = (const char *)sqlite3_column_text(st, 1);
            int i = sub ? atoi(sub) : -1;
            if (i < 0 || i >= N_PROMPTS || !node) continue;
            count[i]++;
            snprintf(nodes[i], 64, "%s", node);
        }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int wait_entries(int at_least, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (ledger_entries() >= at_least) return 1;
        tc_sleep_ms(20);
    }
    return 0;
}

/* Runs the map job over peers to its end (files NAME.json and NAME.log)
 * and checks it; the log must hold says. Returns the log's path in log. */
static void map_job_checked(const char *peers, int n_predict, const char *name, const char *says,
                            char done_by[N_PROMPTS][64], char log[256]) {
    char out[256];
    snprintf(out, sizeof out, "%s/%s.json", env.dir, name);
    snprintf(log, 256, "%s/%s.log", env.dir, name);
    pid_t pid = job_start(peers, n_predict, out, log);
    int st = tc_wait(pid, 300000);
    CHECKF(st == 0, "the %s job exited with %d", name, st);
    CHECKF(file_has(log, says), "the %s job's log says \"%s\"", name, says);
    if (st) print_file(log);
    check_job(out, done_by, name);
}

static void test_map(const char *peers, int n_predict) {
    char log[256], done_by[N_PROMPTS][64];
    map_job_checked(peers, n_predict, "map", "4 replicas", done_by, log); /* 4 replicas of 1 node */
    int distinct = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        int first = 1;
        for (int k = 0; k < i; k++) first &= strcmp(done_by[k], done_by[i]) != 0;
        distinct += first;
    }
    CHECKF(distinct >= 3, "the subtasks ran on %d distinct nodes", distinct);
    char lnodes[N_PROMPTS][64];
    int lcount[N_PROMPTS];
    ledger_workers(lnodes, lcount);
    for (int i = 0; i < N_PROMPTS; i++)
        CHECKF(lcount[i] == 1 && !strcmp(lnodes[i], done_by[i]), "subtask %d: %d ledger entries, node %s, done by %s",
               i, lcount[i], lcount[i] ? lnodes[i] : "-", done_by[i]);
}

/* A node with room for one sequence's KV cache but not the default four:
 * the job runs one subtask at a time there, and says so. Asked for four
 * outright, it refuses with the reason. */
static void test_room_for_one(int n_predict) {
    struct tc_node tight;
    if (tc_node_start(&env, &tight, "tight", "8M", NULL)) {
        CHECKF(0, "the 8M node started");
        return;
    }
    char peers[64], out[256], log[256], done_by[N_PROMPTS][64];
    tc_peers(&tight, 1, peers, sizeof peers);
    map_job_checked(peers, n_predict, "tight", "no room for 4 subtasks at once per replica", done_by, log);
    const char *four[] = {"--per-replica", "4", NULL};
    snprintf(out, sizeof out, "%s/tight4.json", env.dir);
    pid_t pid = job_start_ex(peers, n_predict, out, log, four);
    int st = tc_wait(pid, 60000);
    CHECKF(st == 1, "--per-replica 4 on the tight node exited with %d, not 1", st);
    CHECKF(file_has(log, "does not fit"), "and said why");
    st = tc_node_stop(&tight);
    CHECKF(st == 0, "the tight node stopped with %d", st);
}

static void test_faults(struct tc_node *nodes, const char *peers, int n_predict) {
    char out[256], log[256], done_by[N_PROMPTS][64];
    snprintf(out, sizeof out, "%s/fault.json", env.dir);
    snprintf(log, sizeof log, "%s/fault.log", env.dir);
    int before = ledger_entries();
    pid_t pid = job_start(peers, n_predict, out, log);
    /* Mid-job: a few subtasks are in the ledger (3 entries each). */
    CHECKF(wait_entries(before + 3 * 3, 120000), "the job made progress before the faults");
    kill(nodes[1].pid, SIGKILL);
    kill(nodes[2].pid, SIGSTOP);
    int st = tc_wait(pid, 300000);
    kill(nodes[2].pid, SIGCONT);
    CHECKF(st == 0, "the job with a node killed and one frozen exited with %d", st);
    if (st) print_file(log);
    check_job(out, done_by, "faults");
    CHECKF(file_has(log, "back to the queue"), "a subtask went back to the queue");
    char lnodes[N_PROMPTS][64];
    int lcount[N_PROMPTS];
    ledger_workers(lnodes, lcount);
    int after_fault = 0;
    for (int i = 0; i < N_PROMPTS; i++) {
        CHECKF(lcount[i] == 1 && !strcmp(lnodes[i], done_by[i]), "subtask %d: %d ledger entries, node %s, done by %s",
               i, lcount[i], lcount[i] ? lnodes[i] : "-", done_by[i]);
        after_fault += !strcmp(done_by[i], "n0") || !strcmp(done_by[i], "n3");
    }
    CHECKF(after_fault > N_PROMPTS / 2, "the nodes left finished the rest (%d subtasks)", after_fault);
    waitpid(nodes[1].pid, NULL, 0);
    nodes[1].pid = 0;
}

static void test_queen_killed(const char *peers, int n_predict) {
    char out[256], log[256], err[HIVE_ERR_LEN];
    snprintf(out, sizeof out, "%s/queen.json", env.dir);
    snprintf(log, sizeof log, "%s/queen.log", env.dir);
    int before = ledger_entries();
    pid_t pid = job_start(peers, n_predict, out, log);
    CHECKF(wait_entries(before + 3 * 2, 120000), "the queen's job made progress");
    int committed = ledger_entries();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    hive_ledger *l = NULL;
    int64_t n_all = 0;
    int rc = hive_ledger_open(&l, ledger_path, err);
    CHECKF(rc == 0, "the ledger reopens after the queen's SIGKILL: %s", rc ? err : "");
    if (!rc) {
        CHECKF(hive_ledger_check(l, err) == 0, "integrity_check after the kill: %s", err);
        hive_ledger_close(l);
    }
    n_all = ledger_entries();
    CHECKF(n_all >= committed, "%lld entries after the kill, %d committed before", (long long)n_all, committed);
    /* A restarted queen adds to the same ledger. */
    pid = job_start(peers, 4, out, log);
    CHECKF(tc_wait(pid, 300000) == 0, "the restarted queen's job");
    CHECKF(ledger_entries() >= n_all + N_PROMPTS * 3, "the restarted job's entries are added");
    if (!hive_ledger_open(&l, ledger_path, err)) {
        CHECKF(hive_ledger_check(l, err) == 0, "integrity_check after the restart: %s", err);
        hive_ledger_close(l);
    }
}

/* The queen's "workers: listening on ADDR" line, from its stdout file. */
static int queen_addr(const char *out, char *addr, size_t cap) {
    for (int waited = 0; waited < 60000; waited += 50) {
        char *buf = check_read_file(out, NULL);
        const char *p = buf ? strstr(buf, "workers: listening on ") : NULL;
        if (p) {
            p += strlen("workers: listening on ");
            size_t n = strcspn(p, " \r\n");
            int ok = n > 0 && n < cap && p[n] == '\n';
            if (ok) memcpy(addr, p, n), addr[n] = 0;
            free(buf);
            if (ok) return 0;
        } else {
            free(buf);
        }
        tc_sleep_ms(50);
    }
    return -1;
}

/* A worker on the model, or on the server at backend (chat: through its
 * chat API). */
static pid_t worker_start_ex(const char *addr, const char *name, const char *backend, int chat, const char *log) {
    char *argv[] = {env.bin, "worker", "--queen", (char *)addr, "--key", env.key, "--name", (char *)name,
                    backend ? "--backend" : "-m", backend ? (char *)backend : model, "-t", "1",
                    chat ? "--chat" : NULL, NULL};
    int efd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = tc_spawn(argv, -1, efd);
    close(efd);
    return pid;
}

static pid_t worker_start(const char *addr, const char *name, const char *backend, const char *log) {
    return worker_start_ex(addr, name, backend, 0, log);
}

/* Subtasks the result credits to name. */
static int count_by(char done_by[N_PROMPTS][64], const char *name) {
    int n = 0;
    for (int i = 0; i < N_PROMPTS; i++) n += !strcmp(done_by[i], name);
    return n;
}

/* A free port for the queen's worker listener, so that the worker can be
 * started (and its model loaded, seconds under ASan) before the queen. */
static int free_port(void) {
    int fd = -1, port = 0;
    char err[HIVE_ERR_LEN];
    if (hive_net_listen("127.0.0.1", 0, &fd, &port, err)) return -1;
    close(fd);
    return port;
}

/* 1 once the file holds s (waits up to timeout_ms). */
static int wait_file_has(const char *path, const char *s, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (file_has(path, s)) return 1;
        tc_sleep_ms(50);
    }
    return 0;
}

/* The worker is started and loaded first, then frozen (SIGSTOP) until the
 * queen's job has answered a few subtasks: it joins mid-job. The queen's one
 * replica sits behind a LAN proxy with latency (a slow remote machine), so
 * the job lasts long enough for the worker to take some. */
static void test_worker_joins(struct tc_node *node, int n_predict) {
    struct tc_proxies px;
    if (tc_proxies_start(&px, node, 1, 2.0, 0.0)) {
        CHECKF(0, "cannot start a LAN proxy");
        return;
    }
    char out[256], log[256], wlog[256], addr[128], done_by[N_PROMPTS][64];
    snprintf(out, sizeof out, "%s/joins.json", env.dir);
    snprintf(log, sizeof log, "%s/joins.log", env.dir);
    snprintf(wlog, sizeof wlog, "%s/worker-w1.log", env.dir);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    pid_t w = worker_start(addr, "w1", NULL, wlog);
    CHECKF(wait_file_has(wlog, "ready", 120000), "the worker loaded its model");
    kill(w, SIGSTOP);
    int before = ledger_entries();
    const char *extra[] = {"--workers-listen", addr, NULL};
    pid_t pid = job_start_ex(px.addr[0], n_predict, out, log, extra);
    CHECKF(wait_entries(before + 3 * 2, 120000), "the job made progress before the worker came");
    kill(w, SIGCONT);
    int st = tc_wait(pid, 300000);
    CHECKF(st == 0, "the job a worker joined exited with %d", st);
    if (st) print_file(log);
    check_job(out, done_by, "worker joins");
    CHECKF(count_by(done_by, "w1") >= 1, "the worker that joined took %d subtasks", count_by(done_by, "w1"));
    /* By default a worker on a model takes 4 subtasks at once: 4 links. */
    char *wl = check_read_file(wlog, NULL);
    int links = 0;
    for (const char *q = wl; q && (q = strstr(q, "connected to the queen")); q++) links++;
    free(wl);
    CHECKF(links >= 4, "the worker held %d links to the queen, not 4", links);
    CHECKF(count_by(done_by, "n0") >= 2, "the replica took %d subtasks", count_by(done_by, "n0"));
    kill(w, SIGTERM);
    st = tc_wait(w, 20000);
    CHECKF(st == 0, "the worker left cleanly (%d)", st);
    if (st) print_file(wlog);
    tc_proxies_stop(&px);
}

/* f0 works alone, is frozen mid-job, and only then does f1 start: the job
 * cannot end before the queen has noticed f0's silence, so the drop (and
 * the requeue of what f0 held) is certain to be exercised. */
static void test_worker_frozen(int n_predict) {
    char out[256], log[256], wlog[2][256], addr[128], done_by[N_PROMPTS][64];
    snprintf(out, sizeof out, "%s/frozen.json", env.dir);
    snprintf(log, sizeof log, "%s/frozen.log", env.dir);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    for (int i = 0; i < 2; i++) snprintf(wlog[i], sizeof wlog[i], "%s/worker-f%d.log", env.dir, i);
    pid_t w[2];
    w[0] = worker_start(addr, "f0", NULL, wlog[0]);
    CHECKF(wait_file_has(wlog[0], "ready", 120000), "worker f0 loaded its model");
    int before = ledger_entries();
    const char *extra[] = {"--workers-listen", addr, "--worker-dead-after", "1000", NULL};
    pid_t pid = job_start_ex(NULL, n_predict, out, log, extra);
    CHECKF(wait_entries(before + 3 * 2, 120000), "the worker made progress");
    kill(w[0], SIGSTOP);
    w[1] = worker_start(addr, "f1", NULL, wlog[1]);
    int st = tc_wait(pid, 300000);
    kill(w[0], SIGCONT);
    CHECKF(st == 0, "the job with a frozen worker exited with %d", st);
    if (st) print_file(log);
    check_job(out, done_by, "frozen worker");
    CHECKF(file_has(log, "worker f0 left"), "the queen dropped the frozen worker");
    CHECKF(count_by(done_by, "f1") >= N_PROMPTS / 2, "the other worker finished the rest (%d)", count_by(done_by, "f1"));
    for (int i = 0; i < 2; i++) {
        kill(w[i], SIGTERM);
        CHECKF(tc_wait(w[i], 20000) == 0, "worker f%d left cleanly", i);
    }
}

static void test_backend_worker(int n_predict) {
    char out[256], log[256], wlog[256], addr[128], done_by[N_PROMPTS][64];
    snprintf(out, sizeof out, "%s/backend.json", env.dir);
    snprintf(log, sizeof log, "%s/backend.log", env.dir);
    snprintf(wlog, sizeof wlog, "%s/worker-web.log", env.dir);
    const char *args[] = {"-m", model, "--port", "0", "-t", "1", NULL};
    struct ts_serve srv;
    int rc = ts_serve_start(&env, &srv, args);
    CHECKF(rc == 0, "a second hive serve started (%d)", rc);
    if (rc) return;
    /* A queen with no model of its own: only the worker computes. */
    const char *extra[] = {"--workers-listen", "127.0.0.1:0", NULL};
    pid_t pid = job_start_ex(NULL, n_predict, out, log, extra);
    CHECKF(queen_addr(out, addr, sizeof addr) == 0, "the queen listens for workers");
    pid_t w = worker_start(addr, "web", srv.base, wlog);
    int st = tc_wait(pid, 300000);
    CHECKF(st == 0, "the job on a --backend worker exited with %d", st);
    if (st) print_file(log), print_file(wlog);
    check_job(out, done_by, "backend worker");
    CHECKF(count_by(done_by, "web") == N_PROMPTS, "the backend worker answered %d", count_by(done_by, "web"));
    kill(w, SIGTERM);
    CHECKF(tc_wait(w, 20000) == 0, "the backend worker left cleanly");

    /* The same through the server's chat API: the prompt becomes a user
     * message, so the answers differ from the plain ones; the job completes. */
    snprintf(wlog, sizeof wlog, "%s/worker-chat.log", env.dir);
    pid = job_start_ex(NULL, 8, out, log, extra);
    CHECKF(queen_addr(out, addr, sizeof addr) == 0, "the queen listens for workers");
    w = worker_start_ex(addr, "webchat", srv.base, 1, wlog);
    st = tc_wait(pid, 300000);
    CHECKF(st == 0, "the job on a --backend --chat worker exited with %d", st);
    if (st) print_file(log), print_file(wlog);
    CHECKF(file_has(out, "\"state\":\t\"done\"") && file_has(out, "\"webchat\":\t24"),
           "the chat worker answered every subtask");
    kill(w, SIGTERM);
    CHECKF(tc_wait(w, 20000) == 0, "the chat worker left cleanly");
    CHECKF(ts_serve_stop(&srv) == 0, "hive serve stopped cleanly");
}

int main(void) {
    shared_path(model, sizeof model, "models/stories260K.gguf");
    tc_setup(&env);
    snprintf(map_path, sizeof map_path, "%s/map.txt", env.dir);
    snprintf(ledger_path, sizeof ledger_path, "%s/ledger.db", env.dir);
    int n_predict = tc_small() ? 48 : 64;
    if (setup_prompts(n_predict)) {
        fprintf(stderr, "cannot compute the references\n");
        return 1;
    }
    struct tc_node nodes[N_NODES];
    memset(nodes, 0, sizeof nodes);
    char peers[512];
    for (int i = 0; i < N_NODES; i++) {
        char name[8];
        snprintf(name, sizeof name, "n%d", i);
        if (tc_node_start(&env, &nodes[i], name, NULL, NULL)) return 1;
    }
    tc_peers(nodes, N_NODES, peers, sizeof peers);

    test_map(peers, n_predict);
    test_room_for_one(n_predict);
    test_worker_joins(&nodes[0], n_predict);
    test_worker_frozen(n_predict);
    test_backend_worker(n_predict);
    test_queen_killed(peers, n_predict * 2);
    test_faults(nodes, peers, n_predict);

    for (int i = 0; i < N_NODES; i++) {
        if (!nodes[i].pid) continue;
        int st = tc_node_stop(&nodes[i]);
        CHECKF(st == 0, "node n%d exited with %d", i, st);
    }
    for (int i = 0; i < N_PROMPTS; i++) free(refs[i]);
    tc_cleanup(&env);
    return check_result("test_jobs");
}
