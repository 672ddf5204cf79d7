/* fuzz_decompose.c - the decomposition reply parser (src/task/decompose.c).
 *   u8 max_subtasks | reply bytes (not NUL-terminated)
 * Whatever the reply, the parse succeeds with 1..max subtasks, each
 * non-empty, at most HIVE_DECOMPOSE_MAX_LEN bytes (the fallback, the task
 * itself, aside) and no two alike. The prompt is built from the same bytes
 * as a task. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "hive/core.h"
#include "hive/decompose.h"
#include "hive/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct fuzz_in in = {data, size, 0};
    int max = fuzz_u8(&in);
    size_t len = fuzz_left(&in), got = 0;
    const char *reply = (const char *)fuzz_bytes(&in, len, &got);
    static const char task[] = "the task";
    struct hive_subtasks s;
    char err[HIVE_ERR_LEN];
    FUZZ_ASSERT(hive_decompose_parse(reply, got, task, max, &s, err) == 0);
    int cap = max < 1 ? 1 : max;
    FUZZ_ASSERT(s.n >= 1 && s.n <= cap);
    if (s.fallback) FUZZ_ASSERT(s.n == 1 && !strcmp(s.text[0], task));
    for (int i = 0; i < s.n; i++) {
        size_t n = strlen(s.text[i]);
        FUZZ_ASSERT(n > 0 && (s.fallback || n <= HIVE_DECOMPOSE_MAX_LEN));
        for (int j = 0; j < i; j++) FUZZ_ASSERT(strcmp(s.text[i], s.text[j]));
    }
    hive_subtasks_free(&s);
    /* The same bytes as a task (up to the first NUL) in a prompt. */
    char *t = malloc(got + 1);
    if (!t) return 0;
    memcpy(t, reply, got);
    t[got] = '\0';
    char buf[512];
    int n = hive_decompose_prompt((int)(max % 7), t, max, buf, sizeof buf);
    FUZZ_ASSERT(n > 0 && strlen(buf) < sizeof buf);
    free(t);
    return 0;
}
