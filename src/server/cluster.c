/* cluster.c - GET /v1/hive/cluster: everything the dashboard draws, in one
 * JSON object (web/app.js reads it once a second):
 *   model, uptime_s, sched{...counters, slots, queue}
 *   tps{now, history[] (per second, oldest first), interval_s}
 *   nodes[]  {name, addr, os, cpu, state, is_local, mem_used, mem_budget,
 *             speed_bps, rtt_ms, silent_ms, stage, first, last,
 *             tokens, layer_passes, tokens_per_min, layer_passes_per_min}
 *   stages[] {name, addr, first, last, live_seqs, compute_ms, hop_in_ms}
 *   hop_out_ms, slowest_stage, slowest_hop (hop i enters stage i; hop
 *   n_stages returns to the head; -1 when nothing ran yet)
 *   requests[] {id, kind, stream, n_prompt, n_gen, max_tokens, age_ms}
 *   server{requests, completion_tokens, prompt_tokens, in_flight}
 *   ledger[] {node, entries, tokens, layer_passes, credit}: the contribution
 *            ledger's totals, every session and job since it began (absent
 *            without a ledger) */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hive/ledger.h"
#include "obs_internal.h"

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

char *srv_json_cluster(struct srv_obs *o, const char *model_id, long long started_unix) {
    struct hive_sched_stats *st = calloc(1, sizeof *st);
    struct hive_sched_node *nodes = calloc(SRV_LEDGER_NODES, sizeof *nodes);
    double *tps = calloc(SRV_HISTORY, sizeof *tps);
    cJSON *root = cJSON_CreateObject();
    char *out = NULL;
    if (!st || !nodes || !tps || !root) goto done;
    o->be->stats(o->be->ctx, st);
    int n_nodes = o->more.nodes ? o->more.nodes(o->be->ctx, nodes, SRV_LEDGER_NODES) : 0;
    if (n_nodes > SRV_LEDGER_NODES) n_nodes = SRV_LEDGER_NODES;
    if (n_nodes < 0) n_nodes = 0;
    int n_st = st->n_stages < 0 ? 0 : st->n_stages > HIVE_SCHED_MAX_STAGES ? HIVE_SCHED_MAX_STAGES : st->n_stages;

    cJSON_AddStringToObject(root, "model", model_id);
    add_num(root, "uptime_s", (double)((long long)time(NULL) - started_unix));
    cJSON *sc = cJSON_AddObjectToObject(root, "sched");
    srv_json_sched_fields(sc, st);

    cJSON *ja = cJSON_AddArrayToObject(root, "stages");
    int slow_stage = -1, slow_hop = -1;
    double worst_c = 0, worst_h = 0;
    for (int i = 0; i < n_st; i++) {
        const struct hive_sched_stage_stats *s = &st->st[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(ja, j);
        cJSON_AddStringToObject(j, "name", s->name);
        cJSON_AddStringToObject(j, "addr", s->addr);
        add_num(j, "first", s->first);
        add_num(j, "last", s->last);
        add_num(j, "live_seqs", s->live_seqs);
        add_num(j, "compute_ms", s->compute_ms_avg);
        add_num(j, "hop_in_ms", s->hop_in_ms_avg);
        if (s->compute_ms_avg > worst_c) worst_c = s->compute_ms_avg, slow_stage = i;
        if (s->hop_in_ms_avg > worst_h) worst_h = s->hop_in_ms_avg, slow_hop = i;
    }
    if (n_st && st->hop_out_ms_avg > worst_h) slow_hop = n_st;
    add_num(root, "hop_out_ms", st->hop_out_ms_avg);
    add_num(root, "slowest_stage", slow_stage);
    add_num(root, "slowest_hop", slow_hop);

    pthread_mutex_lock(&o->mu);
    double now_tps = 0;
    int n_tps = srv_obs_tps(o, tps, SRV_HISTORY, &now_tps);
    cJSON *jt = cJSON_AddObjectToObject(root, "tps");
    add_num(jt, "now", now_tps);
    add_num(jt, "interval_s", 1);
    cJSON_AddItemToObject(jt, "history", cJSON_CreateDoubleArray(tps, n_tps));

    cJSON *jn = cJSON_AddArrayToObject(root, "nodes");
    for (int i = 0; i < n_nodes; i++) {
        const struct hive_sched_node *nd = &nodes[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(jn, j);
        cJSON_AddStringToObject(j, "name", nd->name);
        cJSON_AddStringToObject(j, "addr", nd->addr);
        cJSON_AddStringToObject(j, "os", nd->os);
        cJSON_AddStringToObject(j, "cpu", nd->cpu);
        const char *state = hive_node_state_name(nd->state);
        cJSON_AddStringToObject(j, "state", state ? state : "unknown");
        cJSON_AddBoolToObject(j, "is_local", nd->is_local);
        add_num(j, "mem_used", (double)nd->mem_used);
        add_num(j, "mem_budget", (double)nd->mem_budget);
        add_num(j, "speed_bps", nd->speed_bps);
        add_num(j, "rtt_ms", nd->rtt_ms);
        add_num(j, "silent_ms", nd->silent_ms);
        add_num(j, "stage", nd->stage);
        add_num(j, "first", nd->first);
        add_num(j, "last", nd->last);
        add_num(j, "tokens", (double)nd->tokens);
        add_num(j, "layer_passes", (double)nd->layer_passes);
        double tpm = 0, ppm = 0;
        srv_obs_ledger_rate(o, nd->addr, &tpm, &ppm);
        add_num(j, "tokens_per_min", tpm);
        add_num(j, "layer_passes_per_min", ppm);
    }

    struct hive_ledger_total *tot = NULL;
    int n_tot = 0;
    char err[HIVE_ERR_LEN];
    if (o->be->ledger && hive_ledger_totals(o->be->ledger, &tot, &n_tot, err) == HIVE_OK) {
        cJSON *jl = cJSON_AddArrayToObject(root, "ledger");
        for (int i = 0; i < n_tot; i++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToArray(jl, j);
            cJSON_AddStringToObject(j, "node", tot[i].node);
            add_num(j, "entries", (double)tot[i].entries);
            add_num(j, "tokens", (double)tot[i].tokens);
            add_num(j, "layer_passes", (double)tot[i].layer_passes);
            add_num(j, "credit", tot[i].credit);
        }
        free(tot);
    }

    cJSON *jr = cJSON_AddArrayToObject(root, "requests");
    double now = srv_obs_now_ms();
    for (const struct srv_active *a = o->active; a; a = a->next) {
        int np = a->n_prompt, ng = a->n_gen;
        if (o->more.usage && a->seq) o->more.usage(a->seq, &np, &ng); /* the scheduler may be ahead of the client */
        if (ng < a->n_gen) ng = a->n_gen;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToArray(jr, j);
        cJSON_AddStringToObject(j, "id", a->id);
        cJSON_AddStringToObject(j, "kind", a->kind == SRV_CHAT ? "chat" : "completion");
        cJSON_AddBoolToObject(j, "stream", a->stream);
        add_num(j, "n_prompt", np);
        add_num(j, "n_gen", ng);
        add_num(j, "max_tokens", a->max_tokens);
        add_num(j, "age_ms", now - a->started_ms);
    }
    cJSON *sv = cJSON_AddObjectToObject(root, "server");
    uint64_t total = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < SRV_OUT_N; i++) total += o->requests[k][i];
    add_num(sv, "requests", (double)total);
    add_num(sv, "prompt_tokens", (double)o->prompt_tokens);
    add_num(sv, "completion_tokens", (double)o->completion_tokens);
    add_num(sv, "in_flight", o->n_active);
    pthread_mutex_unlock(&o->mu);
    out = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    free(tps);
    free(nodes);
    free(st);
    return out;
}
