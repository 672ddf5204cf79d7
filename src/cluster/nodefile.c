/* nodefile.c - machines described on paper, for `hive plan --nodes FILE`
 * (see hive_plan_nodes_parse in hive/cluster.h): a JSON array of nodes, or
 * an object whose "nodes" member is one. Every field is checked; nothing
 * here measures anything. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hive/cluster.h"

/* A size: a number of bytes, or a string for hive_parse_size ("16G"). */
static int read_size(const cJSON *v, uint64_t *out) {
    if (cJSON_IsString(v)) return hive_parse_size(v->valuestring, out) ? -1 : 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1.8e19) {
        *out = (uint64_t)v->valuedouble;
        return 0;
    }
    return -1;
}

/* A non-negative finite number; absent: def. */
static int read_number(const cJSON *o, const char *key, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) return -1;
    *out = v->valuedouble;
    return 0;
}

int hive_plan_nodes_parse(const char *text, size_t len, struct hive_plan_node *out, int cap, int *n, char *err) {
    *n = 0;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return hive_errf(err, HIVE_ERR_FORMAT, "nodes: not valid JSON");
    const cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "nodes");
    int rc = HIVE_OK;
    if (!cJSON_IsArray(arr)) {
        rc = hive_errf(err, HIVE_ERR_FORMAT, "nodes: expected an array of nodes, or {\"nodes\": [...]}");
        goto done;
    }
    int count = cJSON_GetArraySize(arr);
    if (count < 1 || count > cap) {
        rc = hive_errf(err, HIVE_ERR_INVAL, "nodes: %d nodes (1 to %d)", count, cap);
        goto done;
    }
    const cJSON *o;
    int i = 0;
    cJSON_ArrayForEach(o, arr) {
        struct hive_plan_node *nd = &out[i];
        memset(nd, 0, sizeof *nd);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(name) && name->valuestring[0]) snprintf(nd->name, sizeof nd->name, "%s", name->valuestring);
        else snprintf(nd->name, sizeof nd->name, "node%d", i);
        double speed_gbs, mbps;
        if (!cJSON_IsObject(o) || read_size(cJSON_GetObjectItemCaseSensitive(o, "memory"), &nd->mem_budget)) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "nodes: %s: \"memory\" must be bytes or a size like \"14G\"", nd->name);
            goto done;
        }
        if (read_number(o, "speed_gbs", 0, &speed_gbs) || !(speed_gbs > 0)) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "nodes: %s: \"speed_gbs\" (weight GB/s through its kernels, > 0) is needed",
                           nd->name);
            goto done;
        }
        if (read_number(o, "latency_ms", 0, &nd->latency_ms) || read_number(o, "bandwidth_mbps", 0, &mbps)) {
            rc = hive_errf(err, HIVE_ERR_INVAL, "nodes: %s: \"latency_ms\" and \"bandwidth_mbps\" must be numbers >= 0",
                           nd->name);
            goto done;
        }
        nd->speed_bps = speed_gbs * 1e9;
        nd->bandwidth_bps = mbps * 1e6 / 8; /* bytes per second */
        i++;
    }
    *n = i;
done:
    cJSON_Delete(root);
    return rc;
}
