/* cluster.h - the distributed pipeline: the planner, the node daemon, the
 * head that drives a ring of stages, weight transfer with an on-disk cache,
 * and the helpers they share (model hashing, sizes, capability probe).
 *
 * Shape of a run (see src/cluster/proto.h for the messages):
 *   head --control link--> every node: capabilities, plan, weights, setup
 *   ring: head -> stage 1 -> ... -> stage N -> head, one one-way message
 *   per hop per step; stage 1 receives token ids, the others hidden states,
 *   the last stage applies the output head, samples and returns a token id.
 * The head keeps the token log; stages keep KV caches that can be rebuilt
 * from it. */
#ifndef HIVE_CLUSTER_H
#define HIVE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/net.h"
#include "hive/sample.h"

#define HIVE_PLAN_MAX_NODES 64
#define HIVE_HASH_BYTES 32 /* BLAKE2b-256 */

/* ======================================================================
 * Planner (pure logic: src/cluster/planner.c)
 * ====================================================================== */

/* What the planner knows about one node. */
struct hive_plan_node {
    char name[64];       /* shown in the plan */
    uint64_t mem_budget; /* bytes the node may use for this model */
    double speed_bps;    /* weight bytes per second through its kernels (> 0) */
    double latency_ms;   /* one-way latency node <-> LAN; a hop a->b costs a+b */
    double bandwidth_bps;/* link bandwidth, 0 = ignore transfer time */
};

/* What the planner knows about the model. Arrays have n_layer entries. */
struct hive_model_profile {
    int n_layer;
    uint64_t *layer_mem;   /* bytes of weights layer l holds */
    uint64_t *layer_read;  /* bytes of weights layer l reads per token */
    uint64_t first_mem, first_read; /* extras of the first stage (embedding) */
    uint64_t last_mem, last_read;   /* extras of the last stage (norm + output head) */
    uint64_t kv_per_layer;  /* KV cache bytes per layer at the planned context */
    uint64_t scratch_bytes; /* activations and buffers, per stage */
    uint64_t hidden_bytes;  /* bytes of one hidden state on the wire */
};

/* Fills a profile from a GGUF (arrays allocated; free with
 * hive_model_profile_free). n_ctx sizes the KV cache. */
int hive_model_profile_from_gguf(struct hive_model_profile *p, const hive_gguf *g, int n_ctx, char *err);
void hive_model_profile_free(struct hive_model_profile *p);

struct hive_plan_opts {
    int use_all; /* give every node at least one layer (for demos and tests) */
};

struct hive_plan_stage {
    int node;            /* index into the node list */
    int first, last;     /* layers [first, last) */
    uint64_t mem_bytes;  /* weights + KV + scratch */
    uint64_t weight_bytes;
    uint64_t read_bytes; /* weight bytes read per token */
    double compute_ms;   /* read_bytes / speed */
    double hop_ms;       /* this node's share of its two hops: 2 x latency (+ transfer) */
};

struct hive_plan {
    int n_stages;
    struct hive_plan_stage stage[HIVE_PLAN_MAX_NODES];
    int n_nodes;
    int stage_of[HIVE_PLAN_MAX_NODES];     /* stage index of node i, or -1 when left out */
    char why[HIVE_PLAN_MAX_NODES][160];    /* why node i was left out */
    double compute_ms, hop_ms, total_ms;   /* expected time per token */
};

/* Contiguous layer ranges over the nodes in the given order, minimizing
 * sum(stage compute) + sum(hop latency) per token, with every stage within
 * its node's memory budget. Ties go to the plan with the smallest slowest
 * stage. Speeds and latencies are first snapped to a grid
 * (hive_plan_round_speed/latency) so measurement noise of a few % does not
 * move layers; the plan's costs use the snapped values. Deterministic: the
 * same inputs (or inputs that snap alike) give the same plan, byte for byte.
 * HIVE_ERR_INVAL with a message when nothing fits. */
int hive_plan_make(const struct hive_model_profile *p, const struct hive_plan_node *nodes, int n_nodes,
                   const struct hive_plan_opts *o, struct hive_plan *out, char *err);
/* Nearest step of 2^(1/8) (about 9%; 0 for non-positive), and the next
 * multiple of 0.25 ms up (0 only for 0): what the planner uses of a measured
 * speed (or bandwidth) and latency. */
