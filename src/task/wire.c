/* wire.c - encoding and decoding of the queen <-> worker messages (wire.h). */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "hive/core.h"

void wire_put_task(struct hive_wbuf *w, const struct wire_task *t) {
    hive_wbuf_u64(w, t->lease);
    hive_wbuf_u32(w, t->max_tokens);
    hive_wbuf_u8(w, (uint8_t)(t->templated != 0));
    hive_wbuf_f32(w, t->sp.temperature);
    hive_wbuf_u32(w, (uint32_t)t->sp.top_k);
    hive_wbuf_f32(w, t->sp.top_p);
    hive_wbuf_f32(w, t->sp.min_p);
    hive_wbuf_f32(w, t->sp.repeat_penalty);
    hive_wbuf_u64(w, t->sp.seed);
    hive_wbuf_str(w, t->prompt ? t->prompt : "");
}

void wire_put_result(struct hive_wbuf *w, const struct wire_result *r) {
    hive_wbuf_u64(w, r->lease);
    hive_wbuf_u8(w, (uint8_t)(r->ok != 0));
    hive_wbuf_u32(w, r->n_prompt);
    hive_wbuf_u32(w, r->n_gen);
    hive_wbuf_u64(w, r->layer_passes);
    hive_wbuf_str(w, r->text ? r->text : "");
}

char *wire_get_text(struct hive_rbuf *r) {
    uint32_t n = hive_rbuf_u32(r);
    if (r->bad || n > WIRE_TEXT_CAP || n > hive_rbuf_left(r)) {
        r->bad = 1;
        return NULL;
    }
    const char *p = hive_rbuf_bytes(r, n);
    char *s = p ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int wire_get_task(const uint8_t *p, size_t len, struct wire_task *t, char *err) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    memset(t, 0, sizeof *t);
    t->sp = hive_sampler_default_params();
    t->lease = hive_rbuf_u64(&r);
    t->max_tokens = hive_rbuf_u32(&r);
    t->templated = hive_rbuf_u8(&r) != 0;
    t->sp.temperature = hive_rbuf_f32(&r);
    t->sp.top_k = (int32_t)hive_rbuf_u32(&r);
    t->sp.top_p = hive_rbuf_f32(&r);
    t->sp.min_p = hive_rbuf_f32(&r);
    t->sp.repeat_penalty = hive_rbuf_f32(&r);
    t->sp.seed = hive_rbuf_u64(&r);
    t->prompt = wire_get_text(&r);
    if (r.bad || !t->prompt) {
        free(t->prompt);
        t->prompt = NULL;
        return hive_errf(err, r.bad ? HIVE_ERR_PROTO : HIVE_ERR_NOMEM, "bad task message");
    }
    if (hive_sampler_params_check(&t->sp, err)) {
        free(t->prompt);
        t->prompt = NULL;
        return HIVE_ERR_PROTO;
    }
    return 0;
}

int wire_get_result(const uint8_t *p, size_t len, struct wire_result *res, char *err) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    memset(res, 0, sizeof *res);
    res->lease = hive_rbuf_u64(&r);
    res->ok = hive_rbuf_u8(&r) != 0;
    res->n_prompt = hive_rbuf_u32(&r);
    res->n_gen = hive_rbuf_u32(&r);
    res->layer_passes = hive_rbuf_u64(&r);
    res->text = wire_get_text(&r);
    if (r.bad || !res->text) {
        free(res->text);
        res->text = NULL;
        return hive_errf(err, r.bad ? HIVE_ERR_PROTO : HIVE_ERR_NOMEM, "bad result message");
    }
    return 0;
}
