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
/* The replicas as planned (n_replicas == 1 and no stages when the fleet is
 * one scheduler that was not planned as replicas). */
const struct hive_replica_plan *hive_fleet_plan(const hive_fleet *f);

#endif
