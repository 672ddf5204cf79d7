/* proto.c - encoders and decoders of the pipeline messages (see proto.h).
 * Decoders read through a bounds-checked hive_rbuf and reject anything
 * short, oversized or with trailing bytes. */
#include "proto.h"

#include <string.h>

/* A decoder is done when it read everything and nothing overran. */
static int finish(const struct hive_rbuf *r) { return r->bad || hive_rbuf_left(r) != 0 ? -1 : 0; }

static void get_hash(struct hive_rbuf *r, uint8_t out[HIVE_HASH_BYTES]) {
    const void *p = hive_rbuf_bytes(r, HIVE_HASH_BYTES);
    if (p) memcpy(out, p, HIVE_HASH_BYTES);
    else memset(out, 0, HIVE_HASH_BYTES);
}

/* ---- host ---- */

struct proto_host proto_host_self(void) {
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1); /* the low byte first in memory: little endian */
    return (struct proto_host){.little_endian = first == 1, .pointer_bits = (uint8_t)(8 * sizeof(void *))};
}

int proto_host_check(struct proto_host h, const char *peer, char *err) {
    if (!h.little_endian)
        return hive_errf(err, HIVE_ERR_UNSUPPORTED,
                         "%s is big-endian: hive moves tokens, activations and weights as little-endian arrays, "
                         "so big-endian machines cannot join", peer);
    if (h.pointer_bits != 32 && h.pointer_bits != 64)
        return hive_errf(err, HIVE_ERR_PROTO, "%s says it has %u-bit pointers", peer, h.pointer_bits);
    return HIVE_OK;
}

static void put_host(struct hive_wbuf *w) {
    struct proto_host h = proto_host_self();
    hive_wbuf_u8(w, h.little_endian);
    hive_wbuf_u8(w, h.pointer_bits);
}

static struct proto_host get_host(struct hive_rbuf *r) {
    struct proto_host h;
    h.little_endian = hive_rbuf_u8(r);
    h.pointer_bits = hive_rbuf_u8(r);
    return h;
}

/* ---- hello ---- */

void proto_hello_encode(struct hive_wbuf *w, const struct proto_hello *m) {
    hive_wbuf_u32(w, m->proto);
    hive_wbuf_u8(w, m->role);
    hive_wbuf_u64(w, m->session);
    hive_wbuf_str(w, m->name);
    put_host(w);
}

int proto_hello_decode(const uint8_t *p, size_t len, struct proto_hello *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->proto = hive_rbuf_u32(&r);
    m->role = hive_rbuf_u8(&r);
    m->session = hive_rbuf_u64(&r);
    hive_rbuf_str(&r, m->name, sizeof m->name);
    m->host = get_host(&r);
    if (m->role != ROLE_CONTROL && m->role != ROLE_DATA) return -1;
    return finish(&r);
}

/* ---- capabilities ---- */

void proto_caps_encode(struct hive_wbuf *w, const struct proto_caps *m) {
    hive_wbuf_u32(w, m->proto);
    hive_wbuf_str(w, m->name);
    hive_wbuf_str(w, m->os);
    hive_wbuf_str(w, m->cpu);
    hive_wbuf_u32(w, m->threads);
    hive_wbuf_u64(w, m->mem_budget);
    hive_wbuf_u64(w, m->mem_free);
    hive_wbuf_u64(w, m->speed_bps);
    hive_wbuf_u32(w, m->n_held);
    for (uint32_t i = 0; i < m->n_held && i < PROTO_MAX_HELD; i++) {
        hive_wbuf_u32(w, m->held[i].first);
        hive_wbuf_u32(w, m->held[i].last);
        hive_wbuf_u32(w, m->held[i].live_seqs);
    }
    put_host(w);
}

int proto_caps_decode(const uint8_t *p, size_t len, struct proto_caps *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->proto = hive_rbuf_u32(&r);
    hive_rbuf_str(&r, m->name, sizeof m->name);
    hive_rbuf_str(&r, m->os, sizeof m->os);
    hive_rbuf_str(&r, m->cpu, sizeof m->cpu);
    m->threads = hive_rbuf_u32(&r);
    m->mem_budget = hive_rbuf_u64(&r);
    m->mem_free = hive_rbuf_u64(&r);
    m->speed_bps = hive_rbuf_u64(&r);
    m->n_held = hive_rbuf_u32(&r);
    if (m->n_held > PROTO_MAX_HELD) return -1;
    for (uint32_t i = 0; i < m->n_held; i++) {
        m->held[i].first = hive_rbuf_u32(&r);
        m->held[i].last = hive_rbuf_u32(&r);
        m->held[i].live_seqs = hive_rbuf_u32(&r);
    }
    m->host = get_host(&r);
    return finish(&r);
}

