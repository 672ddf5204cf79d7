/* proto.h - the pipeline's wire protocol (inside hive_link frames; see net.h
 * for the handshake and the encrypted frame). Internal to src/cluster.
 *
 * Every frame: u8 type | payload. Integers are little endian. str = u32 len |
 * bytes (no NUL). h32 = 32-byte BLAKE2b-256. Limits are checked on decode.
 *
 * Byte order and sizes. Every header field is fixed-width and encoded byte
 * by byte (hive_wbuf / hive_rbuf), so headers mean the same on any host.
 * The bulk payloads are not converted: FWD's token ids (i32) and
 * activations (f32, f16), TOKENS' rng states and the weights (GGUF tensor
 * data) travel as little-endian arrays, copied as they are. So every peer
 * says what it is in HOST (in HELLO, both ways through CAPS) and a
 * big-endian peer is refused with HIVE_ERR_UNSUPPORTED, naming the reason,
 * before any payload moves. A 32-bit little-endian peer is fine: no size
 * on the wire depends on the word size (proto_host_check).
 *   HOST         = u8 little endian (1; 0 big) | u8 pointer bits (32 or 64)
 *
 * Link roles: the first frame on a link says what the link is for.
 *   HELLO        | u32 proto | u8 role (1 control, 2 data) | u64 session (data) | str name | HOST
 *   HELLO_OK     | u32 proto | str node name
 *
 * Control link (head -> node requests, node -> head replies, in order):
 *   CAPS_REQ     | -
 *   CAPS         | u32 proto | str name | str os | str cpu | u32 threads | u64 mem_budget | u64 mem_free
 *                | u64 speed_bps | u32 n_held | n_held x (u32 first | u32 last | u32 live sequences)
 *                  (the stages it holds now, at most PROTO_MAX_HELD) | HOST
 *   PING         | u64 t_head_us
 *   PONG         | u64 t_head_us | u64 t_node_us
 *   QUERY        | h32 model | u32 first | u32 last | str model file name | u64 model size
 *   QUERY_REPLY  | u8 source (0 need weights, 1 own cache, 2 --model-dir file)
 *   META         | u32 n_tensors | u64 tensor bytes | bytes: GGUF image with every KV and no tensors
 *   TENSOR       | str name | u32 type | u32 n_dims | 4 x u64 ne | u64 n_bytes
 *   CHUNK        | bytes (<= HIVE_CHUNK_BYTES; a tensor's chunks in order)
 *   TENSOR_END   | h32 hash of the tensor's bytes
 *   WEIGHTS_END  | -                                    -> OK | ERROR
 *   SETUP        | u64 session | h32 model | u32 first | u32 last | u32 n_ctx | u32 n_threads | u8 wire
 *                | u8 stage index | u8 n_stages | u32 max_seqs | str next "host:port" ("" = last stage)
 *                                                      -> OK | ERROR
 *                  n_ctx is per sequence; the stage keeps KV for up to max_seqs sequences.
 *   OK           | u64 value
 *   ERROR        | str message
 *   END          | u64 session
 *
 * Ring (one-way; head -> stage 0 on its control link, stage i -> i+1 on a
 * data link, last stage -> head on its control link):
 *   FWD          | u64 session | u32 step | u8 kind | u8 n_tim | n_tim x TIMING
 *                | u32 n_free | n_free x u64 seq id          (sequences to forget, before the batch)
 *                | u32 n_seq | n_seq x SEQ | payload          (one micro-batch of several sequences)
 *                  SEQ = u64 seq id | u32 pos | u32 n_tok | u8 flags
 *                        | [sampler, HIVE_SAMPLER_WIRE_BYTES, if flags & SEQ_SAMPLER]
 *                        | [(n_tok - 1) x i32 draft, if flags & SEQ_VERIFY]
 *                  flags: SEQ_SAMPLER a sampler follows (the last stage keeps it for the sequence);
 *                         SEQ_SAMPLE the last stage samples a token after this entry;
 *                         SEQ_VERIFY (with SEQ_SAMPLE) speculative decoding: the entry is the
 *                           last token and a draft of n_tok - 1 (<= PROTO_MAX_DRAFT) tokens; the
 *                           last stage samples after each token (hive_sample_verify) while the
 *                           draft agrees, so it answers 1 to n_tok tokens for the entry
 *                  payload: each entry's n_tok rows in entry order;
 *                  kind 0: i32 token ids; 1: (rows, n_embd) f32; 2: (rows, n_embd) f16
 *                  A sequence is created on a stage by its first entry at pos 0.
 *   TOKENS       | u64 session | u32 step | u8 n_tim | n_tim x TIMING | u32 n
 *                | n x (u64 seq id | i32 token | u64 sampler rng state after sampling)
 *                  (one reply per FWD, even when nothing was sampled; a verified entry's
 *                  tokens come one after another, in order)
 *   RING_ERROR   | u64 session | u32 step | u8 stage | str message   (any stage -> head, control link)
 *   LEAVING      | -   (node -> every head on its control links: it is shutting down; move its layers off)
 *   TIMING       = u8 stage | u64 t_recv_us | u64 t_send_us | u32 compute_us | u32 live sequences
 *                  (the stage's own clock)
 */
