/* fuzz_jobwire.c - the queen <-> worker messages (src/task/wire.c).
 *   u8 kind (even: W_TASK, odd: W_RESULT) | payload bytes
 * A payload decodes or is refused with an error, never read past its end;
 * one that decodes encodes back to a message that decodes to the same
 * fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hive/core.h"
#include "task/wire.h"

static void task_case(const uint8_t *p, size_t n) {
    struct wire_task t, u;
    char err[HIVE_ERR_LEN];
    if (wire_get_task(p, n, &t, err)) return;
    FUZZ_ASSERT(t.prompt && strlen(t.prompt) <= WIRE_TEXT_CAP);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    wire_put_task(&w, &t);
    FUZZ_ASSERT(!w.bad && wire_get_task(w.p, w.len, &u, err) == 0);
    FUZZ_ASSERT(u.lease == t.lease && u.max_tokens == t.max_tokens && u.templated == t.templated);
    FUZZ_ASSERT(u.sp.seed == t.sp.seed && u.sp.top_k == t.sp.top_k && !strcmp(u.prompt, t.prompt));
    hive_wbuf_free(&w);
    free(t.prompt);
    free(u.prompt);
}

static void result_case(const uint8_t *p, size_t n) {
    struct wire_result r, s;
    char err[HIVE_ERR_LEN];
    if (wire_get_result(p, n, &r, err)) return;
    FUZZ_ASSERT(r.text && strlen(r.text) <= WIRE_TEXT_CAP);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    wire_put_result(&w, &r);
    FUZZ_ASSERT(!w.bad && wire_get_result(w.p, w.len, &s, err) == 0);
    FUZZ_ASSERT(s.lease == r.lease && s.ok == (r.ok != 0) && s.n_prompt == r.n_prompt && s.n_gen == r.n_gen);
    FUZZ_ASSERT(s.layer_passes == r.layer_passes && !strcmp(s.text, r.text));
    hive_wbuf_free(&w);
    free(r.text);
    free(s.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct fuzz_in in = {data, size, 0};
    int kind = fuzz_u8(&in);
    size_t got = 0;
    const uint8_t *p = fuzz_bytes(&in, fuzz_left(&in), &got);
    if (kind & 1) result_case(p, got);
    else task_case(p, got);
    return 0;
}
