/* sched.h - the scheduler: the one owner of every sequence a head runs.
 *
 * `hive serve`, `hive run`, the bench and jobs all hand it sequences; nothing
 * else drives a ring. It plans and deploys the pipeline once (on the peers,
 * or on an in-process node when there are none), then runs one thread that:
 *   - admits queued sequences while KV slots are free (max_seqs per stage),
 *   - groups the sequences that are ready into micro-batches and keeps up to
 *     one micro-batch per stage in the ring, so every stage has work,
 *   - sends each prefill/decode step through the ring as one batched FWD and
 *     hands each sampled token to its sequence,
 *   - frees a finished or cancelled sequence on every stage (the free rides
 *     on the next message through the ring, so it is in order),
 *   - watches every node with heartbeats and, when a stage dies, re-plans on
 *     the nodes left, redeploys and replays each sequence's token log, so
 *     that the answer continues with nothing lost.
 *
 * A sequence's tokens never depend on what else runs beside it: greedy
 * output equals the same request run alone, token for token.
 *
 * Threads: every function here is safe to call from any thread. A client
 * (an HTTP connection, the CLI) submits a sequence, pulls its tokens with
 * hive_seq_next and releases it with hive_seq_release, which also cancels it
 * when it is still running. */
#ifndef HIVE_SCHED_H
#define HIVE_SCHED_H

#include <stdint.h>
#include <stdio.h>

#include "hive/cluster.h"
#include "hive/core.h"
#include "hive/net.h"
#include "hive/sample.h"

struct hive_sched_opts {
    const char *model_path;
    const char *const *peers; /* "host:port" each; order is the preferred ring order */
    int n_peers;              /* 0: serve on this machine alone (an in-process node) */
    int local_layers;         /* 1: also hold layers here (in-process node first in the ring);
                                 forced on when n_peers == 0 */
    uint8_t key[HIVE_KEY_BYTES];
    int n_ctx;                /* positions per sequence; 0: min(n_ctx_train, 2048) */
    int max_seqs;             /* sequences decoding at once (KV slots on each stage); 0: 8 */
    int max_queue;            /* sequences waiting for a slot before submit refuses; 0: 64 */
    int max_batch_tokens;     /* prompt tokens per micro-batch (longer prompts are chunked); 0: 2048,
                                 llama.cpp's n_batch: prompts arriving together are prefilled together */
    int n_threads;            /* threads per stage; 0: each node's default */
    int wire_f16;             /* hidden states as f16 on the wire */
    int use_all;              /* planner: every peer gets layers */
    const char *cache_dir;    /* head-side hash cache (and the in-process node's); NULL: default */
    int timeout_ms;           /* a step with no answer for this long fails; 0: 60000 */
    int heartbeat_ms;         /* ping interval per node; 0: 200 */
    int dead_after_ms;        /* silence after which a node is declared dead; 0: 1500 */
    int progress;             /* progress bar on stderr while sending weights */
    int trace;                /* record per-step stage and hop times (hive_sched_write_trace) */
    int plan_only;            /* hive_sched_open connects and plans, but deploys and runs nothing */
    int discover_ms;          /* > 0: also use the nodes found on the LAN (mDNS, same cluster key):
                                 browse this long before planning, and keep browsing so that nodes
                                 that appear later join between requests */
    const char *discover_iface; /* IPv4 address of the interface to browse on; NULL: all */
    /* Speculative decoding: a draft proposes the next tokens of every
     * decoding sequence and the ring verifies them in one pass (the output
     * is what plain decoding gives: token for token when greedy, the same
     * distribution when sampling). Sources: */
    const char *draft_path;   /* a small model with the same vocabulary, run on the head */
    int draft_ngram;          /* prompt lookup (used where the draft model is absent) */
    int draft_max;            /* tokens drafted per pass, at most; 0: 8 (<= 16) */
    int draft_fixed;          /* always draft draft_max (tests); else adapt to the acceptance */
    FILE *log;                /* plan, recovery and status lines; NULL: stderr */
};

