/* ring.h - the nodes a head drives and the pipeline over them: connecting
 * and measuring peers, planning over the live ones, deploying stages
 * (weights + SETUP), ending sessions, and the per-step timing records that
 * the summary and the trace are made from. Internal to src/cluster; the
 * scheduler (sched.c) is its only user and owns every sequence.
 *
 * Peer states: a peer is ALIVE while its control link works and it answers
 * heartbeats; DEAD once the link failed or it fell silent; LEAVING after it
 * said it is shutting down. The plan only ever uses ALIVE peers. */
#ifndef HIVE_CLUSTER_RING_H
#define HIVE_CLUSTER_RING_H

#include <stdint.h>
#include <stdio.h>

#include "hive/cluster.h"
#include "hive/gguf.h"
#include "hive/model.h"
#include "hive/sched.h"
#include "proto.h"

enum ring_peer_state { PEER_ALIVE = 0, PEER_DEAD, PEER_LEAVING };

struct ring_peer {
    char addr[PROTO_ADDR_CAP];
    hive_link *link;        /* control link; NULL when not connected */
    struct proto_caps caps;
    double rtt_ms;
    int64_t offset_us;      /* node clock - head clock */
    int state;              /* enum ring_peer_state */
    uint64_t last_rx_us;    /* last frame of any kind from it */
    uint64_t last_ping_us;  /* last PING sent */
    uint64_t next_retry_us; /* when to try reconnecting a dead peer */
    double measured_bps;    /* speed as it ran for us (0: not measured; the probe's caps.speed_bps counts) */
    uint64_t tokens, layer_passes; /* what it computed for us (the ledger) */
    double slow_bps;        /* found this slow by the balance check ... */
    uint64_t slow_until_us; /* ... and taken to stay so until then */
};

/* One micro-batch's trip through the ring (head clock for send/recv). */
struct ring_step_rec {
    uint32_t n_tok, n_seq;
    uint32_t n_out;     /* tokens the last stage answered */
    uint8_t decode;     /* every entry a decode entry (one token, or one and a draft) */
    uint64_t t_send, t_recv;
    uint8_t n_tim;
    struct proto_timing tim[PROTO_MAX_STAGES];
};

/* One recovery, for the trace (head clock, us). */
#define RING_MAX_RECOVERIES 64
struct ring_recovery_rec {
    char node[160];
    uint64_t t_last_alive, t_detect, t_planned, t_deployed, t_first_token;
};

struct ring {
    struct hive_sched_opts o;
    FILE *log;
    char model_path[4096];
    char cache_dir[2048];
    hive_gguf *g;
    struct hive_hparams hp;
    uint8_t model_hash[HIVE_HASH_BYTES];
    struct hive_model_profile prof; /* KV sized for max_seqs x n_ctx */
    int n_ctx, max_seqs;
    hive_node *local;               /* in-process node, or NULL */
    struct hive_discovery *disc;    /* LAN browsing, or NULL */
    int n_peers;                    /* peers has room for HIVE_PLAN_MAX_NODES */
    struct ring_peer *peers;
    /* The plan: its node i is peers[node_peer[i]]. */
    int n_nodes;
    int node_peer[HIVE_PLAN_MAX_NODES];
    struct hive_plan_node nodes[HIVE_PLAN_MAX_NODES];
    struct hive_plan plan;
    uint64_t session;
    int deployed;
    int quiet;                      /* no per-stage deploy lines (during a recovery) */
    uint64_t sent[HIVE_PLAN_MAX_NODES]; /* weight bytes sent per stage */
    int source[HIVE_PLAN_MAX_NODES];
    int live_seqs[HIVE_PLAN_MAX_NODES]; /* as each stage last reported */
    /* Timing: sums over decode-only steps (every entry one token), the
     * prefill-containing steps apart, and the records for the trace. */
    double sum_compute_us[HIVE_PLAN_MAX_NODES], sum_hop_us[HIVE_PLAN_MAX_NODES + 1], sum_ring_us;
    uint64_t n_decode_steps;
    double ewma_compute_ms[HIVE_PLAN_MAX_NODES], ewma_hop_ms[HIVE_PLAN_MAX_NODES + 1];
    struct ring_step_rec *recs;
    int n_recs, cap_recs;
    struct ring_recovery_rec recov[RING_MAX_RECOVERIES];
    int n_recov;
};

/* Reads the model, starts the in-process node when asked (or when there are
 * no peers), connects to every peer and plans. */
int ring_open(struct ring *r, const struct hive_sched_opts *o, char *err);
void ring_close(struct ring *r);
/* Plans over the ALIVE peers. */
int ring_make_plan(struct ring *r, char *err);
/* Adaptive balance: from each stage's recent compute, its speed per weight
 * byte. When one stage runs at least 1.6x slower per byte than the fastest and
 * a plan with the measured speeds moves layers and expects at least
 * min_gain (a fraction) less time per token than now, the measured speeds
 * are kept for the next ring_make_plan, why says so, and it returns 1. */
int ring_balance_check(struct ring *r, double min_gain, char *why, size_t why_cap);
/* Forgets the recent averages (after a new plan). */
void ring_reset_timing(struct ring *r);
/* Sends each stage its weights (or confirms its cache) and sets up a new
 * session on every stage, last first. */
int ring_deploy(struct ring *r, char *err);
/* Ends the session on every live stage and waits briefly for each to
 * confirm (so the nodes have released its memory). */
void ring_end_session(struct ring *r);
/* Tries to (re)connect peer i within timeout_ms per stage of the
 * handshake; on success it is ALIVE again. */
int ring_connect_peer(struct ring *r, int i, int timeout_ms, char *err);
/* Adds the nodes discovery found that are not peers yet (DEAD, so that
 * the next rejoin connects them). Returns how many were added. */
int ring_add_discovered(struct ring *r);
/* Marks peer i DEAD (or LEAVING) and closes its link. */
void ring_drop_peer(struct ring *r, int i, int state);
int ring_n_alive(const struct ring *r);
/* The peer index of stage s. */
static inline int ring_stage_peer(const struct ring *r, int s) { return r->node_peer[r->plan.stage[s].node]; }
static inline hive_link *ring_stage_link(const struct ring *r, int s) { return r->peers[ring_stage_peer(r, s)].link; }
/* Name of a peer for messages ("name@host:port"). */
const char *ring_peer_name(const struct ring *r, int i);

/* Records one step's timings (rec->n_tim == n_stages). keep: also store
 * the record for the trace. */
void ring_record_step(struct ring *r, const struct ring_step_rec *rec, int keep);
void ring_print_summary(const struct ring *r, FILE *f, int n_prompt, int n_gen, double prefill_ms, double decode_ms);
int ring_write_trace(const struct ring *r, const char *path, char *err);
void ring_stage_stats(const struct ring *r, struct hive_sched_stats *st);

#endif