#ifndef HIVE_CLUSTER_PROTO_H
#define HIVE_CLUSTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "hive/cluster.h"
#include "hive/net.h"
#include "hive/sample.h"

#define HIVE_PROTO_VERSION 4 /* 3: HOST in HELLO and CAPS; 4: SEQ_VERIFY (speculative decoding) */
#define HIVE_CHUNK_BYTES (8u << 20) /* weight chunk: big enough to amortise a frame, small for progress */
#define PROTO_MAX_STAGES 64
#define PROTO_NAME_CAP 64
#define PROTO_ADDR_CAP 128
#define PROTO_TENSOR_NAME_CAP 128
#define PROTO_MSG_CAP 240
#define PROTO_MAX_SEQS 256
#define PROTO_MAX_HELD 16 /* stages listed in CAPS */
#define PROTO_MAX_DRAFT 16 /* drafted tokens per entry */
#define PROTO_MAX_OUT (PROTO_MAX_SEQS * (PROTO_MAX_DRAFT + 1)) /* tokens in one TOKENS */

enum proto_type {
    MSG_HELLO = 1,
    MSG_HELLO_OK,
    MSG_CAPS_REQ,
    MSG_CAPS,
    MSG_PING,
    MSG_PONG,
    MSG_QUERY,
    MSG_QUERY_REPLY,
    MSG_META,
    MSG_TENSOR,
    MSG_CHUNK,
    MSG_TENSOR_END,
    MSG_WEIGHTS_END,
    MSG_SETUP,
    MSG_OK,
    MSG_ERROR,
    MSG_END,
    MSG_FWD = 32,
    MSG_TOKENS,
    MSG_RING_ERROR,
    MSG_LEAVING,
};

enum proto_role { ROLE_CONTROL = 1, ROLE_DATA = 2 };
enum proto_source { SOURCE_NEED = 0, SOURCE_CACHE = 1, SOURCE_MODEL_DIR = 2 };
enum proto_kind { KIND_TOKENS = 0, KIND_F32 = 1, KIND_F16 = 2 };
enum proto_seq_flags { SEQ_SAMPLER = 1, SEQ_SAMPLE = 2, SEQ_VERIFY = 4 };

/* HOST: what a peer's memory looks like (encoders write this host's). */
struct proto_host {
    uint8_t little_endian; /* 1, or 0 for big endian */
    uint8_t pointer_bits;  /* 32 or 64 */
};

struct proto_hello {
    uint32_t proto;
    uint8_t role;
    uint64_t session;
    char name[PROTO_NAME_CAP];
    struct proto_host host; /* decoded; the encoder writes proto_host_self() */
};

struct proto_caps {
    uint32_t proto;
    char name[PROTO_NAME_CAP];
    char os[PROTO_NAME_CAP];
    char cpu[256];
    uint32_t threads;
    uint64_t mem_budget, mem_free;
    uint64_t speed_bps;
    uint32_t n_held;
    struct {
        uint32_t first, last, live_seqs;
    } held[PROTO_MAX_HELD];
    struct proto_host host; /* decoded; the encoder writes proto_host_self() */
};

struct proto_query {
    uint8_t model[HIVE_HASH_BYTES];
    uint32_t first, last;
    char file_name[256];
    uint64_t file_size;
};

struct proto_tensor {
    char name[PROTO_TENSOR_NAME_CAP];
    uint32_t type, n_dims;
    uint64_t ne[4];
    uint64_t n_bytes;
};

struct proto_setup {
    uint64_t session;
    uint8_t model[HIVE_HASH_BYTES];
    uint32_t first, last, n_ctx, n_threads;
    uint8_t wire; /* KIND_F32 or KIND_F16 */
    uint8_t stage, n_stages;
    uint32_t max_seqs;
    char next[PROTO_ADDR_CAP];
};

struct proto_timing {
    uint8_t stage;
    uint64_t t_recv_us, t_send_us;
    uint32_t compute_us;
    uint32_t live_seqs;
};

