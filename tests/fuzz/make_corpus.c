/* make_corpus.c - writes the seed corpora of the fuzz targets from real
 * files and real messages: tiny models made by hive_mkmodel, messages made
 * by the protocol's own encoders, packets made by the DNS-SD codec, a
 * weight transfer of a real stage. Run by make_corpus.sh:
 *   fuzz_make_corpus OUT_DIR        (writes OUT_DIR/<target>/<name>)
 * Deterministic: the same build writes the same bytes (fixed seeds, fixed
 * clock, no random nonces). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster_internal.h"
#include "fuzz_vocab.h"
#include "hive/mkmodel.h"
#include "hive/model.h"
#include "net/dns.h"

#define FUZZ_NOW 1700000000
static const char *out_dir;
static const uint8_t KEY[HIVE_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void die(const char *what, const char *err) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, err ? err : "failed");
    exit(1);
}

static void put(const char *target, const char *name, const void *p, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) die(path, "write");
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path, "open");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz + 1);
    if (!p || fread(p, 1, (size_t)sz, f) != (size_t)sz) die(path, "read");
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* ---- frames: u8 type | u16 len | payload (fuzz_weights, fuzz_link) ---- */
static void frame(struct hive_wbuf *w, uint8_t type, const void *p, size_t n) {
    hive_wbuf_u8(w, type);
    hive_wbuf_u8(w, (uint8_t)n);
    hive_wbuf_u8(w, (uint8_t)(n >> 8));
    hive_wbuf_bytes(w, p, n);
}

static void frame_w(struct hive_wbuf *w, uint8_t type, struct hive_wbuf *msg) {
    frame(w, type, msg->p, msg->len);
    hive_wbuf_free(msg);
    hive_wbuf_init(msg);
}

/* ---- models ---- */
struct model_spec {
    const char *name, *arch, *type;
    int dim, layers, heads, kv, ff;
};
static const struct model_spec models[] = {
    {"llama-f32", "llama", "f32", 8, 2, 2, 1, 16},
    {"llama-f16", "llama", "f16", 8, 1, 2, 2, 8},
    {"qwen2-q8_0", "qwen2", "q8_0", 32, 1, 4, 2, 32},
    {"qwen3-q4_0", "qwen3", "q4_0", 32, 2, 2, 1, 32},
    {"llama-q5_1", "llama", "q5_1", 32, 1, 2, 2, 32},
};

static void make_models(const char *tmp) {
    char err[HIVE_ERR_LEN], path[4096];
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const struct model_spec *s = &models[i];
        struct hive_mkmodel_opts o;
        memset(&o, 0, sizeof o);
        o.arch = s->arch;
        o.type = s->type;
        o.dim = s->dim;
        o.n_layers = s->layers;
        o.n_heads = s->heads;
        o.n_kv_heads = s->kv;
        o.ff = s->ff;
        o.vocab = 262;
        o.ctx = 64;
        o.seed = i;
        o.n_threads = 1;
        snprintf(path, sizeof path, "%s/%s.gguf", tmp, s->name);
        if (hive_mkmodel(&o, path, err)) die(path, err);
        size_t n;
        uint8_t *p = slurp(path, &n);
        put("model", s->name, p, n);
        if (i == 1 || i == 3) put("gguf", s->name, p, n);
        free(p);
    }
}

/* ---- weights: the transfer of stage [0, n_layer) of a tiny model ---- */
struct collect {
    const struct hive_gguf_tensor *t[64];
    int n;
};
static void collect(void *arg, const struct hive_gguf_tensor *t) {
    struct collect *c = arg;
    if (c->n < 64) c->t[c->n++] = t;
}

