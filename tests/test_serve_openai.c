/* test_serve_openai.c - the official OpenAI Node client against `hive
 * serve` (alone, on its in-process node): tests/openai/check.mjs does a
 * chat, a completion and a streamed chat and checks that the greedy
 * streamed answer equals the non-streamed one. `npm install` puts the
 * pinned client into tests/openai/node_modules. Skips (77) with a message
 * when node or npm is missing or the install fails (no registry). */
#include "serve_util.h"

#define KEY "sk-openai-check"

/* Runs a shell command; its output goes to log. Returns the exit status. */
static int sh(const char *cmd, const char *log) {
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int st = tc_wait(tc_spawn(argv, fd, fd), 300000);
    if (fd >= 0) close(fd);
    return st;
}

static void print_log(const char *log) {
    char *t = check_read_file(log, NULL);
    fprintf(stderr, "%s\n", t ? t : "");
    free(t);
}

int main(void) {
    char model[512], cmd[2048], log[256];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    struct tc_env e;
    tc_setup(&e);
    snprintf(log, sizeof log, "%s/npm.log", e.dir);
    if (sh("command -v node && command -v npm", log) != 0) {
        printf("SKIP: node/npm not found (the OpenAI client check needs Node 18+)\n");
        tc_cleanup(&e);
        return SKIP_CODE;
    }
    snprintf(cmd, sizeof cmd, "cd '%s/tests/openai' && npm install --no-audit --no-fund", HIVE_SOURCE_DIR);
    if (sh(cmd, log) != 0) {
        printf("SKIP: npm install of the openai client failed (no registry?):\n");
        print_log(log);
        tc_cleanup(&e);
        return SKIP_CODE;
    }
    char cache[256];
    snprintf(cache, sizeof cache, "%s/cache-head", e.dir);
    const char *args[] = {"-m", model, "--port", "0", "--api-key", KEY, "-t", "1", "--cache-dir", cache, NULL};
    struct ts_serve s;
    int rc = ts_serve_start(&e, &s, args);
    if (rc == 77) {
        printf("SKIP: this hive binary has no scheduler yet (src/cluster/sched.c)\n");
        tc_cleanup(&e);
        return SKIP_CODE;
    }
    CHECK(rc == 0);
    if (rc == 0) {
        snprintf(log, sizeof log, "%s/node.log", e.dir);
        snprintf(cmd, sizeof cmd, "node '%s/tests/openai/check.mjs' '%s' '%s' stories260K", HIVE_SOURCE_DIR, s.base, KEY);
        int st = sh(cmd, log);
        CHECKF(st == 0, "check.mjs exited with %d", st);
        print_log(log);
        CHECK(ts_serve_stop(&s) == 0);
    }
    tc_cleanup(&e);
    return check_result("test_serve_openai");
}
