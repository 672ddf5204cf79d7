/* fuzz_proto.h - one wire message through its decoder, as a node or head
 * would on receiving it (src/cluster/proto.h). What a decoder accepts is
 * encoded again and must decode again (the encoders and decoders agree on
 * every limit); FWD's payload must lie inside the frame. Shared by
 * fuzz_proto.c (raw messages) and fuzz_link.c (messages that arrived
 * through an authenticated link). */
#ifndef HIVE_FUZZ_PROTO_H
#define HIVE_FUZZ_PROTO_H

#include <stdio.h>
#include <stdlib.h>

#include "cluster/proto.h"
#include "fuzz.h"
#include "hive/net.h"

#define FUZZ_REDECODE(T, msg)                                                     \
    do {                                                                          \
        static struct T again;                                                    \
        struct hive_wbuf w;                                                       \
        hive_wbuf_init(&w);                                                       \
        T##_encode(&w, msg);                                                      \
        FUZZ_ASSERT(w.bad || T##_decode(w.p, w.len, &again) == 0);                \
        hive_wbuf_free(&w);                                                       \
    } while (0)

static void fuzz_proto_message(uint8_t type, const uint8_t *p, size_t len) {
    static struct proto_hello hello;
    static struct proto_caps caps;
    static struct proto_query query;
    static struct proto_tensor tensor;
    static struct proto_setup setup;
    static struct proto_fwd fwd, fwd2;
    static struct proto_tokens tokens;
    static struct proto_ring_error rerr;
    switch (type) {
    case MSG_HELLO:
    case MSG_HELLO_OK:
        if (proto_hello_decode(p, len, &hello) == 0) FUZZ_REDECODE(proto_hello, &hello);
        break;
    case MSG_CAPS:
        if (proto_caps_decode(p, len, &caps) == 0) {
            FUZZ_ASSERT(caps.n_held <= PROTO_MAX_HELD);
            FUZZ_REDECODE(proto_caps, &caps);
        }
        break;
    case MSG_QUERY:
        if (proto_query_decode(p, len, &query) == 0) FUZZ_REDECODE(proto_query, &query);
        break;
    case MSG_TENSOR:
        if (proto_tensor_decode(p, len, &tensor) == 0) FUZZ_REDECODE(proto_tensor, &tensor);
        break;
    case MSG_SETUP:
        if (proto_setup_decode(p, len, &setup) == 0) FUZZ_REDECODE(proto_setup, &setup);
        break;
    case MSG_FWD:
        if (proto_fwd_decode(p, len, &fwd) == 0) {
            FUZZ_ASSERT(fwd.n_tim <= PROTO_MAX_STAGES && fwd.n_free <= PROTO_MAX_SEQS && fwd.n_seq <= PROTO_MAX_SEQS);
            FUZZ_ASSERT(fwd.payload_len == 0 || (fwd.payload >= p && fwd.payload + fwd.payload_len <= p + len));
            struct hive_wbuf w;
            hive_wbuf_init(&w);
            proto_fwd_encode_head(&w, &fwd);
            hive_wbuf_bytes(&w, fwd.payload, fwd.payload_len);
            FUZZ_ASSERT(w.bad || proto_fwd_decode(w.p, w.len, &fwd2) == 0);
            hive_wbuf_free(&w);
        }
        break;
    case MSG_TOKENS:
        if (proto_tokens_decode(p, len, &tokens) == 0) {
            FUZZ_ASSERT(tokens.n <= PROTO_MAX_SEQS);
            FUZZ_REDECODE(proto_tokens, &tokens);
        }
        break;
    case MSG_RING_ERROR:
        if (proto_ring_error_decode(p, len, &rerr) == 0) FUZZ_REDECODE(proto_ring_error, &rerr);
        break;
    default: { /* the fixed-layout messages: PING, PONG, OK, END, QUERY_REPLY, ERROR */
        struct hive_rbuf r;
        hive_rbuf_init(&r, p, len);
        char msg[PROTO_MSG_CAP];
        if (type == MSG_ERROR) hive_rbuf_str(&r, msg, sizeof msg);
        else if (type == MSG_QUERY_REPLY) (void)hive_rbuf_u8(&r);
        else (void)hive_rbuf_u64(&r);
        (void)hive_rbuf_left(&r);
        break;
    }
    }
}

#endif
