/* test_decompose.c - the decomposition prompt and the reply parser on
 * well-formed, fenced, prose-wrapped, object, truncated and garbage
 * replies, and its caps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hive/core.h"
#include "hive/decompose.h"
#include "hive/tokenizer.h"

static const char *TASK = "Write a report on bees";

/* Parses reply and checks the subtasks against want (NULL-terminated). */
static void expect(const char *reply, int max, const char *const *want, int fallback, int truncated) {
    struct hive_subtasks s;
    char err[HIVE_ERR_LEN];
    int rc = hive_decompose_parse(reply, strlen(reply), TASK, max, &s, err);
    CHECKF(rc == 0, "%s", err);
    int n = 0;
    while (want[n]) n++;
    CHECKF(s.n == n, "reply <%s>: %d subtasks, want %d", reply, s.n, n);
    for (int i = 0; i < n && i < s.n; i++) CHECKF(!strcmp(s.text[i], want[i]), "[%d] '%s' != '%s'", i, s.text[i], want[i]);
    CHECKF(s.fallback == fallback, "reply <%s>: fallback %d", reply, s.fallback);
    CHECKF(s.truncated == truncated, "reply <%s>: truncated %d", reply, s.truncated);
    hive_subtasks_free(&s);
}

static void test_prompt(void) {
    char buf[2048];
    int n = hive_decompose_prompt(HIVE_CHAT_CHATML, TASK, 5, buf, sizeof buf);
    CHECK(n > 0 && (size_t)n < sizeof buf);
    CHECK(strstr(buf, "<|im_start|>user\n") == buf);
    CHECK(strstr(buf, "at most 5 independent subtasks"));
    CHECK(strstr(buf, "JSON array of strings"));
    CHECK(strstr(buf, "Task: Write a report on bees"));
    CHECK(strstr(buf, "<|im_start|>assistant\n"));
    /* Clamped count; snprintf-like length when the buffer is short. */
    CHECK(hive_decompose_prompt(HIVE_CHAT_NONE, TASK, 1000, buf, sizeof buf) > 0 && strstr(buf, "at most 256"));
    char small[16];
    CHECK(hive_decompose_prompt(HIVE_CHAT_LLAMA3, TASK, 4, small, sizeof small) > (int)sizeof small);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(hive_decompose_prompt(HIVE_CHAT_NONE, NULL, 4, buf, sizeof buf) == -1);
}

static void test_well_formed(void) {
    const char *abc[] = {"a", "b", "c", NULL};
    expect("[\"a\", \"b\", \"c\"]", 8, abc, 0, 0);
    expect("  \n[\"a\",\"b\",\"c\"]\n", 8, abc, 0, 0);
    const char *esc[] = {"say \"hi\"", "tab\there", "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93", NULL};
    expect("[\"say \\\"hi\\\"\", \"tab\\there\", \"\\u00e9t\\u00e9 \xe2\x9c\x93\"]", 8, esc, 0, 0);
    /* Trimmed, empty and repeated ones dropped, other values skipped. */
    const char *ab[] = {"a", "b", NULL};
    expect("[\" a \", \"\", \"a\", 3, null, [\"x\"], \"b\"]", 8, ab, 0, 0);
}

static void test_wrapped(void) {
    const char *two[] = {"Find sources on bee biology", "Summarise the role of bees in farming", NULL};
    expect("Sure! Here are the subtasks:\n```json\n[\"Find sources on bee biology\",\n"
           " \"Summarise the role of bees in farming\"]\n```\nLet me know if you need more.",
           8, two, 0, 0);
    expect("```\n[\"Find sources on bee biology\", \"Summarise the role of bees in farming\"]```", 8, two, 0, 0);
    /* Prose with brackets before the list. */
    expect("I split it [as asked] into 2 parts: [\"Find sources on bee biology\", "
           "\"Summarise the role of bees in farming\"] Done.",
           8, two, 0, 0);
    /* A fence with something else first, the list in the second. */
    expect("```python\nprint([1, 2])\n```\nand\n```json\n[\"Find sources on bee biology\", "
           "\"Summarise the role of bees in farming\"]\n```",
           8, two, 0, 0);
    /* Objects with a task/prompt field. */
    expect("[{\"id\": 1, \"task\": \"Find sources on bee biology\"}, {\"prompt\": \"Summarise the role of bees "
           "in farming\", \"n\": [1, {\"x\": \"]\"}]}]",
           8, two, 0, 0);
    /* An object holding the array. */
    expect("{\"subtasks\": [\"Find sources on bee biology\", \"Summarise the role of bees in farming\"]}", 8, two,
           0, 0);
}

