/* check.h - the tiny test harness every tests/test_*.c uses.
 * CHECK(cond) records a failure and continues; the test's main returns
 * check_result(). A test that needs ../shared calls shared_path() and
 * skips (exit 77) with a message when it is absent. */
#ifndef HIVE_TEST_CHECK_H
#define HIVE_TEST_CHECK_H

#undef NDEBUG
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hive/os.h"

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

/* A fresh private directory <OS temp dir>/<prefix>XXXXXX into buf (cap >=
 * 64); NULL (after perror) when it cannot be made. */
static inline char *check_temp_dir(char *buf, size_t cap, const char *prefix) {
    char base[512];
    hive_temp_dir(base, sizeof base);
    if ((size_t)snprintf(buf, cap, "%s/%sXXXXXX", base, prefix) >= cap || !hive_mkdtemp(buf)) {
        perror("mkdtemp");
        return NULL;
    }
    return buf;
}

static inline int check_result(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: %d checks passed\n", name, check_count);
    return 0;
}

/* The whole file, NUL-terminated (so text can be parsed in place); *len
 * (if len is not NULL) gets its size. NULL when it cannot be read whole.
 * The caller frees it. */
static inline void *check_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *buf = n >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

#define SKIP_CODE 77

/* Directory of the shared test data: $HIVE_SHARED, else ../shared beside the
 * source tree. NULL when absent. */
static inline const char *shared_dir(void) {
    const char *env = getenv("HIVE_SHARED");
    const char *d = env && *env ? env : HIVE_SHARED_DIR;
    struct stat st;
    return stat(d, &st) == 0 && S_ISDIR(st.st_mode) ? d : NULL;
}

/* Writes shared_dir()/rel into buf; exits 77 (skip) with a message when the
 * file is missing. */
static inline const char *shared_path(char *buf, size_t cap, const char *rel) {
    const char *d = shared_dir();
    struct stat st;
    if (d) snprintf(buf, cap, "%s/%s", d, rel);
    if (!d || stat(buf, &st) != 0) {
        printf("SKIP: shared test data %s not found (set HIVE_SHARED)\n", rel);
        exit(SKIP_CODE);
    }
    return buf;
}

#endif