static void make_weights(const char *tmp, const char *model, int first, int last, const char *name) {
    char err[HIVE_ERR_LEN], path[4096];
    snprintf(path, sizeof path, "%s/%s.gguf", tmp, model);
    hive_gguf *g;
    if (hive_gguf_open(&g, path, err)) die(path, err);
    struct collect c = {.n = 0};
    if (hive_model_stage_tensors(g, first, last, collect, &c, err)) die(path, err);
    uint8_t *meta;
    size_t meta_len;
    if (weights_meta_image(g, &meta, &meta_len, err)) die(path, err);
    uint64_t total = 0;
    for (int i = 0; i < c.n; i++) total += c.t[i]->n_bytes;
    struct hive_wbuf out, m;
    hive_wbuf_init(&out);
    hive_wbuf_init(&m);
    struct proto_query q;
    memset(&q, 0, sizeof q);
    memset(q.model, 0x5a, sizeof q.model);
    q.first = (uint32_t)first;
    q.last = (uint32_t)last;
    snprintf(q.file_name, sizeof q.file_name, "%s.gguf", model);
    q.file_size = 12345;
    proto_query_encode(&m, &q);
    frame_w(&out, MSG_QUERY, &m);
    hive_wbuf_u32(&m, (uint32_t)c.n);
    hive_wbuf_u64(&m, total);
    hive_wbuf_bytes(&m, meta, meta_len);
    if (m.len > 0xffff) die(name, "meta image too large for a seed");
    frame_w(&out, MSG_META, &m);
    for (int i = 0; i < c.n; i++) {
        const struct hive_gguf_tensor *t = c.t[i];
        struct proto_tensor pt;
        memset(&pt, 0, sizeof pt);
        snprintf(pt.name, sizeof pt.name, "%.*s", (int)t->name.len, t->name.ptr);
        pt.type = (uint32_t)t->type;
        pt.n_dims = (uint32_t)t->n_dims;
        for (int k = 0; k < 4; k++) pt.ne[k] = (uint64_t)t->ne[k];
        pt.n_bytes = t->n_bytes;
        proto_tensor_encode(&m, &pt);
        frame_w(&out, MSG_TENSOR, &m);
        for (uint64_t off = 0; off < t->n_bytes; off += 4096) {
            uint64_t n = t->n_bytes - off < 4096 ? t->n_bytes - off : 4096;
            frame(&out, MSG_CHUNK, (const uint8_t *)t->data + off, n);
        }
        uint8_t one = 0;
        frame(&out, MSG_TENSOR_END, &one, 1); /* the harness puts the right hash */
    }
    frame(&out, MSG_WEIGHTS_END, NULL, 0);
    put("weights", name, out.p, out.len);
    hive_wbuf_free(&out);
    free(meta);
    hive_gguf_close(g);
}

