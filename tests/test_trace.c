/* test_trace.c - trace events exported as Chrome trace JSON: the file parses
 * as JSON (cJSON), events keep their fields, times are shifted to start at
 * 0, names are escaped, and track names appear as metadata events. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hive/trace.h"

int main(void) {
    char dir[] = "/tmp/hive-trace-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/t.json", dir);

    hive_trace *t = hive_trace_new();
    CHECK(t != NULL);
    CHECK(hive_trace_name_process(t, 0, "head") == HIVE_OK);
    CHECK(hive_trace_name_process(t, 1, "node \"one\"") == HIVE_OK);
    CHECK(hive_trace_name_thread(t, 1, 0, "stage 0") == HIVE_OK);
    CHECK(hive_trace_name_process(t, 0, "head (renamed)") == HIVE_OK);
    /* Many events to exercise growth; origin is the earliest ts (1000). */
    for (int i = 0; i < 1000; i++)
        CHECK(hive_trace_complete(t, "compute", "stage", 1, 0, 2000.0 + i * 10, 5.5, "token", i) == HIVE_OK);
    CHECK(hive_trace_complete(t, "hop\tin", NULL, 0, 3, 1000.0, -4, NULL, 0) == HIVE_OK);
    CHECK(hive_trace_n_events(t) == 1001);
    char err[HIVE_ERR_LEN];
    CHECK(hive_trace_write_json(t, path, err) == HIVE_OK);
    CHECK(hive_trace_write_json(t, "/nonexistent-dir/x.json", err) == HIVE_ERR_IO);
    hive_trace_free(t);

    char *text = check_read_file(path, NULL);
    CHECK(text != NULL);
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    CHECKF(doc != NULL, "trace is not valid JSON");
    if (doc) {
        cJSON *ev = cJSON_GetObjectItem(doc, "traceEvents");
        CHECK(cJSON_IsArray(ev));
        int n_x = 0, n_m = 0, saw_hop = 0, saw_renamed = 0, saw_quoted = 0;
        double min_ts = 1e30;
        cJSON *e;
        cJSON_ArrayForEach(e, ev) {
            const char *ph = cJSON_GetStringValue(cJSON_GetObjectItem(e, "ph"));
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
            CHECK(ph && name);
            if (!ph || !name) continue;
            if (!strcmp(ph, "M")) {
                n_m++;
                const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "args"), "name"));
                if (v && !strcmp(v, "head (renamed)")) saw_renamed = 1;
                if (v && !strcmp(v, "node \"one\"")) saw_quoted = 1;
                continue;
            }
            CHECK(!strcmp(ph, "X"));
            n_x++;
            double ts = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "ts"));
            double dur = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "dur"));
            if (ts < min_ts) min_ts = ts;
            CHECK(dur >= 0);
            if (!strcmp(name, "hop\tin")) {
                saw_hop = 1;
                CHECK(dur == 0 && ts == 0);
                CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "tid")) == 3);
            } else {
                int tok = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "args"), "token"));
                CHECK(fabs(ts - (1000.0 + tok * 10)) < 1e-6);
                CHECK(fabs(dur - 5.5) < 1e-6);
                CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e, "pid")) == 1);
            }
        }
        CHECK(n_x == 1001);
        CHECK(n_m == 3);
        CHECK(saw_hop && saw_renamed && saw_quoted);
        CHECK(min_ts == 0);
        cJSON_Delete(doc);
    }
    free(text);
    unlink(path);
    rmdir(dir);
    return check_result("test_trace");
}