struct proto_seq {
    uint64_t id;
    uint32_t pos, n_tok;
    uint8_t flags;
    const uint8_t *sampler; /* HIVE_SAMPLER_WIRE_BYTES, or NULL */
    const uint8_t *draft;   /* SEQ_VERIFY: (n_tok - 1) little-endian i32 (proto_seq_draft) */
};

struct proto_fwd {
    uint64_t session;
    uint32_t step;
    uint8_t kind, n_tim;
    struct proto_timing tim[PROTO_MAX_STAGES];
    uint32_t n_free;
    uint64_t free_ids[PROTO_MAX_SEQS];
    uint32_t n_seq;
    struct proto_seq seq[PROTO_MAX_SEQS];
    uint32_t n_tok_total;   /* sum of the entries' n_tok (decode only) */
    const uint8_t *payload; /* points into the received frame */
    size_t payload_len;
};

struct proto_sampled {
    uint64_t id;
    int32_t token;
    uint64_t rng;
};

struct proto_tokens {
    uint64_t session;
    uint32_t step;
    uint8_t n_tim;
    struct proto_timing tim[PROTO_MAX_STAGES];
    uint32_t n;
    struct proto_sampled out[PROTO_MAX_OUT];
};

struct proto_ring_error {
    uint64_t session;
    uint32_t step;
    uint8_t stage;
    char msg[PROTO_MSG_CAP];
};

/* Encoders append to w (check w->bad). Decoders return 0, or -1 when the
 * payload is malformed (short, oversized fields, trailing bytes, bad counts). */
/* This host, found at run time. */
struct proto_host proto_host_self(void);
/* HIVE_OK when a peer with host h can join (little endian, 32 or 64 bits);
 * HIVE_ERR_UNSUPPORTED (big endian) or HIVE_ERR_PROTO with the reason in
 * err, naming the peer. */
int proto_host_check(struct proto_host h, const char *peer, char *err);
void proto_hello_encode(struct hive_wbuf *w, const struct proto_hello *m);
int proto_hello_decode(const uint8_t *p, size_t len, struct proto_hello *m);
void proto_caps_encode(struct hive_wbuf *w, const struct proto_caps *m);
int proto_caps_decode(const uint8_t *p, size_t len, struct proto_caps *m);
void proto_query_encode(struct hive_wbuf *w, const struct proto_query *m);
int proto_query_decode(const uint8_t *p, size_t len, struct proto_query *m);
void proto_tensor_encode(struct hive_wbuf *w, const struct proto_tensor *m);
int proto_tensor_decode(const uint8_t *p, size_t len, struct proto_tensor *m);
void proto_setup_encode(struct hive_wbuf *w, const struct proto_setup *m);
int proto_setup_decode(const uint8_t *p, size_t len, struct proto_setup *m);
/* FWD header only: the caller sends the payload as the frame's body. */
void proto_fwd_encode_head(struct hive_wbuf *w, const struct proto_fwd *m);
int proto_fwd_decode(const uint8_t *p, size_t len, struct proto_fwd *m);
void proto_tokens_encode(struct hive_wbuf *w, const struct proto_tokens *m);
int proto_tokens_decode(const uint8_t *p, size_t len, struct proto_tokens *m);
void proto_ring_error_encode(struct hive_wbuf *w, const struct proto_ring_error *m);
int proto_ring_error_decode(const uint8_t *p, size_t len, struct proto_ring_error *m);

/* Copies src into dst[cap], truncating (messages on the wire are capped). */
static inline void proto_copy_str(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    while (n + 1 < cap && src[n]) n++;
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
    if (cap) dst[n] = '\0';
}

/* Draft token j of a SEQ_VERIFY entry; proto_put_i32 writes one. */
int32_t proto_seq_draft(const struct proto_seq *q, uint32_t j);
void proto_put_i32(uint8_t *p, int32_t v);

/* Bytes per element of a FWD payload kind (4, 4, 2), 0 if unknown. */
size_t proto_kind_elem_bytes(uint8_t kind);

/* Receives the reply to a control request, skipping what may still be on
 * its way from a ring that was just torn down (TOKENS, RING_ERROR, PONG):
 * after a recovery ends a session, a stage in the middle of a step can
 * still report on it. Deadline: timeout_ms over the whole wait. */
int proto_recv_reply(hive_link *l, uint8_t *type, const uint8_t **p, size_t *len, int timeout_ms, char *err);

/* Sends a frame whose payload is w; frees nothing. HIVE_ERR_NOMEM if w->bad. */
int proto_send(hive_link *l, uint8_t type, const struct hive_wbuf *w, char *err);
/* ERROR frame with a message. */
int proto_send_error(hive_link *l, const char *msg, char *err);
int proto_send_u64(hive_link *l, uint8_t type, uint64_t v, char *err);

#endif
