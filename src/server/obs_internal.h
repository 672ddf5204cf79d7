/* obs_internal.h - struct srv_obs, shared by obs.c, cluster.c and metrics.c
 * (the readers take mu while they look). */
#ifndef HIVE_SRV_OBS_INTERNAL_H
#define HIVE_SRV_OBS_INTERNAL_H

#include <pthread.h>

#include "srv.h"

#define SRV_MAX_STATUS 16

struct srv_obs {
    const struct srv_backend *be;
    struct srv_backend_more more; /* all NULL when the backend has none */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    int stop;
    /* requests in flight, newest first */
    struct srv_active *active;
    int n_active;
    /* counters */
    uint64_t requests[2][SRV_OUT_N]; /* [chat, completion][outcome] */
    int status[SRV_MAX_STATUS];
    uint64_t status_count[SRV_MAX_STATUS];
    int n_status;
    uint64_t prompt_tokens, completion_tokens;
    struct srv_hist ttft, tpot, e2e;
    /* the sampler's ring of per-second samples and per-node ledger */
    struct srv_sample hist[SRV_HISTORY];
    int n_hist, head_hist;
    struct srv_ledger_node led[SRV_LEDGER_NODES];
    int n_led;
    struct hive_sched_stats scratch_stats; /* the sampler thread's own */
    struct hive_sched_node *scratch_nodes;
};

/* Caller holds mu. Per-minute rates of a node over the ledger window; 0 when unknown. */
int srv_obs_ledger_rate(struct srv_obs *o, const char *addr, double *tokens_per_min, double *passes_per_min);
/* Caller holds mu. Tokens/s per second, oldest first (returns how many), and
 * the rate over the last few seconds. */
int srv_obs_tps(struct srv_obs *o, double *out, int cap, double *now_tps);

#endif