/* ---- wire messages ---- */
static void make_proto(void) {
    struct hive_wbuf w, link;
    hive_wbuf_init(&w);
    hive_wbuf_init(&link);
    hive_wbuf_u8(&link, 2); /* fuzz_link mode 2: frames after a real handshake */
#define SEED(type, name)                                              \
    do {                                                              \
        uint8_t *b = malloc(w.len + 1);                               \
        b[0] = (type);                                                \
        memcpy(b + 1, w.p, w.len);                                    \
        put("proto", name, b, w.len + 1);                             \
        free(b);                                                      \
        frame_w(&link, (type), &w);                                   \
    } while (0)
    struct proto_hello h = {.proto = HIVE_PROTO_VERSION, .role = ROLE_CONTROL, .session = 0};
    snprintf(h.name, sizeof h.name, "head");
    proto_hello_encode(&w, &h);
    SEED(MSG_HELLO, "hello");
    h.role = ROLE_DATA;
    h.session = 77;
    proto_hello_encode(&w, &h);
    SEED(MSG_HELLO_OK, "hello-data");
    struct proto_caps caps;
    memset(&caps, 0, sizeof caps);
    caps.proto = HIVE_PROTO_VERSION;
    snprintf(caps.name, sizeof caps.name, "node-a");
    snprintf(caps.os, sizeof caps.os, "Linux 6.1");
    snprintf(caps.cpu, sizeof caps.cpu, "x86-64 AVX2");
    caps.threads = 4;
    caps.mem_budget = 1 << 30;
    caps.mem_free = 2u << 30;
    caps.speed_bps = 1 << 28;
    caps.n_held = 2;
    caps.held[0].last = 4;
    caps.held[1].first = 4;
    caps.held[1].last = 8;
    caps.held[1].live_seqs = 3;
    proto_caps_encode(&w, &caps);
    SEED(MSG_CAPS, "caps");
    struct proto_query q;
    memset(&q, 0, sizeof q);
    q.first = 2;
    q.last = 5;
    snprintf(q.file_name, sizeof q.file_name, "stories260K.gguf");
    q.file_size = 1185376;
    proto_query_encode(&w, &q);
    SEED(MSG_QUERY, "query");
    struct proto_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "blk.0.attn_q.weight");
    t.type = 8;
    t.n_dims = 2;
    t.ne[0] = 64;
    t.ne[1] = 64;
    t.ne[2] = t.ne[3] = 1;
    t.n_bytes = 64 * 68;
    proto_tensor_encode(&w, &t);
    SEED(MSG_TENSOR, "tensor");
    struct proto_setup su;
    memset(&su, 0, sizeof su);
    su.session = 9;
    su.last = 5;
    su.n_ctx = 512;
    su.n_threads = 2;
    su.wire = KIND_F16;
    su.n_stages = 2;
    su.max_seqs = 8;
    snprintf(su.next, sizeof su.next, "127.0.0.1:7071");
    proto_setup_encode(&w, &su);
    SEED(MSG_SETUP, "setup");
    static struct proto_fwd f;
    memset(&f, 0, sizeof f);
    f.session = 9;
    f.step = 3;
    f.kind = KIND_TOKENS;
    f.n_tim = 1;
    f.tim[0].stage = 0;
    f.tim[0].compute_us = 100;
    f.n_free = 1;
    f.free_ids[0] = 4;
    f.n_seq = 2;
    f.seq[0].id = 5;
    f.seq[0].n_tok = 2;
    f.seq[0].flags = SEQ_SAMPLE;
    f.seq[1].id = 6;
    f.seq[1].pos = 7;
    f.seq[1].n_tok = 1;
    f.seq[1].flags = SEQ_SAMPLE | SEQ_SAMPLER;
    uint8_t sampler[HIVE_SAMPLER_WIRE_BYTES];
    memset(sampler, 0, sizeof sampler);
    f.seq[1].sampler = sampler;
    proto_fwd_encode_head(&w, &f);
    int32_t toks[3] = {1, 2, 3};
    hive_wbuf_bytes(&w, toks, sizeof toks);
    SEED(MSG_FWD, "fwd-tokens");
    f.kind = KIND_F16;
    f.n_seq = 1;
    f.seq[0].flags = 0;
    f.seq[0].n_tok = 1;
    proto_fwd_encode_head(&w, &f);
    uint16_t hid[8] = {0x3c00, 0xbc00, 0, 1, 2, 3, 0x7c00, 0xfc00};
    hive_wbuf_bytes(&w, hid, sizeof hid);
    SEED(MSG_FWD, "fwd-f16");
    static struct proto_tokens tk;
    memset(&tk, 0, sizeof tk);
    tk.session = 9;
    tk.step = 3;
    tk.n_tim = 2;
    tk.tim[1].stage = 1;
    tk.n = 2;
    tk.out[0].id = 5;
    tk.out[0].token = 42;
    tk.out[1].id = 6;
    tk.out[1].token = -1;
    proto_tokens_encode(&w, &tk);
    SEED(MSG_TOKENS, "tokens");
    struct proto_ring_error re = {.session = 9, .step = 4, .stage = 1};
    snprintf(re.msg, sizeof re.msg, "stage 1: out of memory");
    proto_ring_error_encode(&w, &re);
    SEED(MSG_RING_ERROR, "ring-error");
    hive_wbuf_u64(&w, 123456789);
    SEED(MSG_PING, "ping");
    hive_wbuf_str(&w, "weights: bad tensor count");
    SEED(MSG_ERROR, "error");
#undef SEED
    put("link", "frames", link.p, link.len);
    hive_wbuf_free(&link);
    hive_wbuf_free(&w);

    /* Before authentication: a well-formed hello (fixed nonce and key), a
     * hello with a zero public key, a wrong version, garbage after auth. */
    uint8_t hello[1 + 69 + 56];
    hello[0] = 0;
    memcpy(hello + 1, "HIVE", 4);
    hello[5] = 1;
    for (int i = 0; i < 64; i++) hello[6 + i] = (uint8_t)(i * 37 + 11);
    memset(hello + 70, 0x42, 56); /* a proof that cannot be right */
    put("link", "hello-server", hello, sizeof hello);
    hello[0] = 1;
    put("link", "hello-client", hello, sizeof hello);
    memset(hello + 38, 0, 32);
    hello[0] = 0;
    put("link", "hello-zero-key", hello, 70);
    hello[5] = 2;
    put("link", "hello-version", hello, 70);
    uint8_t raw[1 + 4 + 40] = {3, 40, 0, 0, 0};
    for (int i = 0; i < 40; i++) raw[5 + i] = (uint8_t)i;
    put("link", "raw-after-auth", raw, sizeof raw);
    uint8_t big[1 + 4] = {3, 0xff, 0xff, 0xff, 0x7f};
    put("link", "raw-huge-length", big, sizeof big);
}

