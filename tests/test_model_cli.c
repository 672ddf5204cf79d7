/* test_model_cli.c - `hive run` end to end on stories260K: greedy text from
 * BOS equals the reference text (models/stories260K.greedy-from-BOS.txt),
 * the same seed gives the same sampled text, and errors exit 1 with one
 * clear line. `hive run` is a client of the scheduler (an in-process node
 * when there are no --peers), so this also runs the scheduler end to end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* Runs cmd, captures stdout (and stderr when to_stdout_too) into buf.
 * Returns the exit status or -1. */
static int run_capture(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The python-style quoted text after "text: '" with \n \' \" \\ escapes. */
static int read_reference_text(const char *path, char *out, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strstr(buf, "text: '");
    if (!p) return -1;
    p += 7;
    size_t len = 0;
    for (; *p && *p != '\'' && len + 1 < cap; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            out[len++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        } else {
            out[len++] = *p;
        }
    }
    out[len] = 0;
    return *p == '\'' ? 0 : -1;
}

int main(void) {
    char model[1024], ref_path[1024], expect[4096], out[16384], cmd[4096];
    shared_path(model, sizeof model, "models/stories260K.gguf");
    shared_path(ref_path, sizeof ref_path, "models/stories260K.greedy-from-BOS.txt");
    const char *hive = HIVE_BIN_DIR "/hive";
    if (access(hive, X_OK)) {
        printf("SKIP: %s not built\n", hive);
        return SKIP_CODE;
    }
    CHECK(read_reference_text(ref_path, expect, sizeof expect) == 0);

    /* Greedy from BOS (empty prompt), 80 tokens. */
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p '' -n 80 -t 1 2>/dev/null", hive, model);
    int rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0, "exit %d", rc);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[--n] = 0; /* the final newline hive run adds */
    CHECKF(!strcmp(out, expect), "greedy text differs:\n got: [%s]\nwant: [%s]", out, expect);

    /* Summary line on stderr. */
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Once upon a time' -n 16 -t 2 2>&1 >/dev/null", hive, model);
    rc = run_capture(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "prompt: ") && strstr(out, "generation: 16 tok") && strstr(out, "MiB"));

    /* Sampling is reproducible for a seed, thread count and load mode. */
    char first[16384];
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Lily' -n 40 --temp 0.8 --top-k 20 --seed 7 -t 1 2>/dev/null",
             hive, model);
    CHECK(run_capture(cmd, first, sizeof first) == 0 && strlen(first) > 10);
    snprintf(cmd, sizeof cmd,
             "'%s' run -m '%s' -p 'Lily' -n 40 --temp 0.8 --top-k 20 --seed 7 -t 2 --no-mmap-copy 2>/dev/null", hive,
             model);
    CHECK(run_capture(cmd, out, sizeof out) == 0 && !strcmp(out, first));

    /* Errors: one line, exit 1. */
    snprintf(cmd, sizeof cmd, "'%s' run -m /nonexistent.gguf -p hi 2>&1", hive);
    rc = run_capture(cmd, out, sizeof out);
    CHECK(rc == 1 && strchr(out, '\n') == out + strlen(out) - 1);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'a long prompt that does not fit' --ctx 4 2>&1", hive, model);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "context"), "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' --bogus 2>&1", hive, model);
    CHECK(run_capture(cmd, out, sizeof out) == 1);

    /* What a new user tripped over: the version, refused sampling values
     * with the field and range, the -n limit, the seed, a full context. */
    snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", hive);
    CHECK(run_capture(cmd, out, sizeof out) == 0 && !strncmp(out, "hive ", 5));
    const char *refused[][2] = {{"--temp -1", "temperature"}, {"--top-p 2", "top_p"}, {"--min-p 5", "min_p"},
                                {"--top-k -3", "top_k"},      {"--repeat-penalty 0", "repeat_penalty"},
                                {"--presence-penalty 2.5", "presence_penalty"},
                                {"--frequency-penalty -9", "frequency_penalty"}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p hi %s 2>&1", hive, model, refused[i][0]);
        rc = run_capture(cmd, out, sizeof out);
        CHECKF(rc == 1 && strstr(out, refused[i][1]) && strstr(out, "range"), "%s: exit %d: %s", refused[i][0], rc, out);
    }
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p hi -n 999999999 2>&1", hive, model);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "16777216"), "-n limit: exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Lily' -n 4 --temp 0.8 -t 1 2>&1 >/dev/null", hive, model);
    rc = run_capture(cmd, out, sizeof out);
    unsigned long long seed = 0;
    const char *sp = strstr(out, "seed: ");
    CHECKF(rc == 0 && sp && sscanf(sp, "seed: %llu", &seed) == 1, "no seed printed: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Lily' -n 40 --temp 0.8 --top-k 20 -t 1 --seed 7 2>&1 >/dev/null",
             hive, model);
    CHECK(run_capture(cmd, out, sizeof out) == 0 && !strstr(out, "seed: "));
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Lily' -n 4 -t 1 2>&1 >/dev/null", hive, model);
    CHECKF(run_capture(cmd, out, sizeof out) == 0 && !strstr(out, "seed: "), "a greedy run printed a seed: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Once upon a time' -n 100 --ctx 12 -t 1 2>&1 >/dev/null", hive,
             model);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "context full at 12 tokens"), "full context: exit %d: %s", rc, out);

    /* Chat without a template: two turns, each the whole conversation as a new sequence. */
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time\\nThe end\\n' | '%s' run -m '%s' --chat -n 8 -t 1 2>/dev/null",
             hive, model);
    rc = run_capture(cmd, out, sizeof out);
    CHECKF(rc == 0 && strlen(out) > 4, "chat exit %d: %s", rc, out);
    return check_result("test_model_cli");
}
