/* core.c - errors, clock, logging, allocation helpers, system facts. */
#include "hive/core.h"
#include "hive/os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int hive_errf(char *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, HIVE_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *hive_status_name(int code) {
    switch (code) {
    case HIVE_OK: return "ok";
    case HIVE_ERR_NOMEM: return "out of memory";
    case HIVE_ERR_IO: return "I/O error";
    case HIVE_ERR_FORMAT: return "bad format";
    case HIVE_ERR_PROTO: return "protocol error";
    case HIVE_ERR_TIMEOUT: return "timeout";
    case HIVE_ERR_INVAL: return "invalid argument";
    case HIVE_ERR_AUTH: return "authentication failed";
    case HIVE_ERR_UNSUPPORTED: return "unsupported";
    case HIVE_ERR_CLOSED: return "connection closed";
    case HIVE_ERR_BUSY: return "busy";
    default: return "unknown error";
    }
}

uint64_t hive_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double hive_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int log_level = -1;

void hive_log_set_level(int level) { log_level = level; }

static int current_log_level(void) {
    if (log_level >= 0) return log_level;
    const char *s = getenv("HIVE_LOG");
    log_level = HIVE_LOG_WARN;
    if (s) {
        if (!strcmp(s, "error")) log_level = HIVE_LOG_ERROR;
        else if (!strcmp(s, "info")) log_level = HIVE_LOG_INFO;
        else if (!strcmp(s, "debug")) log_level = HIVE_LOG_DEBUG;
    }
    return log_level;
}

void hive_log(int level, const char *fmt, ...) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > current_log_level()) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "hive[%d] %s: %s\n", hive_os_pid(), names[level < 0 ? 0 : level > 3 ? 3 : level], line);
}

void *hive_malloc_array(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    size_t total = n * size;
    return malloc(total ? total : 1);
}

void *hive_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

size_t hive_membuf_write(char *data, size_t size, size_t n, void *buf) {
    struct hive_membuf *m = buf;
    size_t k = size * n;
    if (n && k / n != size) return 0;
    if (k > m->max || m->n > m->max - k) {
        m->too_big = 1;
        return 0;
    }
    char *q = realloc(m->p, m->n + k + 1);
    if (!q) return 0;
    memcpy(q + m->n, data, k);
    m->p = q;
    m->n += k;
    q[m->n] = 0;
    return k;
}

/* hive_malloc_aligned, hive_free_aligned and hive_cpu_count are the OS's:
 * src/core/os_posix.c, os_win.c. */

void hive_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end) {
    int64_t per = n / nth, extra = n % nth;
    *begin = ith * per + (ith < extra ? ith : extra);
    *end = *begin + per + (ith < extra ? 1 : 0);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double hive_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
