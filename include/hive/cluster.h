/* cluster.h - the distributed pipeline: the planner, the node daemon, the
 * head that drives a ring of stages, weight transfer with an on-disk cache,
 * and the helpers they share (model hashing, sizes, capability probe).
 *
 * Shape of a run (see src/cluster/proto.h for the messages; the head side
 * is the scheduler, hive/sched.h):
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
/* The same for a well-known shape (hive_mkmodel_preset's names: llama-70b,
 * llama-8b, qwen2.5-32b, qwen2.5-7b, tinyllama-1.1b) at a weight type
 * ("q4_k_m", "q4_0", ...: hive_mkmodel's types, mixes included), with no
 * file: the tensors hive mkmodel would write. For plans on paper. */
int hive_model_profile_from_shape(struct hive_model_profile *p, const char *shape, const char *type, int n_ctx,
                                  char *err);
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
/* The plan's expected ms per token from the nodes' measured speeds and
 * latencies as given (not snapped): the estimate to hold against what the
 * ring then measures. The plan's own costs use the snapped values, which
 * decide but are up to 4.5% (speed) and 0.25 ms (latency) off. */
double hive_plan_expected_ms(const struct hive_model_profile *p, const struct hive_plan *plan,
                             const struct hive_plan_node *nodes);
/* Human-readable plan with reasons. */
void hive_plan_print(FILE *f, const struct hive_plan *plan, const struct hive_plan_node *nodes);

/* ---- replicas: several pipelines of one model (data parallel) ----
 * The nodes are split into R disjoint groups; each group is one pipeline
 * (a ring of 1+ stages, every node of the group holding a contiguous layer
 * range, costed as hive_plan_make does) and nodes may be left out. The
 * choice maximises the aggregate tokens/s: the sum over replicas of their
 * single-stream tokens/s (1000 / ms per token), i.e. one stream per replica,
 * as a job's subtasks run. Up to HIVE_REPLICA_EXACT_MAX nodes the search is
 * exhaustive (every group's best pipeline, then the best partition of the
 * nodes into groups); above it, greedy: the fastest pipeline that the nodes
 * left can form, again and again, while one fits. Inputs are snapped as for
 * hive_plan_make; deterministic. */
#define HIVE_REPLICA_EXACT_MAX 10

struct hive_replica {
    int n_stages;
    struct hive_plan_stage stage[HIVE_PLAN_MAX_NODES]; /* .node indexes the full node list */
    double compute_ms, hop_ms, total_ms;                /* per token, one stream */
    double tok_s;                                       /* 1000 / total_ms */
};

struct hive_replica_plan {
    int n_replicas, n_nodes;
    struct hive_replica replica[HIVE_PLAN_MAX_NODES];  /* ordered by their first node */
    int replica_of[HIVE_PLAN_MAX_NODES];               /* replica of node i, or -1 when left out */
    char why[HIVE_PLAN_MAX_NODES][160];                /* why node i was left out */
    double agg_tok_s;                                  /* sum of the replicas' tok_s */
    double single_tok_s;                               /* one pipeline over the nodes (hive_plan_make) */
    int exact;                                         /* 1: exhaustive search; 0: greedy */
};

/* Fills out (large: allocate it). HIVE_ERR_INVAL with a message when no
 * replica fits (the same message hive_plan_make gives). */
int hive_plan_replicas(const struct hive_model_profile *p, const struct hive_plan_node *nodes, int n_nodes,
                       struct hive_replica_plan *out, char *err);
/* Machines on paper (src/cluster/nodefile.c), for `hive plan --nodes`:
 *   [{"name": "pc", "memory": "22G", "speed_gbs": 40, "latency_ms": 0.3,
 *     "bandwidth_mbps": 1000}, ...]   (or {"nodes": [...]})
 * memory: what the node gives the model (bytes, or a size string);
 * speed_gbs: weight bytes per second through its kernels, in GB/s (about
 * its usable memory bandwidth); latency_ms: one-way to the LAN;
 * bandwidth_mbps: its link in Mbit/s (0 or absent: ignored). Fills up to
 * cap nodes. HIVE_ERR_FORMAT / HIVE_ERR_INVAL with a message naming the
 * node and field. */
int hive_plan_nodes_parse(const char *text, size_t len, struct hive_plan_node *out, int cap, int *n, char *err);
/* Human-readable: the replicas and their stages, the aggregate, the single
 * pipeline it was compared with, and the nodes left out and why. */
void hive_replica_plan_print(FILE *f, const struct hive_replica_plan *rp, const struct hive_plan_node *nodes);

/* ======================================================================
 * Shared helpers
 * ====================================================================== */

/* "512M", "2G", "1.5G", "800K", "12345" (bytes; K/M/G/T are powers of 1024).
 * Returns HIVE_ERR_INVAL on bad syntax. */
int hive_parse_size(const char *s, uint64_t *out);
/* "1.5 GiB"-style rendering into buf. Returns buf. */
const char *hive_format_size(uint64_t n, char *buf, size_t cap);

/* $HIVE_CACHE_DIR, else $XDG_CACHE_HOME/hive, else $HOME/.cache/hive
 * (%LOCALAPPDATA%/hive on Windows: hive_user_cache_base in os.h). */
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
    int progress;          /* 1: a progress bar on stderr (when it is a terminal) while a stage loads */
    uint64_t cache_max;    /* stage cache cap in bytes; 0: hive_cache_default_max() */
};

struct hive_node_stats {
    uint64_t weight_bytes_received; /* tensor bytes received over the network */
    uint64_t connections, refused;  /* links accepted / failed handshakes or bad frames */
    uint64_t sessions;
    uint64_t live_seqs;             /* sequences holding a KV cache on this node now */
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
/* A graceful leave: tells every head that holds a stage here that this
 * node is going, and waits up to timeout_ms for them to move the layers off
 * (end their sessions). Returns 0 when no session is left, 1 on timeout. */
int hive_node_leave(hive_node *n, int timeout_ms);
/* Stops accepting, closes every link, frees all sessions. */
void hive_node_stop(hive_node *n);

/* What one node says about itself when asked over an authenticated link
 * (`hive nodes`): its capabilities, the round trip, and the stages it holds. */
struct hive_peer_status {
    char name[64], os[64], cpu[256];
    int threads;
    uint64_t mem_budget, mem_free; /* the budget left, and the machine's free memory */
    uint64_t speed_bps;
    double rtt_ms;                 /* best of a few pings */
    int n_held;
    struct {
        int first, last, live_seqs;
    } held[16];
};
/* Connects to addr ("host:port") with the cluster key and asks. */
int hive_peer_query(const char *addr, const uint8_t key[HIVE_KEY_BYTES], int timeout_ms, struct hive_peer_status *out,
                    char *err);

/* The head that plans, deploys and drives the pipeline is the scheduler:
 * see hive/sched.h. */

#endif