/* ---- query ---- */

void proto_query_encode(struct hive_wbuf *w, const struct proto_query *m) {
    hive_wbuf_bytes(w, m->model, HIVE_HASH_BYTES);
    hive_wbuf_u32(w, m->first);
    hive_wbuf_u32(w, m->last);
    hive_wbuf_str(w, m->file_name);
    hive_wbuf_u64(w, m->file_size);
}

int proto_query_decode(const uint8_t *p, size_t len, struct proto_query *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    get_hash(&r, m->model);
    m->first = hive_rbuf_u32(&r);
    m->last = hive_rbuf_u32(&r);
    hive_rbuf_str(&r, m->file_name, sizeof m->file_name);
    m->file_size = hive_rbuf_u64(&r);
    if (m->first >= m->last || m->last > 100000) return -1;
    return finish(&r);
}

/* ---- tensor header ---- */

void proto_tensor_encode(struct hive_wbuf *w, const struct proto_tensor *m) {
    hive_wbuf_str(w, m->name);
    hive_wbuf_u32(w, m->type);
    hive_wbuf_u32(w, m->n_dims);
    for (int i = 0; i < 4; i++) hive_wbuf_u64(w, m->ne[i]);
    hive_wbuf_u64(w, m->n_bytes);
}

int proto_tensor_decode(const uint8_t *p, size_t len, struct proto_tensor *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    hive_rbuf_str(&r, m->name, sizeof m->name);
    m->type = hive_rbuf_u32(&r);
    m->n_dims = hive_rbuf_u32(&r);
    for (int i = 0; i < 4; i++) m->ne[i] = hive_rbuf_u64(&r);
    m->n_bytes = hive_rbuf_u64(&r);
    if (m->n_dims < 1 || m->n_dims > 4 || !m->name[0]) return -1;
    for (int i = 0; i < 4; i++)
        if (m->ne[i] < 1 || m->ne[i] > ((uint64_t)1 << 40)) return -1;
    return finish(&r);
}

/* ---- setup ---- */

void proto_setup_encode(struct hive_wbuf *w, const struct proto_setup *m) {
    hive_wbuf_u64(w, m->session);
    hive_wbuf_bytes(w, m->model, HIVE_HASH_BYTES);
    hive_wbuf_u32(w, m->first);
    hive_wbuf_u32(w, m->last);
    hive_wbuf_u32(w, m->n_ctx);
    hive_wbuf_u32(w, m->n_threads);
    hive_wbuf_u8(w, m->wire);
    hive_wbuf_u8(w, m->stage);
    hive_wbuf_u8(w, m->n_stages);
    hive_wbuf_u32(w, m->max_seqs);
    hive_wbuf_str(w, m->next);
}

int proto_setup_decode(const uint8_t *p, size_t len, struct proto_setup *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->session = hive_rbuf_u64(&r);
    get_hash(&r, m->model);
    m->first = hive_rbuf_u32(&r);
    m->last = hive_rbuf_u32(&r);
    m->n_ctx = hive_rbuf_u32(&r);
    m->n_threads = hive_rbuf_u32(&r);
    m->wire = hive_rbuf_u8(&r);
    m->stage = hive_rbuf_u8(&r);
    m->n_stages = hive_rbuf_u8(&r);
    m->max_seqs = hive_rbuf_u32(&r);
    hive_rbuf_str(&r, m->next, sizeof m->next);
    if (m->max_seqs < 1 || m->max_seqs > PROTO_MAX_SEQS) return -1;
    if (m->first >= m->last || m->last > 100000) return -1;
    if (m->n_ctx < 1 || m->n_ctx > (1u << 24) || m->n_threads > 1024) return -1;
    if (m->wire != KIND_F32 && m->wire != KIND_F16) return -1;
    if (m->n_stages < 1 || m->n_stages > PROTO_MAX_STAGES || m->stage >= m->n_stages) return -1;
    return finish(&r);
}