static void test_truncated(void) {
    const char *ab[] = {"alpha", "beta", NULL};
    expect("[\"alpha\", \"beta\", \"gam", 8, ab, 0, 1);
    expect("[\"alpha\", \"beta\",", 8, ab, 0, 1);
    expect("[\"alpha\", \"beta\"", 8, ab, 0, 1);
    expect("```json\n[\"alpha\", \"beta\", {\"task\": \"gam", 8, ab, 0, 1);
    expect("[\"alpha\", \"beta\", \"ends in an escape \\", 8, ab, 0, 1);
}

static void test_garbage(void) {
    const char *task[] = {"Write a report on bees", NULL};
    expect("", 8, task, 1, 0);
    expect("I cannot split this task.", 8, task, 1, 0);
    expect("[", 8, task, 1, 0);
    expect("[\"", 8, task, 1, 0);
    expect("[1, 2, 3]", 8, task, 1, 0);
    expect("[\"\", \"   \"]", 8, task, 1, 0);
    expect("{\"task\": \"not in a list\"}", 8, task, 1, 0);
    expect("]]]][[[[\"\\", 8, task, 1, 0);
    struct hive_subtasks s;
    char err[HIVE_ERR_LEN];
    CHECK(hive_decompose_parse(NULL, 0, TASK, 8, &s, err) == 0 && s.n == 1 && s.fallback);
    hive_subtasks_free(&s);
    CHECK(hive_decompose_parse("[\"a\"]", 5, NULL, 8, &s, err) == HIVE_ERR_INVAL && s.n == 0);
    /* Not NUL-terminated: only len bytes are read. */
    char raw[8] = {'[', '"', 'a', '"', ']', 'X', 'X', 'X'};
    CHECK(hive_decompose_parse(raw, 5, TASK, 8, &s, err) == 0 && s.n == 1 && !strcmp(s.text[0], "a"));
    hive_subtasks_free(&s);
    CHECK(hive_decompose_parse(raw, 4, TASK, 8, &s, err) == 0 && s.n == 1 && !s.fallback && s.truncated);
    hive_subtasks_free(&s);
    CHECK(hive_decompose_parse(raw, 3, TASK, 8, &s, err) == 0 && s.n == 1 && s.fallback);
    hive_subtasks_free(&s);
    /* Many brackets: bounded work, still the fallback. */
    size_t n = 200000;
    char *br = malloc(n);
    if (br) {
        memset(br, '[', n);
        CHECK(hive_decompose_parse(br, n, TASK, 8, &s, err) == 0 && s.fallback);
        hive_subtasks_free(&s);
        /* ["["["... : the first element is the string "[", then junk ends the walk. */
        for (size_t i = 0; i + 1 < n; i += 2) br[i] = '[', br[i + 1] = '"';
        CHECK(hive_decompose_parse(br, n, TASK, 8, &s, err) == 0 && s.n == 1 && !strcmp(s.text[0], "["));
        hive_subtasks_free(&s);
        free(br);
    }
}

static void test_caps(void) {
    const char *three[] = {"a", "b", "c", NULL};
    expect("[\"a\", \"b\", \"c\", \"d\", \"e\"]", 3, three, 0, 0);
    const char *one[] = {"a", NULL};
    expect("[\"a\", \"b\"]", 0, one, 0, 0); /* max clamped to 1 */
    /* A long element is cut at the cap, on a UTF-8 boundary. */
    size_t n = HIVE_DECOMPOSE_MAX_LEN + 10;
    char *reply = malloc(n + 8);
    if (!reply) return;
    reply[0] = '[', reply[1] = '"';
    size_t k = 2;
    while (k + 2 <= n) reply[k++] = '\xc3', reply[k++] = '\xa9'; /* é */
    reply[k++] = '"', reply[k++] = ']';
    struct hive_subtasks s;
    char err[HIVE_ERR_LEN];
    CHECK(hive_decompose_parse(reply, k, TASK, 8, &s, err) == 0 && s.n == 1);
    if (s.n == 1) {
        size_t len = strlen(s.text[0]);
        CHECK(len <= HIVE_DECOMPOSE_MAX_LEN && len >= HIVE_DECOMPOSE_MAX_LEN - 1 && len % 2 == 0);
    }
    hive_subtasks_free(&s);
    free(reply);
    /* 300 elements: capped at HIVE_DECOMPOSE_MAX_SUBTASKS. */
    char *big = malloc(300 * 16 + 8), *p = big;
    if (!big) return;
    *p++ = '[';
    for (int i = 0; i < 300; i++) p += sprintf(p, "%s\"t%d\"", i ? "," : "", i);
    *p++ = ']';
    CHECK(hive_decompose_parse(big, (size_t)(p - big), TASK, 100000, &s, err) == 0 &&
          s.n == HIVE_DECOMPOSE_MAX_SUBTASKS && !strcmp(s.text[255], "t255"));
    hive_subtasks_free(&s);
    free(big);
}

int main(void) {
    test_prompt();
    test_well_formed();
    test_wrapped();
    test_truncated();
    test_garbage();
    test_caps();
    return check_result("test_decompose");
}
