/* fuzz.h - what every fuzz target in tests/fuzz shares.
 *
 * A target is one function, LLVMFuzzerTestOneInput(data, size), that must
 * not crash, leak, hang or trip a sanitizer on any input. The same file
 * links three ways:
 *   - clang -fsanitize=fuzzer          libFuzzer (scripts/fuzz.sh ... libfuzzer)
 *   - afl-clang-fast -fsanitize=fuzzer AFL++ persistent mode (its driver)
 *   - replay_main.c (gcc, CTest)       replays corpus/ and regress/ files
 * Targets set themselves up on their first call (static state), keep
 * nothing between calls that changes what a later input does, and stay
 * quiet (log level ERROR). */
#ifndef HIVE_FUZZ_H
#define HIVE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A cursor over the input: reads past the end yield zeros. */
struct fuzz_in {
    const uint8_t *p;
    size_t len, off;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in) { return in->off < in->len ? in->p[in->off++] : 0; }

static inline uint16_t fuzz_u16(struct fuzz_in *in) {
    uint16_t lo = fuzz_u8(in);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline size_t fuzz_left(const struct fuzz_in *in) { return in->len - in->off; }

/* Up to n bytes (fewer at the end); *got says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *got) {
    size_t left = fuzz_left(in);
    if (n > left) n = left;
    const uint8_t *p = in->p + in->off;
    in->off += n;
    *got = n;
    return p;
}

/* Aborts (a finding) when an invariant of the code under test breaks. */
#define FUZZ_ASSERT(cond)                                                              \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

#endif