/* ---- ring messages ---- */

static void put_timings(struct hive_wbuf *w, uint8_t n, const struct proto_timing *t) {
    hive_wbuf_u8(w, n);
    for (int i = 0; i < n; i++) {
        hive_wbuf_u8(w, t[i].stage);
        hive_wbuf_u64(w, t[i].t_recv_us);
        hive_wbuf_u64(w, t[i].t_send_us);
        hive_wbuf_u32(w, t[i].compute_us);
        hive_wbuf_u32(w, t[i].live_seqs);
    }
}

static void get_timings(struct hive_rbuf *r, uint8_t *n, struct proto_timing *t) {
    *n = hive_rbuf_u8(r);
    if (*n > PROTO_MAX_STAGES) {
        r->bad = 1;
        *n = 0;
        return;
    }
    for (int i = 0; i < *n; i++) {
        t[i].stage = hive_rbuf_u8(r);
        t[i].t_recv_us = hive_rbuf_u64(r);
        t[i].t_send_us = hive_rbuf_u64(r);
        t[i].compute_us = hive_rbuf_u32(r);
        t[i].live_seqs = hive_rbuf_u32(r);
    }
}

size_t proto_kind_elem_bytes(uint8_t kind) {
    switch (kind) {
    case KIND_TOKENS: return 4;
    case KIND_F32: return 4;
    case KIND_F16: return 2;
    default: return 0;
    }
}

void proto_fwd_encode_head(struct hive_wbuf *w, const struct proto_fwd *m) {
    hive_wbuf_u64(w, m->session);
    hive_wbuf_u32(w, m->step);
    hive_wbuf_u8(w, m->kind);
    put_timings(w, m->n_tim, m->tim);
    hive_wbuf_u32(w, m->n_free);
    for (uint32_t i = 0; i < m->n_free; i++) hive_wbuf_u64(w, m->free_ids[i]);
    hive_wbuf_u32(w, m->n_seq);
    for (uint32_t i = 0; i < m->n_seq; i++) {
        const struct proto_seq *q = &m->seq[i];
        hive_wbuf_u64(w, q->id);
        hive_wbuf_u32(w, q->pos);
        hive_wbuf_u32(w, q->n_tok);
        hive_wbuf_u8(w, (uint8_t)(q->sampler ? q->flags | SEQ_SAMPLER : q->flags & ~SEQ_SAMPLER));
        if (q->sampler) hive_wbuf_bytes(w, q->sampler, HIVE_SAMPLER_WIRE_BYTES);
        if (q->flags & SEQ_VERIFY) hive_wbuf_bytes(w, q->draft, (size_t)(q->n_tok - 1) * 4);
    }
}

int32_t proto_seq_draft(const struct proto_seq *q, uint32_t j) {
    const uint8_t *b = q->draft + 4 * (size_t)j;
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
}

void proto_put_i32(uint8_t *p, int32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)((uint32_t)v >> (8 * i));
}

int proto_fwd_decode(const uint8_t *p, size_t len, struct proto_fwd *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->session = hive_rbuf_u64(&r);
    m->step = hive_rbuf_u32(&r);
    m->kind = hive_rbuf_u8(&r);
    get_timings(&r, &m->n_tim, m->tim);
    m->n_free = hive_rbuf_u32(&r);
    if (m->n_free > PROTO_MAX_SEQS) return -1;
    for (uint32_t i = 0; i < m->n_free; i++) m->free_ids[i] = hive_rbuf_u64(&r);
    m->n_seq = hive_rbuf_u32(&r);
    if (m->n_seq > PROTO_MAX_SEQS) return -1;
    uint64_t total = 0;
    for (uint32_t i = 0; i < m->n_seq && !r.bad; i++) {
        struct proto_seq *q = &m->seq[i];
        q->id = hive_rbuf_u64(&r);
        q->pos = hive_rbuf_u32(&r);
        q->n_tok = hive_rbuf_u32(&r);
        q->flags = hive_rbuf_u8(&r);
        q->sampler = q->flags & SEQ_SAMPLER ? hive_rbuf_bytes(&r, HIVE_SAMPLER_WIRE_BYTES) : NULL;
        if (q->n_tok < 1 || q->n_tok > (1u << 24) || q->pos > (1u << 24)) return -1;
        if (q->flags & ~(SEQ_SAMPLER | SEQ_SAMPLE | SEQ_VERIFY)) return -1;
        q->draft = NULL;
        if (q->flags & SEQ_VERIFY) { /* a draft to verify: sampled after every token, so SEQ_SAMPLE too */
            if (!(q->flags & SEQ_SAMPLE) || q->n_tok < 2 || q->n_tok > PROTO_MAX_DRAFT + 1) return -1;
            q->draft = hive_rbuf_bytes(&r, (size_t)(q->n_tok - 1) * 4);
        }
        for (uint32_t j = 0; j < i; j++)
            if (m->seq[j].id == q->id) return -1; /* one entry per sequence */
        total += q->n_tok;
    }
    if (r.bad || proto_kind_elem_bytes(m->kind) == 0 || total > (1u << 24)) return -1;
    m->n_tok_total = (uint32_t)total;
    m->payload = r.p + r.off;
    m->payload_len = hive_rbuf_left(&r);
    return 0;
}

