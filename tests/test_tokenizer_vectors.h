/* test_tokenizer_vectors.h - shared by the tokenizer tests: runs a
 * tokenizer over a llama.cpp vocabulary test pair (NAME.inp: inputs
 * separated by "\n__ggml_vocab_test__\n"; NAME.out: one line of ids per
 * input, tokenized without BOS and without parsing special tokens) and
 * checks detokenize(tokenize(s)) == s for every input. */
#ifndef HIVE_TEST_TOKENIZER_VECTORS_H
#define HIVE_TEST_TOKENIZER_VECTORS_H

#include "check.h"
#include "hive/tokenizer.h"

/* Returns the number of failing inputs (tokenization or decoding), or -1
 * when the files cannot be read. verbose prints every mismatch. */
static int run_vectors(const hive_tokenizer *t, const char *inp_path, const char *out_path, const char *name,
                       int verbose) {
    size_t inp_len, out_len;
    char *inp = check_read_file(inp_path, &inp_len);
    char *outs = check_read_file(out_path, &out_len);
    if (!inp || !outs) {
        printf("  %s: cannot read %s / %s\n", name, inp_path, out_path);
        free(inp), free(outs);
        return -1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int bad = 0, cases = 0, bad_decode = 0;
    char *text = inp, *line = outs;
    static int32_t ids[4096], want[4096];
    static char decoded[1 << 16];
    for (char *end; (end = strstr(text, sep)) && *line; text = end + strlen(sep), cases++) {
        size_t len = (size_t)(end - text);
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        int n_want = 0;
        for (char *p = line, *q; n_want < 4096; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p) break;
            want[n_want++] = (int32_t)v;
        }
        int n = hive_tokenize(t, text, len, 0, 0, ids, 4096);
        int same = n == n_want;
        for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
        if (!same) {
            bad++;
            if (verbose) {
                printf("  %s case %d %.*s\n    want:", name, cases, (int)(len > 60 ? 60 : len), text);
                for (int i = 0; i < n_want; i++) printf(" %d", want[i]);
                printf("\n    got: ");
                for (int i = 0; i < n && i < 4096; i++) printf(" %d", ids[i]);
                printf("\n");
            }
        }
        if (n >= 0 && n <= 4096) {
            int m = hive_detokenize(t, ids, n, 0, decoded, (int)sizeof decoded);
            if (m != (int)len || memcmp(decoded, text, len)) {
                bad_decode++;
                if (verbose) printf("  %s case %d: decode gives '%.*s'\n", name, cases, m > 80 ? 80 : m, decoded);
            }
        }
        line = eol ? eol + 1 : line + strlen(line);
    }
    printf("  %-16s %d inputs, %d tokenization mismatches, %d decode mismatches\n", name, cases, bad, bad_decode);
    if (cases != 46) printf("  %s: expected 46 inputs\n", name);
    free(inp), free(outs);
    return bad + bad_decode + (cases != 46);
}

#endif
