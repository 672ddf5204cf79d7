/* test_cluster_proto.c - the pipeline's wire messages (src/cluster/proto.h):
 * every message survives encode -> decode unchanged, every truncation of a
 * valid message and random bytes are rejected or decoded without reading
 * out of bounds (run under ASan), and trailing bytes are refused. Byte
 * order: a HELLO's exact bytes are pinned (little endian, field by field,
 * whatever the host), and a peer whose HOST says big endian is refused
 * with a message that names the reason; a 32-bit one is accepted. */
#include <string.h>

#include "check.h"
#include "cluster/proto.h"

typedef int (*decode_fn)(const uint8_t *p, size_t len, void *out);

/* All prefixes of a valid message must fail (FWD: its payload may shrink). */
static void check_truncations(const struct hive_wbuf *w, decode_fn dec, void *out, size_t min_ok) {
    for (size_t n = 0; n < w->len; n++) {
        int rc = dec(w->p, n, out);
        if (n < min_ok) CHECKF(rc != 0, "prefix of %zu/%zu bytes accepted", n, w->len);
    }
    uint8_t *longer = malloc(w->len + 1);
    memcpy(longer, w->p, w->len);
    longer[w->len] = 0;
    if (min_ok == w->len) CHECKF(dec(longer, w->len + 1, out) != 0, "trailing byte accepted");
    free(longer);
}

static int dec_hello(const uint8_t *p, size_t n, void *o) { return proto_hello_decode(p, n, o); }
static int dec_caps(const uint8_t *p, size_t n, void *o) { return proto_caps_decode(p, n, o); }
static int dec_query(const uint8_t *p, size_t n, void *o) { return proto_query_decode(p, n, o); }
static int dec_tensor(const uint8_t *p, size_t n, void *o) { return proto_tensor_decode(p, n, o); }
static int dec_setup(const uint8_t *p, size_t n, void *o) { return proto_setup_decode(p, n, o); }
static int dec_fwd(const uint8_t *p, size_t n, void *o) { return proto_fwd_decode(p, n, o); }
static int dec_token(const uint8_t *p, size_t n, void *o) { return proto_tokens_decode(p, n, o); }
static int dec_rerr(const uint8_t *p, size_t n, void *o) { return proto_ring_error_decode(p, n, o); }

/* The wire is explicit about byte order and sizes (proto.h, "Byte order"). */
static void test_byte_order(void) {
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    struct proto_hello h = {.proto = 0x01020304, .role = ROLE_DATA, .session = 0x1122334455667788ull}, h2;
    snprintf(h.name, sizeof h.name, "ab");
    proto_hello_encode(&w, &h);
    struct proto_host self = proto_host_self();
    const uint8_t want[] = {0x04, 0x03, 0x02, 0x01,                         /* u32 proto, LE */
                            ROLE_DATA,                                      /* u8 role */
                            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* u64 session, LE */
                            2, 0, 0, 0, 'a', 'b',                           /* str name */
                            self.little_endian, self.pointer_bits};         /* HOST */
    CHECKF(w.len == sizeof want && !memcmp(w.p, want, sizeof want), "HELLO is %zu bytes, not the pinned layout", w.len);
    /* this host: found at run time, and a peer like it is welcome */
    const uint32_t probe = 1;
    uint8_t low;
    memcpy(&low, &probe, 1);
    CHECK(self.little_endian == (low == 1));
    CHECK(self.pointer_bits == 8 * sizeof(void *));
    char err[HIVE_ERR_LEN] = "";
    CHECK(proto_hello_decode(w.p, w.len, &h2) == 0);
    CHECK(h2.host.little_endian == self.little_endian && h2.host.pointer_bits == self.pointer_bits);
    CHECK(!self.little_endian || proto_host_check(h2.host, "node x", err) == HIVE_OK);
    /* a big-endian peer: its HELLO still decodes (the headers are
     * endian-neutral), and it is refused clearly */
    w.p[w.len - 2] = 0;
    CHECK(proto_hello_decode(w.p, w.len, &h2) == 0 && h2.proto == 0x01020304 && h2.session == h.session);
    CHECK(proto_host_check(h2.host, "node x", err) == HIVE_ERR_UNSUPPORTED);
    CHECKF(strstr(err, "node x is big-endian") != NULL, "message: %s", err);
    /* 32-bit peers are fine: no size on the wire depends on the word size */
    struct proto_host h32 = {.little_endian = 1, .pointer_bits = 32}, h16 = {.little_endian = 1, .pointer_bits = 16};
    CHECK(proto_host_check(h32, "node y", err) == HIVE_OK);
    CHECK(proto_host_check(h16, "node z", err) == HIVE_ERR_PROTO && strstr(err, "16-bit"));
    /* CAPS carries it the other way (node -> head) */
    struct proto_caps c = {.proto = 3}, c2;
    w.len = 0;
    proto_caps_encode(&w, &c);
    w.p[w.len - 2] = 0;
    CHECK(proto_caps_decode(w.p, w.len, &c2) == 0 && proto_host_check(c2.host, "n", err) == HIVE_ERR_UNSUPPORTED);
    hive_wbuf_free(&w);
}

