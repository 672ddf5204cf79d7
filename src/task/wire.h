/* wire.h - the queen <-> worker messages, on a hive_link (cluster key).
 * Types start at 64 so they never clash with src/cluster/proto.h (1..63).
 * Integers little-endian; str = u32 length | bytes (no NUL).
 *
 *   W_HELLO   worker -> queen   u32 version | str name | u8 engine (0 hive, 1 backend)
 *   W_TASK    queen -> worker   u64 lease | u32 max_tokens | u8 templated |
 *                               f32 temp | u32 top_k | f32 top_p | f32 min_p |
 *                               f32 repeat_penalty | u64 seed | str prompt
 *   W_RESULT  worker -> queen   u64 lease | u8 ok | u32 n_prompt | u32 n_gen |
 *                               u64 layer_passes | str text (ok) or error (not ok)
 *   W_PING    both ways         (empty) heartbeat, every heartbeat_ms
 *   W_BYE     worker -> queen   (empty) leaving: its lease goes back at once
 *
 * The worker runs one task at a time; a heartbeat thread keeps W_PING going
 * while it computes, so silence means the worker (or the path to it) died. */
#ifndef HIVE_TASK_WIRE_H
#define HIVE_TASK_WIRE_H

#include <stdint.h>

#include "hive/net.h"
#include "hive/sample.h"

#define WIRE_VERSION 1
#define WIRE_NAME_CAP 64
/* A prompt or an answer: a merge prompt holds every answer of a job, so
 * this is generous, but bounded before allocation. */
#define WIRE_TEXT_CAP (4u << 20)

enum wire_type { W_HELLO = 64, W_TASK, W_RESULT, W_PING, W_BYE };

struct wire_task {
    uint64_t lease;
    uint32_t max_tokens;
    int templated;
    struct hive_sampler_params sp;
    char *prompt; /* decode: malloc'd */
};

struct wire_result {
    uint64_t lease;
    int ok;
    uint32_t n_prompt, n_gen;
    uint64_t layer_passes;
    char *text; /* decode: malloc'd */
};

void wire_put_task(struct hive_wbuf *w, const struct wire_task *t);
void wire_put_result(struct hive_wbuf *w, const struct wire_result *r);
/* 0, or HIVE_ERR_PROTO (truncated, too long) / HIVE_ERR_NOMEM. */
int wire_get_task(const uint8_t *p, size_t len, struct wire_task *t, char *err);
int wire_get_result(const uint8_t *p, size_t len, struct wire_result *r, char *err);
/* A str of at most WIRE_TEXT_CAP bytes into a malloc'd NUL-terminated copy. */
char *wire_get_text(struct hive_rbuf *r);

#endif