double hive_plan_round_speed(double bps);
double hive_plan_round_latency(double ms);
/* Memory of a stage [first, last): weights + KV + scratch. */
uint64_t hive_plan_stage_mem(const struct hive_model_profile *p, int first, int last);
/* Expected ms per token of stage [first, last) on node nd (compute + its hops). */
double hive_plan_stage_cost_ms(const struct hive_model_profile *p, const struct hive_plan_node *nd, int first,
                               int last);
/* Human-readable plan with reasons. */
void hive_plan_print(FILE *f, const struct hive_plan *plan, const struct hive_plan_node *nodes);

/* ======================================================================
 * Shared helpers
 * ====================================================================== */

/* "512M", "2G", "1.5G", "800K", "12345" (bytes; K/M/G/T are powers of 1024).
 * Returns HIVE_ERR_INVAL on bad syntax. */
int hive_parse_size(const char *s, uint64_t *out);
/* "1.5 GiB"-style rendering into buf. Returns buf. */
const char *hive_format_size(uint64_t n, char *buf, size_t cap);

/* $HIVE_CACHE_DIR, else $XDG_CACHE_HOME/hive, else $HOME/.cache/hive. */
void hive_default_cache_dir(char *buf, size_t cap);
/* mkdir -p. */
int hive_mkdirs(const char *path, char *err);

/* ---- the stage cache (<cache>/stages, src/cluster/weights.c) ----
 * Stage files are named <model hex>-<first>-<last>.gguf; "last used" is the
 * file's mtime, set whenever a node reuses it. */
struct hive_cache_entry {
    char name[128];               /* file name inside <cache>/stages */
    char model_hex[2 * HIVE_HASH_BYTES + 1];
    int first, last;              /* layers [first, last) */
    uint64_t bytes;
    int64_t last_used_ns;         /* since the epoch */
};
/* Every stage file, least recently used first (*out malloc'd; an absent
 * directory is an empty cache). */
int hive_cache_list(const char *cache_dir, struct hive_cache_entry **out, int *n, char *err);
/* The cap when none is given: $HIVE_CACHE_MAX, else 4x the largest stage
 * file present (0 when the cache is empty). */
uint64_t hive_cache_default_max(const char *cache_dir);
/* Evicts least recently used stage files until the total is at most
 * max_bytes (0: hive_cache_default_max), never keep (a path or file name;
 * NULL: none) nor a file this process has mapped (a live stage). Counts of
 * what went are optional. */
int hive_cache_trim(const char *cache_dir, uint64_t max_bytes, const char *keep, int *n_evicted, uint64_t *freed,
                    char *err);
/* Removes every stage file and leftover partial transfer. */
int hive_cache_clear(const char *cache_dir, int *n_removed, uint64_t *freed, char *err);

/* BLAKE2b-256 of a whole file. When cache_dir is not NULL the result is
 * remembered there keyed by (path, size, mtime), so a second call is free. */
int hive_file_hash(const char *path, const char *cache_dir, uint8_t out[HIVE_HASH_BYTES], char *err);
/* 64 lowercase hex chars + NUL. */
void hive_hash_hex(const uint8_t h[HIVE_HASH_BYTES], char out[2 * HIVE_HASH_BYTES + 1]);

/* Weight bytes per second through hive_matmul on a Q4_0 matrix of a few MB,
 * with n_threads threads (best of a few runs, ~50 ms). */
double hive_probe_speed(int n_threads);
/* "linux x86_64" and the like. */
void hive_os_name(char *buf, size_t cap);

/* ======================================================================
 * Node daemon (src/cluster/node.c)
 * ====================================================================== */

struct hive_node_opts {
    const char *listen;    /* "host:port", port 0 = ephemeral */
    uint8_t key[HIVE_KEY_BYTES];
    uint64_t mem_budget;   /* 0: half of hive_mem_available() */
    int n_threads;         /* 0: hive_cpu_count() */
    const char *cache_dir; /* NULL: hive_default_cache_dir() */
    const char *model_dir; /* NULL: none; else GGUFs here are used instead of transfers when hashes match */
    const char *name;      /* NULL: hostname */
    int probe;             /* 1: measure decode speed at start (default), 0: use a fixed guess (tests) */
    uint64_t cache_max;    /* stage cache cap in bytes; 0: hive_cache_default_max() */
};

