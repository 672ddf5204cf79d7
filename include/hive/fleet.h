/* fleet.h - replicas: several pipelines of one model, serving as one.
 *
 * When the model fits on several nodes, or groups of nodes, R pipelines
 * (replicas) give more tokens per second in aggregate than one pipeline
 * over all of them. hive_fleet_open measures the nodes once (a plan-only
 * scheduler over every peer), asks the planner for the replicas
 * (hive_plan_replicas), and opens one scheduler per replica over that
 * replica's nodes. Requests go to the least-loaded replica in rotation.
 *
 * Each replica heals itself: its scheduler re-plans on its own nodes when
 * one dies (hive/sched.h). A replica that cannot (its model no longer fits
 * on what is left) is out of rotation; its sequences end with
 * HIVE_FINISH_ERROR and a caller that must finish them (a job) submits them
 * again, to another replica.
 *
 * Sequences are the schedulers' own: hive_seq_next / hive_seq_release work
 * on what hive_fleet_submit returns, as on hive_sched_submit's. */
#ifndef HIVE_FLEET_H
#define HIVE_FLEET_H

#include <stdio.h>

#include "hive/cluster.h"
#include "hive/sched.h"

struct hive_fleet_opts {
    struct hive_sched_opts sched; /* peers: every node; the rest as for one scheduler */
    int max_replicas;             /* at most this many; 0: what the planner finds best;
                                     1: one pipeline over the nodes (as hive_sched_open) */
};

typedef struct hive_fleet hive_fleet;

/* Plans the replicas and opens their schedulers. Without peers, or with
 * local layers, one replica. The replica plan is printed to o->sched.log
 * when there is more than one. */
int hive_fleet_open(hive_fleet **out, const struct hive_fleet_opts *o, char *err);
void hive_fleet_close(hive_fleet *f);
int hive_fleet_n_replicas(const hive_fleet *f);
hive_sched *hive_fleet_replica(const hive_fleet *f, int i);
/* 1 while replica i is in rotation. */
int hive_fleet_replica_ok(hive_fleet *f, int i);
/* The nodes ("host:port") of replica i, in ring order; returns how many. */
int hive_fleet_replica_nodes(const hive_fleet *f, int i, const char **addrs, int cap);
/* Submits to the least-loaded replica in rotation (running + queued per KV
 * slot), passing over replica `avoid` (-1: none) unless no other is in
 * rotation. *replica gets where it went (may be NULL). Errors as
 * hive_sched_submit, HIVE_ERR_IO when no replica is in rotation. */
int hive_fleet_submit(hive_fleet *f, const struct hive_seq_params *p, int avoid, hive_seq **out, int *replica,
                      char *err);
/* ---- sequences that outlive their replica (what `hive serve` uses) ----
 * As hive_seq_*, but when the sequence's replica fails for good (its nodes
 * died and the model fits on none of the rest), the sequence goes on on
 * another replica: its token log becomes the new prompt, with the sampler
 * as it was, and only the tokens still missing are asked for. The client
 * sees one unbroken answer (greedy: the single-node one). */
typedef struct hive_fleet_seq hive_fleet_seq;
int hive_fleet_seq_submit(hive_fleet *f, const struct hive_seq_params *p, hive_fleet_seq **out, char *err);
int hive_fleet_seq_next(hive_fleet_seq *q, int32_t *token, int timeout_ms);
enum hive_finish hive_fleet_seq_finish(const hive_fleet_seq *q);
const char *hive_fleet_seq_error(const hive_fleet_seq *q);
void hive_fleet_seq_usage(const hive_fleet_seq *q, int *n_prompt, int *n_generated);
double hive_fleet_seq_ttft_ms(const hive_fleet_seq *q);
/* What every node computed for it, on each replica it ran on (as
 * hive_seq_credit, merged by node name). Returns how many. */
int hive_fleet_seq_credit(const hive_fleet_seq *q, struct hive_sched_node *out, int cap);
/* Moves to another replica so far (0: it stayed on its first). */
int hive_fleet_seq_moves(const hive_fleet_seq *q);
void hive_fleet_seq_release(hive_fleet_seq *q);

/* Every replica's counters summed (slots and queue limits too); stages of
 * every replica in replica order, up to HIVE_SCHED_MAX_STAGES. */
void hive_fleet_get_stats(hive_fleet *f, struct hive_sched_stats *st);
/* Every replica's nodes, replica after replica; returns how many. */
int hive_fleet_get_nodes(hive_fleet *f, struct hive_sched_node *out, int cap);
/* The replicas as planned (n_replicas == 1 and no stages when the fleet is
 * one scheduler that was not planned as replicas). */
const struct hive_replica_plan *hive_fleet_plan(const hive_fleet *f);

#endif
