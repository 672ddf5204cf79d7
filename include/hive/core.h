/* core.h - errors, time, logging and the thread pool shared by every module.
 *
 * Error convention: fallible functions return an int code (HIVE_OK == 0) and
 * write a one-line, human-readable message into a caller-owned buffer
 * `char err[HIVE_ERR_LEN]` (which may be NULL when the caller does not care).
 * Only the CLI's main() exits. */
#ifndef HIVE_CORE_H
#define HIVE_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define HIVE_ERR_LEN 256

/* printf-style checking by GCC's own rules (%zu, %lld): mingw-w64's GCC
 * would check "printf" by the old Microsoft runtime's rules, while hive
 * builds with __USE_MINGW_ANSI_STDIO, whose printf is the C99 one. */
#if defined(__MINGW32__)
#define HIVE_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define HIVE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#endif

enum hive_status {
    HIVE_OK = 0,
    HIVE_ERR_NOMEM,       /* allocation failed */
    HIVE_ERR_IO,          /* file or socket I/O failed */
    HIVE_ERR_FORMAT,      /* malformed file contents (GGUF, JSON, ...) */
    HIVE_ERR_PROTO,       /* malformed or unexpected wire message */
    HIVE_ERR_TIMEOUT,     /* a deadline passed */
    HIVE_ERR_INVAL,       /* bad argument or user input */
    HIVE_ERR_AUTH,        /* peer failed authentication */
    HIVE_ERR_UNSUPPORTED, /* valid but not implemented (type, arch, ...) */
    HIVE_ERR_CLOSED,      /* peer closed the connection */
    HIVE_ERR_BUSY,        /* a queue or limit is full: try again later */
};

/* Formats a message into err (if not NULL) and returns code, so callers can
 * write `return hive_errf(err, HIVE_ERR_IO, "open %s: %s", path, strerror(errno));` */
int hive_errf(char *err, int code, const char *fmt, ...) HIVE_PRINTF(3, 4);

/* Name of a status code ("ok", "out of memory", ...). */
const char *hive_status_name(int code);

/* Monotonic clock. */
uint64_t hive_now_us(void);
double hive_now_ms(void);

/* Logging to stderr. Level is set once from HIVE_LOG (error|warn|info|debug),
 * default warn. */
enum hive_log_level { HIVE_LOG_ERROR = 0, HIVE_LOG_WARN, HIVE_LOG_INFO, HIVE_LOG_DEBUG };
void hive_log(int level, const char *fmt, ...) HIVE_PRINTF(2, 3);
void hive_log_set_level(int level);

/* Allocation helpers: NULL on overflow or failure, never abort. */
void *hive_malloc_array(size_t n, size_t size);
void *hive_calloc(size_t n, size_t size);
/* A growable byte buffer with a hard cap (max bytes), NUL-terminated after
 * each append. hive_membuf_write appends size*n bytes of data to the
 * struct hive_membuf at buf and has libcurl's write-callback shape, so it
 * collects an HTTP reply: it returns size*n, or 0 (curl then stops) when
 * the cap would be passed (too_big set) or memory runs out. The caller
 * frees p. */
struct hive_membuf {
    char *p;
    size_t n, max;
    int too_big;
};
size_t hive_membuf_write(char *data, size_t size, size_t n, void *buf);
/* 64-byte aligned allocation, freed with hive_free_aligned. */
void *hive_malloc_aligned(size_t n_bytes);
void hive_free_aligned(void *p);

/* ---- thread pool ----
 * A persistent pool of n_threads workers (the calling thread counts as thread
 * 0, so n_threads == 1 means no extra threads). hive_pool_run() calls
 * fn(arg, ith, nth) once on every thread and returns when all have finished.
 * Workers spin briefly between jobs (decode issues many small jobs) and then
 * sleep on a condition variable. Not reentrant: one run at a time per pool. */
typedef struct hive_pool hive_pool;
typedef void (*hive_task_fn)(void *arg, int ith, int nth);

hive_pool *hive_pool_create(int n_threads);
void hive_pool_free(hive_pool *pool);
int hive_pool_size(const hive_pool *pool);
void hive_pool_run(hive_pool *pool, hive_task_fn fn, void *arg);

/* Split [0, n) evenly: thread ith of nth gets [*begin, *end). */
void hive_split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end);

/* Median of v[0..n) (n >= 1); sorts v in place. For benchmark reports. */
double hive_median(double *v, int n);

/* Number of online CPUs (>= 1). */
int hive_cpu_count(void);
/* Memory this process may still take, in bytes: MemAvailable from
 * /proc/meminfo, capped by its cgroup's memory limit (v2 memory.max or v1
 * memory.limit_in_bytes, the tightest of the cgroup and its ancestors) minus
 * what that cgroup already uses (usage less inactive page cache). 0 if
 * unknown, or when the cgroup is full. */
uint64_t hive_mem_available(void);
/* The default memory budget of a node: half of hive_mem_available(), or
 * 1 GiB when neither /proc/meminfo nor a cgroup can be read. */
uint64_t hive_mem_budget_default(void);
/* The same two, reading /proc/... and the cgroup files under the path
 * prefix root ("" or NULL: the real ones). For tests. */
uint64_t hive_mem_available_at(const char *root);
uint64_t hive_mem_budget_default_at(const char *root);

#endif