typedef struct hive_sched hive_sched;
typedef struct hive_seq hive_seq;
struct hive_sched_node;

struct hive_seq_params {
    const int32_t *prompt; /* copied by submit */
    int n_prompt;          /* >= 1 */
    int max_tokens;        /* tokens to generate; also capped by the context */
    struct hive_sampler_params sampling;
    /* Tokens of the prompt the sampler should remember for its repetition
     * penalties (llama.cpp style: 1 = the whole prompt, 0 = none). */
    int penalize_prompt;
    /* Continuing a sequence elsewhere (hive_seq_state): the sampler as it
     * was after the last token, instead of sampling + penalize_prompt. */
    const struct hive_sampler *resume;
};

enum hive_finish {
    HIVE_FINISH_NONE = 0,  /* still running */
    HIVE_FINISH_LENGTH,    /* max_tokens reached */
    HIVE_FINISH_CONTEXT,   /* the context is full */
    HIVE_FINISH_CANCELLED, /* released by the client before the end */
    HIVE_FINISH_ERROR,     /* the ring failed and could not be recovered (hive_seq_error says why) */
};

/* Connects to the peers, plans, deploys and starts the scheduler thread. */
int hive_sched_open(hive_sched **out, const struct hive_sched_opts *o, char *err);
/* Stops the thread, ends the sequences (HIVE_FINISH_ERROR "shutting down"),
 * ends the sessions on the nodes and frees everything. Sequences the
 * clients still hold stay valid until released. */
void hive_sched_close(hive_sched *s);

/* Queues a sequence. HIVE_ERR_BUSY when the queue is full (answer 429),
 * HIVE_ERR_INVAL when the prompt is empty, has a token out of range or does
 * not fit the context (the message gives the numbers). */
int hive_sched_submit(hive_sched *s, const struct hive_seq_params *p, hive_seq **out, char *err);

/* Waits for the next token: 1 and *token set; 0 when the sequence has
 * finished (hive_seq_finish says why); HIVE_ERR_TIMEOUT (negated: -HIVE_ERR_TIMEOUT)
 * when nothing came within timeout_ms (< 0 waits forever). Tokens are never
 * lost or repeated, also across a recovery. */
int hive_seq_next(hive_seq *q, int32_t *token, int timeout_ms);
enum hive_finish hive_seq_finish(const hive_seq *q);
/* Why a sequence ended with HIVE_FINISH_ERROR ("" otherwise). */
const char *hive_seq_error(const hive_seq *q);
/* A copy of the token log (prompt + generated; *log to free) and the
 * sampler as of the last token: what it takes to go on elsewhere. */
int hive_seq_state(const hive_seq *q, int32_t **log, int *n_log, struct hive_sampler *sampler);
/* What each stage's node computed for this sequence, for the ledger: name,
 * addr, first/last, tokens (the token rows it sent through the ring:
 * prompt, generated, drafts and replays) and layer_passes (rows x the
 * stage's layers, by the plan now). Returns how many (up to cap). */
int hive_seq_credit(const hive_seq *q, struct hive_sched_node *out, int cap);
/* Prompt tokens and tokens generated so far. */
void hive_seq_usage(const hive_seq *q, int *n_prompt, int *n_generated);
/* Milliseconds from submit to the first token (0 before it). */
double hive_seq_ttft_ms(const hive_seq *q);
/* The client is done: cancels the sequence if it still runs (it is freed on
 * every stage within one step) and frees the handle when the scheduler is
 * done with it too. */
void hive_seq_release(hive_seq *q);

/* ---- what the scheduler knows (for /health, /metrics, the dashboard, tests) ---- */

#define HIVE_SCHED_MAX_STAGES HIVE_PLAN_MAX_NODES

struct hive_sched_stage_stats {
    char name[64];
    char addr[128];
    int first, last;       /* layers [first, last) */
    int live_seqs;         /* sequences the stage holds KV for (as it last reported) */
    double compute_ms_avg; /* per step, over the recent steps */
    double hop_in_ms_avg;  /* the hop into this stage, per step */
    uint64_t weight_bytes_sent;
    int from_cache;        /* 0 sent, 1 node cache, 2 node model dir */
};