/* ---- discovery packets ---- */
static void make_dns(void) {
    struct dnssd_self self, other;
    if (dnssd_self_init(&self, "fuzz", 0x1122334455667788ull, "fuzzhost") ||
        dnssd_self_init(&other, "node-b", 0x99, "machine-b"))
        die("dns", "self");
    uint8_t pkt[1 + DNS_PKT_MAX], txt[1024];
    struct dnssd_announce a;
    memset(&a, 0, sizeof a);
    a.node_id = 0x99;
    snprintf(a.name, sizeof a.name, "node-b");
    a.port = 7070;
    a.proto = HIVE_PROTO_VERSION;
    snprintf(a.os, sizeof a.os, "Linux");
    snprintf(a.cpu, sizeof a.cpu, "x86-64");
    a.mem_budget = 1 << 30;
    a.speed_bps = 1 << 27;
    a.ts = FUZZ_NOW;
    static const uint8_t addr[4] = {192, 168, 1, 7};
    size_t tl = dnssd_txt_build(&a, KEY, txt, sizeof txt);
    if (!tl) die("dns", "txt");
    size_t n = dnssd_build_response(pkt + 1, DNS_PKT_MAX, &other, txt, tl, 7070, addr, 120,
                                    DNSSD_WANT_PTR | DNSSD_WANT_INSTANCE | DNSSD_WANT_HOST, NULL);
    pkt[0] = 0;
    put("dns", "announce", pkt, n + 1);
    pkt[0] = 1; /* re-MAC: survives edits of the TXT fields */
    put("dns", "announce-remac", pkt, n + 1);
    a.bye = 1;
    tl = dnssd_txt_build(&a, KEY, txt, sizeof txt);
    n = dnssd_build_response(pkt + 1, DNS_PKT_MAX, &other, txt, tl, 7070, addr, 0, DNSSD_WANT_PTR | DNSSD_WANT_INSTANCE,
                             NULL);
    pkt[0] = 1;
    put("dns", "goodbye", pkt, n + 1);
    n = dnssd_build_query(pkt + 1, DNS_PKT_MAX, &other, NULL, NULL, NULL, 0);
    pkt[0] = 0;
    put("dns", "query-ptr", pkt, n + 1);
    uint32_t ttl = 100;
    n = dnssd_build_query(pkt + 1, DNS_PKT_MAX, &other, &self.instance, &self.instance, &ttl, 1);
    put("dns", "query-instance-known", pkt, n + 1);
    n = dnssd_build_query(pkt + 1, DNS_PKT_MAX, &other, &self.instance, NULL, NULL, 0);
    pkt[1] = 0x12; /* a legacy unicast query id */
    put("dns", "query-instance", pkt, n + 1);
    /* A compressed name pointing at itself and a truncated header. */
    static const uint8_t loop[] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 12, 0, 1};
    put("dns", "pointer-loop", loop, sizeof loop);
}