struct hive_node_stats {
    uint64_t weight_bytes_received; /* tensor bytes received over the network */
    uint64_t connections, refused;  /* links accepted / failed handshakes or bad frames */
    uint64_t sessions;
};

typedef struct hive_node hive_node;

struct hive_node_opts hive_node_default_opts(void);
/* Binds, probes and starts serving on a background thread. */
int hive_node_start(hive_node **out, const struct hive_node_opts *o, char *err);
/* The bound address (port resolved when 0 was asked). */
const char *hive_node_address(const hive_node *n);
void hive_node_get_stats(hive_node *n, struct hive_node_stats *st);
/* One line: name, memory budget, measured speed, threads, OS, CPU features. */
void hive_node_describe(const hive_node *n, char *buf, size_t cap);
/* Stops accepting, closes every link, frees all sessions. */
void hive_node_stop(hive_node *n);

/* ======================================================================
 * Head (src/cluster/head.c): plans, deploys and drives one pipeline.
 * ====================================================================== */

struct hive_head_opts {
    const char *model_path;
    const char *const *peers; /* "host:port" each, in ring order */
    int n_peers;
    uint8_t key[HIVE_KEY_BYTES];
    int n_ctx;          /* KV capacity per stage; 0: min(n_ctx_train, 2048) */
    int n_threads;      /* threads per stage; 0: each node's default */
    int wire_f16;       /* hidden states as f16 on the wire */
    int use_all;        /* planner: every peer gets layers */
    const char *cache_dir; /* head-side hash cache; NULL: default */
    int timeout_ms;     /* per-step deadline; 0: 60000 */
    int progress;       /* progress bar on stderr while sending weights */
    int trace;          /* record per-token stage and hop times */
    FILE *log;          /* plan and status lines; NULL: stderr */
};

struct hive_head_stage_stats {
    char name[64];
    char addr[128];
    int first, last;
    double compute_ms_avg;  /* per decode token */
    double hop_in_ms_avg;   /* hop into this stage, per decode token */
    uint64_t weight_bytes_sent;
    int from_cache;         /* 0 sent, 1 node cache, 2 node model dir */
};

struct hive_head_stats {
    int n_stages;
    struct hive_head_stage_stats st[HIVE_PLAN_MAX_NODES];
    double hop_out_ms_avg;      /* last stage -> head */
    uint64_t weight_bytes_sent; /* all stages */
    int n_prompt, n_gen;
    double prefill_ms, decode_ms; /* wall time of prefill and of all decode steps */
    double ring_ms_avg;         /* decode step round trip */
};

typedef struct hive_head hive_head;

/* Connects to every peer, asks for capabilities, builds the plan. */
int hive_head_open(hive_head **out, const struct hive_head_opts *o, char *err);
const struct hive_plan *hive_head_plan(const hive_head *h);
const struct hive_plan_node *hive_head_nodes(const hive_head *h);
/* Sends each stage its weights (or confirms its cache) and links the ring. */
int hive_head_deploy(hive_head *h, char *err);

/* Called with each generated token; return nonzero to stop. */
typedef int (*hive_token_fn)(void *arg, int32_t token);

/* Runs prompt (n_prompt >= 1 tokens) through the ring as one batch, then
 * generates up to n_predict tokens, stopping early when stop_fn says so.
 * The sampler travels to the last stage with the request (prompt tokens
 * should already be accepted into it when a repetition penalty is wanted).
 * The token log (prompt + generated) is kept by the head. */
int hive_head_generate(hive_head *h, const int32_t *prompt, int n_prompt, int n_predict,
                       const struct hive_sampler *sampler, hive_token_fn on_token, void *arg, char *err);
/* Tokens of the last request: prompt followed by generated ones. */
const int32_t *hive_head_token_log(const hive_head *h, int *n);
void hive_head_get_stats(const hive_head *h, struct hive_head_stats *st);
/* Prints per-stage and per-hop averages and names the slowest of each. */
void hive_head_print_summary(const hive_head *h, FILE *f);
/* Chrome trace JSON of the recorded steps (opts.trace must be set). */
int hive_head_write_trace(const hive_head *h, const char *path, char *err);
/* Machine-readable summary (tokens, bytes sent, plan, timings). */
int hive_head_write_stats_json(const hive_head *h, const char *path, char *err);
void hive_head_close(hive_head *h);

#endif