int main(void) {
    struct hive_wbuf w;
    hive_wbuf_init(&w);
    test_byte_order();

    struct proto_hello h = {.proto = 1, .role = ROLE_DATA, .session = 0x1122334455667788ull}, h2;
    snprintf(h.name, sizeof h.name, "node-a");
    proto_hello_encode(&w, &h);
    CHECK(proto_hello_decode(w.p, w.len, &h2) == 0);
    CHECK(h2.session == h.session && h2.role == ROLE_DATA && !strcmp(h2.name, "node-a"));
    check_truncations(&w, dec_hello, &h2, w.len);

    struct proto_caps c = {.proto = 1, .threads = 8, .mem_budget = 1ull << 33, .mem_free = 12345, .speed_bps = 9e9}, c2;
    snprintf(c.name, sizeof c.name, "box");
    snprintf(c.os, sizeof c.os, "Linux");
    snprintf(c.cpu, sizeof c.cpu, "avx2 fma");
    w.len = 0;
    proto_caps_encode(&w, &c);
    CHECK(proto_caps_decode(w.p, w.len, &c2) == 0);
    CHECK(c2.mem_budget == c.mem_budget && c2.speed_bps == c.speed_bps && !strcmp(c2.cpu, "avx2 fma"));
    check_truncations(&w, dec_caps, &c2, w.len);

    struct proto_query q = {.first = 3, .last = 7, .file_size = 99}, q2;
    memset(q.model, 0xab, sizeof q.model);
    snprintf(q.file_name, sizeof q.file_name, "m.gguf");
    w.len = 0;
    proto_query_encode(&w, &q);
    CHECK(proto_query_decode(w.p, w.len, &q2) == 0);
    CHECK(q2.first == 3 && q2.last == 7 && !memcmp(q2.model, q.model, sizeof q.model));
    check_truncations(&w, dec_query, &q2, w.len);
    q.first = 7; /* empty range */
    w.len = 0;
    proto_query_encode(&w, &q);
    CHECK(proto_query_decode(w.p, w.len, &q2) != 0);

    struct proto_tensor t = {.type = 2, .n_dims = 2, .ne = {64, 32, 1, 1}, .n_bytes = 1152}, t2;
    snprintf(t.name, sizeof t.name, "blk.0.attn_q.weight");
    w.len = 0;
    proto_tensor_encode(&w, &t);
    CHECK(proto_tensor_decode(w.p, w.len, &t2) == 0);
    CHECK(t2.ne[0] == 64 && t2.ne[1] == 32 && t2.n_bytes == 1152 && !strcmp(t2.name, t.name));
    check_truncations(&w, dec_tensor, &t2, w.len);
    t.n_dims = 5;
    w.len = 0;
    proto_tensor_encode(&w, &t);
    CHECK(proto_tensor_decode(w.p, w.len, &t2) != 0);

    struct proto_setup s = {.session = 5, .first = 0, .last = 3, .n_ctx = 512, .n_threads = 2, .max_seqs = 4, .wire = KIND_F16,
                            .stage = 0, .n_stages = 2},
                       s2;
    snprintf(s.next, sizeof s.next, "127.0.0.1:9999");
    w.len = 0;
    proto_setup_encode(&w, &s);
    CHECK(proto_setup_decode(w.p, w.len, &s2) == 0);
    CHECK(s2.wire == KIND_F16 && s2.n_ctx == 512 && !strcmp(s2.next, s.next));
    check_truncations(&w, dec_setup, &s2, w.len);
    s.stage = 2; /* stage index beyond n_stages */
    w.len = 0;
    proto_setup_encode(&w, &s);
    CHECK(proto_setup_decode(w.p, w.len, &s2) != 0);

    static struct proto_fwd f, f2;
    uint8_t sampler[HIVE_SAMPLER_WIRE_BYTES];
    memset(sampler, 7, sizeof sampler);
    f.session = 9;
    f.step = 4;
    f.kind = KIND_F32;
    f.n_tim = 2;
    f.tim[1] = (struct proto_timing){.stage = 1, .t_recv_us = 100, .t_send_us = 200, .compute_us = 50, .live_seqs = 3};
    f.n_free = 2;
    f.free_ids[0] = 11;
    f.free_ids[1] = 12;
    f.n_seq = 2;
    f.seq[0] = (struct proto_seq){.id = 5, .pos = 10, .n_tok = 1, .flags = SEQ_SAMPLE, .sampler = sampler};
    f.seq[1] = (struct proto_seq){.id = 6, .pos = 0, .n_tok = 1, .flags = 0};
    w.len = 0;
    proto_fwd_encode_head(&w, &f);
    size_t head_len = w.len;
    float payload[2] = {1.5f, -2.0f};
    hive_wbuf_bytes(&w, payload, sizeof payload);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) == 0);
    CHECK(f2.n_tim == 2 && f2.tim[1].compute_us == 50 && f2.tim[1].live_seqs == 3);
    CHECK(f2.n_free == 2 && f2.free_ids[1] == 12 && f2.n_seq == 2 && f2.n_tok_total == 2);
    CHECK(f2.seq[0].id == 5 && f2.seq[0].pos == 10 && f2.seq[0].flags == (SEQ_SAMPLE | SEQ_SAMPLER));
    CHECK(f2.seq[0].sampler && !memcmp(f2.seq[0].sampler, sampler, sizeof sampler) && !f2.seq[1].sampler);
    CHECK(f2.payload_len == sizeof payload && !memcmp(f2.payload, payload, sizeof payload));
    check_truncations(&w, dec_fwd, &f2, head_len);
    w.p[head_len - 1] = 0x81; /* the last entry's flags byte: unknown bits */
    CHECK(proto_fwd_decode(w.p, w.len, &f2) != 0);
    f.seq[1].id = 5; /* one sequence twice in one batch */
    w.len = 0;
    proto_fwd_encode_head(&w, &f);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) != 0);
    f.seq[1].id = 6;
    /* A verified entry: its draft tokens travel in the header. */
    uint8_t draft[3 * 4];
    for (int j = 0; j < 3; j++) proto_put_i32(draft + 4 * j, 1000 + j * 77 - (j == 2 ? 5000 : 0));
    f.seq[1] = (struct proto_seq){.id = 6, .pos = 3, .n_tok = 4, .flags = SEQ_SAMPLE | SEQ_VERIFY, .draft = draft};
    w.len = 0;
    proto_fwd_encode_head(&w, &f);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) == 0 && f2.n_tok_total == 5 && f2.seq[1].draft);
    CHECK(proto_seq_draft(&f2.seq[1], 0) == 1000 && proto_seq_draft(&f2.seq[1], 1) == 1077 &&
          proto_seq_draft(&f2.seq[1], 2) == 1154 - 5000);
    size_t verify_head = w.len;
    hive_wbuf_u8(&w, 0); /* a payload byte: the header alone must not shrink */
    check_truncations(&w, dec_fwd, &f2, verify_head);
    f.seq[1].flags = SEQ_VERIFY; /* a draft to verify, but nothing sampled */
    w.len = 0;
    proto_fwd_encode_head(&w, &f);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) != 0);
    uint8_t long_draft[(PROTO_MAX_DRAFT + 1) * 4] = {0};
    f.seq[1] = (struct proto_seq){.id = 6, .pos = 3, .n_tok = PROTO_MAX_DRAFT + 2, .flags = SEQ_SAMPLE | SEQ_VERIFY,
                                  .draft = long_draft}; /* a draft longer than allowed */
    w.len = 0;
    proto_fwd_encode_head(&w, &f);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) != 0);
    f.seq[1] = (struct proto_seq){.id = 6, .pos = 0, .n_tok = 1, .flags = 0};
    f.n_seq = PROTO_MAX_SEQS + 1; /* more entries than a stage holds */
    w.len = 0;
    hive_wbuf_u64(&w, 9);
    hive_wbuf_u32(&w, 4);
    hive_wbuf_u8(&w, KIND_F32);
    hive_wbuf_u8(&w, 0);
    hive_wbuf_u32(&w, 0);
    hive_wbuf_u32(&w, PROTO_MAX_SEQS + 1);
    CHECK(proto_fwd_decode(w.p, w.len, &f2) != 0);

    static struct proto_tokens k, k2;
    k.session = 9;
    k.step = 3;
    k.n_tim = 1;
    k.tim[0].t_send_us = 42;
    k.n = 2;
    k.out[0] = (struct proto_sampled){.id = 5, .token = 77, .rng = 0xfeedull};
    k.out[1] = (struct proto_sampled){.id = 6, .token = 78, .rng = 1};
    w.len = 0;
    proto_tokens_encode(&w, &k);
    CHECK(proto_tokens_decode(w.p, w.len, &k2) == 0);
    CHECK(k2.n == 2 && k2.out[0].token == 77 && k2.out[0].rng == 0xfeedull && k2.out[1].id == 6);
    CHECK(k2.tim[0].t_send_us == 42);
    check_truncations(&w, dec_token, &k2, w.len);
    w.len = 0; /* too many timings claimed */
    hive_wbuf_u64(&w, 1);
    hive_wbuf_u32(&w, 0);
    hive_wbuf_u8(&w, 200);
    CHECK(proto_tokens_decode(w.p, w.len, &k2) != 0);

    struct proto_ring_error e = {.session = 1, .step = 2, .stage = 3}, e2;
    snprintf(e.msg, sizeof e.msg, "boom");
    w.len = 0;
    proto_ring_error_encode(&w, &e);
    CHECK(proto_ring_error_decode(w.p, w.len, &e2) == 0 && !strcmp(e2.msg, "boom"));
    check_truncations(&w, dec_rerr, &e2, w.len);

    /* Random bytes into every decoder: never crash (ASan watches). */
    decode_fn decs[] = {dec_hello, dec_caps, dec_query, dec_tensor, dec_setup, dec_fwd, dec_token, dec_rerr};
    static union {
        struct proto_hello h;
        struct proto_caps c;
        struct proto_query q;
        struct proto_tensor t;
        struct proto_setup s;
        struct proto_fwd f;
        struct proto_tokens k;
        struct proto_ring_error e;
    } out;
    uint8_t buf[512];
    uint32_t r = 1;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(r % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            buf[i] = (uint8_t)(r >> 24);
            if (i < 8 && (r & 0x300) == 0) buf[i] = 0; /* small counts and lengths now and then */
        }
        uint8_t *exact = malloc(n ? n : 1); /* exact size so ASan sees any overrun */
        memcpy(exact, buf, n);
        accepted += decs[it % 8](exact, n, &out) == 0;
        free(exact);
        r = r * 1664525u + 1013904223u;
    }
    printf("random messages accepted: %d of 20000\n", accepted);
    hive_wbuf_free(&w);
    return check_result("test_cluster_proto");
}