struct hive_sched_stats {
    int n_ctx, max_seqs, max_queue;
    int running;           /* sequences holding a slot */
    int queued;            /* sequences waiting for a slot */
    uint64_t submitted, rejected, finished, cancelled, failed;
    uint64_t prompt_tokens, generated_tokens;
    uint64_t steps;        /* micro-batches sent through the ring */
    int in_flight;         /* micro-batches in the ring now */
    /* Speculative decoding: decode passes (one sequence's entry in a step),
     * the tokens they gave, and drafted / accepted draft tokens. */
    uint64_t decode_passes, decode_pass_tokens, draft_tokens, draft_accepted;
    int recoveries;
    int rebalances;        /* plans changed because a node ran slower than its peers */
    /* The last recovery and its parts, in ms: detection (the node's last
     * sign of life to its being declared dead), re-plan, weights + setup of
     * the new stages, and replay (the ring ready to the first new token);
     * last_recovery_ms is their sum. */
    double last_recovery_ms, last_detect_ms, last_plan_ms, last_deploy_ms, last_replay_ms;
    int n_stages;
    struct hive_sched_stage_stats st[HIVE_SCHED_MAX_STAGES];
    double hop_out_ms_avg; /* last stage -> head */
};

void hive_sched_get_stats(hive_sched *s, struct hive_sched_stats *st);

/* Every node the head knows (membership), for `hive nodes`-style views and
 * the dashboard: what it said of itself, its state, what it holds, and what
 * it has computed for this head (the contribution ledger). */
enum hive_node_state { HIVE_NODE_ALIVE = 0, HIVE_NODE_SUSPECT, HIVE_NODE_DEAD, HIVE_NODE_LEAVING, HIVE_NODE_JOINING };
struct hive_sched_node {
    char name[64], addr[128], os[64], cpu[256];
    int state;                /* enum hive_node_state; SUSPECT: silent for over half of dead_after */
    int is_local;             /* the head's in-process node */
    uint64_t mem_budget;      /* what it offered (bytes) */
    uint64_t mem_used;        /* what its stage takes now (weights + KV + scratch), 0 when it holds none */
    double speed_bps;         /* probed, or as measured while it ran */
    double rtt_ms;
    double silent_ms;         /* since its last frame */
    int stage, first, last;   /* its stage now (-1 and 0, 0 when it holds none) */
    uint64_t tokens;          /* token rows it has run for this head, in total */
    uint64_t layer_passes;    /* token rows x layers */
};
/* Copies up to cap nodes into out; returns how many there are. */
int hive_sched_get_nodes(hive_sched *s, struct hive_sched_node *out, int cap);
const char *hive_node_state_name(int state);
const struct hive_plan *hive_sched_plan(const hive_sched *s);
const struct hive_plan_node *hive_sched_nodes(const hive_sched *s);
/* The address ("host:port") of the plan's node i, as the head reaches it. */
const char *hive_sched_node_addr(const hive_sched *s, int i);
/* 1 once the ring failed for good (the model no longer fits on the nodes
 * left, or a recovery failed): submits fail with the reason. */
int hive_sched_failed(hive_sched *s);
/* The model's hyper-parameters as the head read them. */
int hive_sched_n_ctx(const hive_sched *s);
int hive_sched_n_vocab(const hive_sched *s);

/* Per-stage and per-hop averages of the steps so far, naming the slowest. */
void hive_sched_print_summary(hive_sched *s, FILE *f);
/* Chrome trace JSON of the recorded steps (opts.trace must be set). */
int hive_sched_write_trace(hive_sched *s, const char *path, char *err);
/* Machine-readable summary of the run (steps, bytes sent, plan, timings). */
int hive_sched_write_stats_json(hive_sched *s, const char *path, char *err);

#endif