/* ---- tokenizer, chat and HTTP texts ---- */
static void make_texts(const char *tmp) {
    static const char *const texts[] = {
        "Hello world",
        " Hello World! How are you?",
        "<|im_start|>user\nTell me a story<|im_end|>\n<|im_start|>assistant\n",
        "<s>[INST] <<SYS>>\nBe brief\n<</SYS>>\n\nHi [/INST]</s>",
        "3333333 1234567890 \t\n\n  tabs\tand    spaces",
        "\xe2\x96\x81the \xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\xa6\x99 \xff\xfe invalid \xc3",
        "<|endoftext|>hive<|endoftext|> hive's isn't I'M 'll",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t l = strlen(texts[i]);
        uint8_t *b = malloc(l + 2);
        b[0] = (uint8_t)i;       /* vocab: spm, then the BPE families */
        b[1] = (uint8_t)(i * 37); /* flags */
        memcpy(b + 2, texts[i], l);
        char name[32];
        snprintf(name, sizeof name, "text-%zu", i);
        put("tokenizer", name, b, l + 2);
        free(b);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/bpe.gguf", tmp);
    if (fuzz_bpe_write(path, "qwen2")) die(path, "bpe vocab");
    size_t n;
    uint8_t *p = slurp(path, &n);
    put("tokenizer", "vocab-bpe", p, n);
    free(p);

#define CHAT(name, tmpl, flags, lit) {name, tmpl, flags, lit, sizeof lit - 1}
    static const struct {
        const char *name;
        uint8_t tmpl, flags;
        const char *msgs; /* role byte 0..3 + content, messages separated by NUL */
        size_t len;
    } chats[] = {
        CHAT("chatml", HIVE_CHAT_CHATML, 1, "\x00You are a bee.\0\x01Hi there\0\x02Hello!\0\x01Tell me a story"),
        CHAT("llama2", HIVE_CHAT_LLAMA2, 1, "\x00  Be brief. \0\x01 Hi \0\x02 Yo </s> \0\x01" "Again"),
        CHAT("llama3", HIVE_CHAT_LLAMA3, 0, "\x01<|eot_id|>\0\x02ok\0\x03tool output"),
        CHAT("mistral", HIVE_CHAT_MISTRAL, 1, "\x00sys\0\x01[INST] nested [/INST]"),
        CHAT("zephyr", HIVE_CHAT_ZEPHYR, 3, "{% for message in messages %}<|user|>\n</s>"),
        CHAT("phi3", HIVE_CHAT_PHI3, 3, "{{ '<|user|>' }}<|end|>{{ '<|assistant|>' }}"),
        CHAT("detect-chatml", 0, 2, "{% for message in messages %}{{'<|im_start|>' + message['role'] }}"),
        CHAT("detect-llama3", 0, 2, "<|start_header_id|>{{ message['role'] }}<|end_header_id|>"),
    };
#undef CHAT
    for (size_t i = 0; i < sizeof chats / sizeof chats[0]; i++) {
        uint8_t b[128];
        b[0] = chats[i].tmpl;
        b[1] = chats[i].flags;
        memcpy(b + 2, chats[i].msgs, chats[i].len);
        put("chat", chats[i].name, b, chats[i].len + 2);
    }

    static const char *const bodies[] = {
        "{\"model\":\"hive\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a story\"}],\"max_tokens\":64}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief\"},{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"assistant\",\"content\":\"Hello\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}],"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"temperature\":0.7,\"top_p\":0.9,\"top_k\":40,"
        "\"min_p\":0.05,\"seed\":42,\"stop\":[\"\\n\\n\",\"The end\"],\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"n\":1}",
        "{\"prompt\":\"Once upon a time\",\"max_tokens\":16,\"stream\":false,\"stop\":\"\\u00e9\\ud83e\\udd99\"}",
        "{\"prompt\":[\"a\",\"b\"],\"max_tokens\":-1,\"temperature\":3.5}",
        "{\"messages\":[{\"role\":\"wizard\",\"content\":null}],\"n\":2,\"seed\":1e400}",
        "[1,2,3]",
        "{\"prompt\":\"x\",\"max_tokens\":1e30,\"top_k\":-5,\"logit_bias\":{\"50256\":-100}}",
        "{\"messages\":[],\"model\":\"",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "body-%zu", i);
        put("http", name, bodies[i], strlen(bodies[i]));
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    hive_log_set_level(HIVE_LOG_ERROR);
    if (sodium_init() < 0) die("sodium", NULL);
    char tmp[] = "/tmp/hive-make-corpus-XXXXXX";
    if (!mkdtemp(tmp)) die("mkdtemp", NULL);
    make_models(tmp);
    make_weights(tmp, "llama-f32", 0, 2, "stage-llama-all");
    make_weights(tmp, "qwen3-q4_0", 1, 2, "stage-qwen3-last");
    make_proto();
    make_dns();
    make_texts(tmp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) die("cleanup", NULL);
    return 0;
}
