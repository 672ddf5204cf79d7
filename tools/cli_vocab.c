/* cli_vocab.c - `hive vocab` and `hive tokenize`.
 *
 *   hive vocab tokenizer.json [--pre NAME] -o out.gguf
 *       converts a Hugging Face tokenizer.json into a vocab-only GGUF
 *   hive tokenize -m file.gguf [--no-bos] [--special] [--pieces] TEXT
 *       prints the token ids of TEXT ("-" reads stdin) on one line, or one
 *       "id<TAB>piece" line per token with --pieces */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/tokenizer.h"

static void vocab_usage(void) {
    fprintf(stderr,
            "usage: hive vocab tokenizer.json [--pre NAME] -o out.gguf\n"
            "  --pre NAME   pre-tokenizer: gpt-2 (default), llama-bpe, qwen2, deepseek-llm,\n"
            "               deepseek-coder, falcon, starcoder, refact, mpt, ...\n"
            "  -o PATH      output GGUF (tokenizer metadata only)\n"
            "bos/eos/add_bos/chat_template are read from a tokenizer_config.json beside\n"
            "the input (same name with tokenizer.json -> tokenizer_config.json).\n");
}

int cli_vocab(int argc, char **argv) {
    const char *in = NULL, *pre = "default", *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            vocab_usage();
            return 0;
        } else if ((!strcmp(a, "--pre") || !strcmp(a, "-o")) && i + 1 < argc) {
            if (a[1] == 'o') out = argv[++i];
            else pre = argv[++i];
        } else if (a[0] != '-' && !in) {
            in = a;
        } else {
            fprintf(stderr, "hive vocab: unexpected argument '%s'\n", a);
            vocab_usage();
            return 2;
        }
    }
    if (!in || !out) {
        vocab_usage();
        return 2;
    }
    char err[HIVE_ERR_LEN];
    double t0 = hive_now_ms();
    if (hive_vocab_from_tokenizer_json(in, pre, out, err) != HIVE_OK) {
        fprintf(stderr, "hive vocab: %s\n", err);
        return 1;
    }
    fprintf(stderr, "hive vocab: wrote %s (%.0f ms)\n", out, hive_now_ms() - t0);
    return 0;
}

static void tokenize_usage(void) {
    fprintf(stderr,
            "usage: hive tokenize -m file.gguf [--no-bos] [--special] [--pieces] TEXT\n"
            "  TEXT        the text, or - to read stdin\n"
            "  --no-bos    do not add BOS/EOS even when the model wants them\n"
            "  --special   recognise special token texts like <|im_end|>\n"
            "  --pieces    print one 'id<TAB>piece' line per token\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) free(buf);
        buf = bigger, cap *= 2;
    }
    *len = n;
    return buf;
}

/* Prints a piece with control bytes escaped so each token stays on one line. */
static void print_piece(const char *s, int n) {
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
}

int cli_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    int add_special = 1, parse_special = 0, pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage();
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--no-bos")) {
            add_special = 0;
        } else if (!strcmp(a, "--special")) {
            parse_special = 1;
        } else if (!strcmp(a, "--pieces")) {
            pieces = 1;
        } else if (!text && (a[0] != '-' || !strcmp(a, "-"))) {
            text = a;
        } else {
            fprintf(stderr, "hive tokenize: unexpected argument '%s'\n", a);
            tokenize_usage();
            return 2;
        }
    }
    if (!model || !text) {
        tokenize_usage();
        return 2;
    }
    char err[HIVE_ERR_LEN];
    hive_gguf *g;
    if (hive_gguf_open(&g, model, err) != HIVE_OK) {
        fprintf(stderr, "hive tokenize: %s\n", err);
        return 1;
    }
    hive_tokenizer *t;
    int rc = hive_tokenizer_load(&t, g, err);
    hive_gguf_close(g);
    if (rc != HIVE_OK) {
        fprintf(stderr, "hive tokenize: %s\n", err);
        return 1;
    }
    size_t len = strlen(text);
    char *owned = NULL;
    if (!strcmp(text, "-")) {
        text = owned = read_stdin(&len);
        if (!owned) {
            fprintf(stderr, "hive tokenize: out of memory\n");
            hive_tokenizer_free(t);
            return 1;
        }
    }
    int n = hive_tokenize(t, text, len, add_special, parse_special, NULL, 0);
    int32_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (n < 0 || (n > 0 && !ids)) {
        fprintf(stderr, "hive tokenize: tokenization failed\n");
        free(owned), free(ids), hive_tokenizer_free(t);
        return 1;
    }
    hive_tokenize(t, text, len, add_special, parse_special, ids, n);
    for (int i = 0; i < n; i++) {
        if (pieces) {
            char buf[256];
            int m = hive_token_to_piece(t, ids[i], 1, buf, (int)sizeof buf);
            printf("%d\t", ids[i]);
            print_piece(buf, m < (int)sizeof buf ? m : (int)sizeof buf);
            putchar('\n');
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!pieces) putchar('\n');
    free(owned);
    free(ids);
    hive_tokenizer_free(t);
    return 0;
}
