/* fuzz_http.c - the request bodies of `hive serve`: srv_request_parse
 * (src/server/request.c) on the input as a /v1/chat/completions body and as
 * a /v1/completions body, the way http.c calls it. An accepted chat request
 * is rendered through every chat template; an accepted request's stop
 * strings are run over its own text cut into pieces (stop.c), and its error
 * path is rendered as an OpenAI error body. Seeds: sample JSON bodies. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "hive/tokenizer.h"
#include "server/srv.h"

static void exercise(const struct srv_request *r, const uint8_t *data, size_t size) {
    static char buf[1 << 16];
    if (r->kind == SRV_CHAT) {
        FUZZ_ASSERT(r->n_msgs >= 0 && (r->n_msgs == 0 || r->msgs));
        struct hive_chat_msg m[16];
        int n = r->n_msgs < 16 ? r->n_msgs : 16;
        for (int i = 0; i < n; i++) {
            FUZZ_ASSERT(r->msgs[i].role && r->msgs[i].content);
            m[i].role = r->msgs[i].role;
            m[i].content = r->msgs[i].content;
        }
        for (int t = HIVE_CHAT_NONE; t <= HIVE_CHAT_PHI3; t++) {
            int len = hive_chat_format(t, m, n, 1, buf, sizeof buf);
            FUZZ_ASSERT(len >= 0);
        }
    }
    FUZZ_ASSERT(r->n_stop >= 0 && r->n_stop <= SRV_MAX_STOP);
    struct srv_stop st;
    if (srv_stop_init(&st, (const char *const *)r->stop, r->n_stop)) return;
    struct srv_buf out = {0};
    size_t step = size % 7 + 1;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (srv_stop_feed(&st, (const char *)data + off, n, &out) != 0) break;
    }
    srv_stop_flush(&st, &out);
    FUZZ_ASSERT(out.n <= size + 3 * size); /* U+FFFD replacements at most triple the bytes */
    srv_buf_free(&out);
    srv_stop_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        hive_log_set_level(HIVE_LOG_ERROR);
        init = 1;
    }
    for (int kind = SRV_CHAT; kind <= SRV_COMPLETION; kind++) {
        struct srv_request r;
        struct srv_error e;
        memset(&r, 0, sizeof r);
        memset(&e, 0, sizeof e);
        int status = srv_request_parse((const char *)data, size, kind, &r, &e);
        if (status == 0) {
            exercise(&r, data, size);
            srv_request_free(&r);
        } else {
            FUZZ_ASSERT(status >= 400 && status < 600 && e.status == status);
            char *body = srv_json_error(&e);
            FUZZ_ASSERT(body != NULL);
            free(body);
        }
    }
    return 0;
}
