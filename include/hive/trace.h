/* trace.h - timing events and their export as Chrome trace JSON (opens in
 * Perfetto, ui.perfetto.dev, or chrome://tracing).
 *
 * A trace is a list of "complete" events (ph "X"): a name, a category, a
 * process id and thread id that place it on a track, a start time and a
 * duration in microseconds. Processes and threads can be given names (ph "M"
 * metadata events). The pipeline uses pid = node (0 = head), tid = stage.
 *
 * Format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
 *   {"traceEvents":[{"name":..,"cat":..,"ph":"X","ts":us,"dur":us,"pid":..,"tid":..,"args":{..}}, ...],
 *    "displayTimeUnit":"ms"}
 * Non-goals: flow arrows, counters, streaming output. */
#ifndef HIVE_TRACE_H
#define HIVE_TRACE_H

#include <stdint.h>

#include "hive/core.h"

typedef struct hive_trace hive_trace;

hive_trace *hive_trace_new(void);
void hive_trace_free(hive_trace *t);

/* Names the track of a process / thread. Later calls replace earlier names. */
int hive_trace_name_process(hive_trace *t, int pid, const char *name);
int hive_trace_name_thread(hive_trace *t, int pid, int tid, const char *name);

/* Records a complete event. ts_us is any monotonic origin (it is shifted so
 * the earliest event starts at 0 on export); dur_us >= 0. arg_name/arg_value
 * add one numeric argument shown in the viewer (arg_name may be NULL).
 * Returns HIVE_OK or HIVE_ERR_NOMEM. */
int hive_trace_complete(hive_trace *t, const char *name, const char *cat, int pid, int tid, double ts_us,
                        double dur_us, const char *arg_name, double arg_value);

int64_t hive_trace_n_events(const hive_trace *t);

/* Writes the JSON document. */
int hive_trace_write_json(const hive_trace *t, const char *path, char *err);

#endif