void proto_tokens_encode(struct hive_wbuf *w, const struct proto_tokens *m) {
    hive_wbuf_u64(w, m->session);
    hive_wbuf_u32(w, m->step);
    put_timings(w, m->n_tim, m->tim);
    hive_wbuf_u32(w, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        hive_wbuf_u64(w, m->out[i].id);
        hive_wbuf_u32(w, (uint32_t)m->out[i].token);
        hive_wbuf_u64(w, m->out[i].rng);
    }
}

int proto_tokens_decode(const uint8_t *p, size_t len, struct proto_tokens *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->session = hive_rbuf_u64(&r);
    m->step = hive_rbuf_u32(&r);
    get_timings(&r, &m->n_tim, m->tim);
    m->n = hive_rbuf_u32(&r);
    if (m->n > PROTO_MAX_OUT) return -1;
    for (uint32_t i = 0; i < m->n; i++) {
        m->out[i].id = hive_rbuf_u64(&r);
        m->out[i].token = (int32_t)hive_rbuf_u32(&r);
        m->out[i].rng = hive_rbuf_u64(&r);
    }
    return finish(&r);
}

void proto_ring_error_encode(struct hive_wbuf *w, const struct proto_ring_error *m) {
    hive_wbuf_u64(w, m->session);
    hive_wbuf_u32(w, m->step);
    hive_wbuf_u8(w, m->stage);
    hive_wbuf_str(w, m->msg);
}

int proto_ring_error_decode(const uint8_t *p, size_t len, struct proto_ring_error *m) {
    struct hive_rbuf r;
    hive_rbuf_init(&r, p, len);
    m->session = hive_rbuf_u64(&r);
    m->step = hive_rbuf_u32(&r);
    m->stage = hive_rbuf_u8(&r);
    hive_rbuf_str(&r, m->msg, sizeof m->msg);
    return finish(&r);
}

/* ---- replies ---- */

int proto_recv_reply(hive_link *l, uint8_t *type, const uint8_t **p, size_t *len, int timeout_ms, char *err) {
    uint64_t deadline = hive_now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
    for (;;) {
        uint64_t now = hive_now_us();
        int left = timeout_ms < 0 ? -1 : now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
        int rc = hive_link_recv(l, type, p, len, left, err);
        if (rc) return rc;
        if (*type != MSG_TOKENS && *type != MSG_RING_ERROR && *type != MSG_PONG) return HIVE_OK;
    }
}

/* ---- sending helpers ---- */

int proto_send(hive_link *l, uint8_t type, const struct hive_wbuf *w, char *err) {
    if (w->bad) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory building a message");
    return hive_link_send(l, type, w->p, w->len, NULL, 0, err);
}

int proto_send_error(hive_link *l, const char *msg, char *err) {
    char m[PROTO_MSG_CAP];
    snprintf(m, sizeof m, "%s", msg);
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    hive_wbuf_str(&w, m);
    int rc = proto_send(l, MSG_ERROR, &w, err);
    hive_wbuf_free(&w);
    return rc;
}

int proto_send_u64(hive_link *l, uint8_t type, uint64_t v, char *err) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    return hive_link_send(l, type, b, sizeof b, NULL, 0, err);
}
