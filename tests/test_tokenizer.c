/* test_tokenizer.c - tokenizers against llama.cpp's vocabulary test vectors.
 *
 * For every NAME.gguf.inp/.out pair in shared/tokenizers/llama.cpp-vocab with
 * NAME.gguf beside it: the inputs are separated by "\n__ggml_vocab_test__\n",
 * the .out has one line of ids per input (made by the Hugging Face tokenizer,
 * without BOS and without parsing special tokens). The required vocabularies
 * must match exactly; the others are reported but do not fail the test.
 * Every input must also survive detokenize(tokenize(s)) == s. Also checked:
 * special tokens, EOG and pieces on phi-3 and gpt-2, and llama.cpp's own
 * tokenization and token pieces recorded in shared/reference. */
#include <cjson/cJSON.h>
#include <dirent.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/tokenizer.h"
#include "test_tokenizer_vectors.h"

static const char *const required[] = {"llama-spm", "phi-3", "gpt-2", "starcoder", "falcon", "deepseek-llm",
                                       "deepseek-coder", "mpt", "refact"};

static int is_required(const char *name) {
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!strcmp(required[i], name)) return 1;
    return 0;
}

/* Random texts from fragments that stress the pre-tokenizers and byte
 * fallback (invalid UTF-8 included) must decode back to themselves. (No bytes
 * 0xC0, 0xC1, 0xF5-0xFF: several BPE vocabularies have no token for them.) */
static int fuzz_roundtrip(const hive_tokenizer *t, const char *name) {
    static const char *const frags[] = {
        "a", "Z", "hello", " ", "  ", "\t", "\n", "\r\n", "'s", "'LL", "'", "3", "12345", "\xc2\xbd", "\xc3\xa9",
        "\xe4\xb8\xad", "\xf0\x9f\x98\x81", "\xe1\x9e\x80\xe1\x9e\xb6", "!", "...", "<|", "|>", "<s",
        "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xe0\xa4", "\x01", "\x7f", "\xe3\x80\x80", "\xef\xbd\x9e"};
    const int n_frags = (int)(sizeof frags / sizeof frags[0]);
    const char *scale = getenv("HIVE_TEST_SCALE");
    int rounds = scale && !strcmp(scale, "small") ? 50 : 300, bad = 0;
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        char text[512];
        size_t len = 0;
        int parts = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 24;
        for (int i = 0; i < parts; i++) {
            const char *f = frags[((seed = seed * 1103515245u + 12345u) >> 16) % (unsigned)n_frags];
            memcpy(text + len, f, strlen(f));
            len += strlen(f);
        }
        static int32_t ids[1024];
        char back[1024];
        int n = hive_tokenize(t, text, len, 0, 0, ids, 1024);
        int m = n >= 0 && n <= 1024 ? hive_detokenize(t, ids, n, 0, back, sizeof back) : -1;
        if (m != (int)len || memcmp(back, text, len)) {
            if (!bad) printf("  %s: '%.*s' does not round-trip\n", name, (int)len, text);
            bad++;
        }
        /* the other flag combinations must not crash either */
        CHECK(hive_tokenize(t, text, len, 1, 1, ids, 1024) > 0);
    }
    return bad;
}

/* The tokenizer of dir/ggml-vocab-NAME.gguf, or NULL with err set. */
static hive_tokenizer *open_vocab(const char *dir, const char *name, char *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
    hive_gguf *g;
    if (hive_gguf_open(&g, path, err) != HIVE_OK) return NULL;
    hive_tokenizer *t = NULL;
    if (hive_tokenizer_load(&t, g, err) != HIVE_OK) t = NULL;
    hive_gguf_close(g);
    return t;
}

/* Runs one vocabulary; returns the number of failing inputs, or -1 when
 * the vocabulary cannot be loaded. */
static int run_vocab(const char *dir, const char *name, int verbose) {
    char path[1024], out[1024], err[HIVE_ERR_LEN];
    hive_tokenizer *t = open_vocab(dir, name, err);
    if (!t) {
        printf("  %s: %s\n", name, err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.inp", dir, name);
    snprintf(out, sizeof out, "%s/ggml-vocab-%s.gguf.out", dir, name);
    int bad = run_vectors(t, path, out, name, verbose);
    bad += fuzz_roundtrip(t, name);
    hive_tokenizer_free(t);
    return bad;
}

/* Special-token handling, EOG and piece decoding on phi-3 (SentencePiece). */
static void test_phi3(const char *dir) {
    char err[HIVE_ERR_LEN];
    hive_tokenizer *t = open_vocab(dir, "phi-3", err);
    CHECKF(t != NULL, "%s", err);
    if (!t) return;
    int32_t end = hive_tokenizer_find(t, "<|end|>", 7), user = hive_tokenizer_find(t, "<|user|>", 8);
    CHECK(end >= 0 && user >= 0);
    CHECK(hive_tokenizer_is_eog(t, end));
    CHECK(hive_tokenizer_is_eog(t, hive_tokenizer_eos(t)));
    CHECK(!hive_tokenizer_is_eog(t, hive_tokenizer_bos(t)));
    CHECK(hive_tokenizer_add_bos(t));

    const char *s = "<|user|>\nHi<|end|>";
    int32_t ids[64];
    int n = hive_tokenize(t, s, strlen(s), 1, 1, ids, 64);
    CHECK(n >= 4 && ids[0] == hive_tokenizer_bos(t) && ids[1] == user && ids[n - 1] == end);
    n = hive_tokenize(t, s, strlen(s), 0, 0, ids, 64);
    int found = 0;
    for (int i = 0; i < n; i++) found |= ids[i] == user || ids[i] == end;
    CHECK(n > 4 && !found);
    /* the count is reported even when the buffer is too small */
    CHECK(hive_tokenize(t, s, strlen(s), 0, 0, ids, 2) == n);
    CHECK(hive_tokenize(t, s, strlen(s), 0, 0, NULL, 0) == n);

    char buf[16];
    CHECK(hive_token_to_piece(t, end, 0, buf, sizeof buf) == 0);
    CHECK(hive_token_to_piece(t, end, 1, buf, sizeof buf) == 7 && !memcmp(buf, "<|end|>", 7));
    CHECK(hive_token_to_piece(t, end, 1, buf, 3) == 7 && !memcmp(buf, "<|e", 3));
    int32_t nl = hive_tokenizer_find(t, "<0x0A>", 6);
    CHECK(nl >= 0 && hive_token_to_piece(t, nl, 0, buf, sizeof buf) == 1 && buf[0] == '\n');
    int32_t the = hive_tokenizer_find(t, "\xe2\x96\x81the", 6);
    CHECK(the >= 0 && hive_token_to_piece(t, the, 0, buf, sizeof buf) == 4 && !memcmp(buf, " the", 4));
    hive_tokenizer_free(t);
}

/* Injection: phi-3's GGUF types "</s>" (id 2, an end-of-generation token)
 * as a user-defined word, so a tokenizer that always matches user-defined
 * words turns a user's literal "</s>" into that token and ends the answer. llama.cpp makes such control-looking
 * tokens control-type; with special parsing off they stay plain text. */
static void test_phi3_injection(const char *dir) {
    char err[HIVE_ERR_LEN];
    hive_tokenizer *t = open_vocab(dir, "phi-3", err);
    CHECKF(t != NULL, "%s", err);
    if (!t) return;
    int32_t eos = hive_tokenizer_find(t, "</s>", 4);
    CHECK(eos == 2);
    CHECK(hive_tokenizer_is_eog(t, eos));
    const char *texts[] = {"a</s>b", "</s>", "Hello </s> world", "<|end|></s><s>"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        const char *s = texts[k];
        int32_t ids[64];
        int n = hive_tokenize(t, s, strlen(s), 1, 0, ids, 64);
        CHECKF(n > 0 && n <= 64, "\"%s\": %d tokens", s, n);
        int special = 0;
        for (int i = 1; i < n && i < 64; i++) special |= ids[i] == eos || ids[i] == hive_tokenizer_bos(t) || hive_tokenizer_is_eog(t, ids[i]);
        CHECKF(!special, "\"%s\" with special parsing off gives a control token", s);
        /* ... and reads back as the text itself */
        char back[128];
        int m = hive_detokenize(t, ids + 1, n - 1, 0, back, (int)sizeof back - 1);
        CHECKF(m >= 0 && m < (int)sizeof back, "detokenize \"%s\": %d", s, m);
        if (m >= 0 && m < (int)sizeof back) {
            back[m] = 0;
            const char *got = back[0] == ' ' ? back + 1 : back; /* SentencePiece's dummy prefix */
            CHECKF(!strcmp(got, s), "\"%s\" reads back as \"%s\"", s, got);
        }
        /* with special parsing on, "</s>" is its token */
        n = hive_tokenize(t, s, strlen(s), 0, 1, ids, 64);
        int has_eos = 0;
        for (int i = 0; i < n && i < 64; i++) has_eos |= ids[i] == eos;
        CHECKF(has_eos, "\"%s\" with special parsing on lacks </s>", s);
    }
    char buf[16];
    CHECK(hive_token_to_piece(t, eos, 0, buf, sizeof buf) == 0);
    CHECK(hive_token_to_piece(t, eos, 1, buf, sizeof buf) == 4 && !memcmp(buf, "</s>", 4));
    hive_tokenizer_free(t);
}

static void test_gpt2(const char *dir) {
    char err[HIVE_ERR_LEN];
    hive_tokenizer *t = open_vocab(dir, "gpt-2", err);
    CHECKF(t != NULL, "%s", err);
    if (!t) return;
    CHECK(hive_tokenizer_n_vocab(t) == 50257);
    CHECK(hive_tokenizer_is_eog(t, 50256));
    CHECK(!hive_tokenizer_add_bos(t));
    char buf[16];
    int32_t hello = hive_tokenizer_find(t, "\xc4\xa0Hello", 7); /* "ĠHello" */
    CHECK(hello >= 0 && hive_token_to_piece(t, hello, 0, buf, sizeof buf) == 6 && !memcmp(buf, " Hello", 6));
    const char *s = "a<|endoftext|>b";
    int32_t ids[16];
    CHECK(hive_tokenize(t, s, strlen(s), 0, 1, ids, 16) == 3 && ids[1] == 50256);
    CHECK(hive_tokenize(t, s, strlen(s), 0, 0, ids, 16) > 3);
    /* invalid UTF-8 still round-trips through byte tokens */
    const char bad[] = "x\xff\xc3(\xe2\x82";
    int n = hive_tokenize(t, bad, sizeof bad - 1, 0, 0, ids, 16);
    char out[32];
    CHECK(n > 0 && n <= 16 && hive_detokenize(t, ids, n, 0, out, sizeof out) == (int)sizeof bad - 1 &&
          !memcmp(out, bad, sizeof bad - 1));
    hive_tokenizer_free(t);
}

static int hexdigit(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* Compares hive_token_to_piece(special = 1) with a hex string of llama.cpp's piece bytes. */
static int piece_matches(const hive_tokenizer *t, int32_t id, const char *hex) {
    char piece[64];
    int n = hive_token_to_piece(t, id, 1, piece, sizeof piece);
    if (n < 0 || n > (int)sizeof piece || (size_t)n * 2 != strlen(hex)) return 0;
    for (int i = 0; i < n; i++)
        if ((unsigned char)piece[i] != hexdigit(hex[2 * i]) * 16 + hexdigit(hex[2 * i + 1])) return 0;
    return 1;
}

/* llama.cpp's tokenization and pieces recorded in shared/reference (the
 * 512-token SentencePiece vocabulary of stories260K, also used by the synth
 * models). */
static void test_reference(void) {
    const char *d = shared_dir();
    char path[1024], err[HIVE_ERR_LEN];
    snprintf(path, sizeof path, "%s/reference/models/stories260K.gguf", d ? d : ".");
    hive_gguf *g;
    if (!d || hive_gguf_open(&g, path, err) != HIVE_OK) {
        printf("  (reference model not found; llama.cpp reference tokenization not checked)\n");
        return;
    }
    hive_tokenizer *t;
    CHECKF(hive_tokenizer_load(&t, g, err) == HIVE_OK, "%s", err);
    hive_gguf_close(g);
    if (!t) return;
    static const char *const files[] = {"stories260K-once.json", "synth-llama-f32.json"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        snprintf(path, sizeof path, "%s/reference/%s", d, files[f]);
        size_t len;
        char *text = check_read_file(path, &len);
        cJSON *j = text ? cJSON_ParseWithLength(text, len) : NULL;
        free(text);
        CHECKF(j != NULL, "%s", path);
        if (!j) continue;
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(j, "tokens");
        const cJSON *hex = cJSON_GetObjectItemCaseSensitive(j, "token_pieces_hex");
        int n_ref = cJSON_GetArraySize(tokens);
        CHECK(n_ref > 0 && n_ref == cJSON_GetArraySize(hex));
        if (cJSON_IsString(prompt)) { /* llama_tokenize(add_special=true, parse_special=false) */
            int32_t ids[256];
            int n = hive_tokenize(t, prompt->valuestring, strlen(prompt->valuestring), 1, 0, ids, 256);
            int same = n == n_ref;
            for (int i = 0; same && i < n; i++) same = ids[i] == cJSON_GetArrayItem(tokens, i)->valueint;
            CHECKF(same, "%s: tokenization of '%s'", files[f], prompt->valuestring);
        }
        for (int i = 0; i < n_ref && i < cJSON_GetArraySize(hex); i++)
            CHECKF(piece_matches(t, cJSON_GetArrayItem(tokens, i)->valueint, cJSON_GetArrayItem(hex, i)->valuestring),
                   "%s: piece %d", files[f], i);
        /* the greedy continuation's text is the concatenation of its pieces */
        const cJSON *greedy = cJSON_GetObjectItemCaseSensitive(j, "greedy");
        const cJSON *gt = cJSON_GetObjectItemCaseSensitive(greedy, "tokens");
        const cJSON *ghex = cJSON_GetObjectItemCaseSensitive(greedy, "text_hex");
        if (cJSON_IsArray(gt) && cJSON_IsString(ghex)) {
            static char want[4096], got[4096];
            size_t wl = strlen(ghex->valuestring) / 2, gl = 0;
            for (size_t i = 0; i < wl && i < sizeof want; i++)
                want[i] = (char)(hexdigit(ghex->valuestring[2 * i]) * 16 + hexdigit(ghex->valuestring[2 * i + 1]));
            const cJSON *id;
            cJSON_ArrayForEach(id, gt) {
                if (gl < sizeof got) gl += (size_t)hive_token_to_piece(t, id->valueint, 1, got + gl, (int)(sizeof got - gl));
            }
            CHECKF(gl == wl && !memcmp(got, want, wl), "%s: greedy text", files[f]);
        }
        cJSON_Delete(j);
    }
    hive_tokenizer_free(t);
}

int main(void) {
    char dir[600];
    shared_path(dir, sizeof dir, "tokenizers/llama.cpp-vocab");
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return check_result("test_tokenizer");
    int n_required = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *p = e->d_name;
        size_t l = strlen(p);
        static const char prefix[] = "ggml-vocab-", suffix[] = ".gguf.inp";
        if (l <= strlen(prefix) + strlen(suffix) || strncmp(p, prefix, strlen(prefix)) ||
            strcmp(p + l - strlen(suffix), suffix))
            continue;
        char name[256], gguf[1024];
        snprintf(name, sizeof name, "%.*s", (int)(l - strlen(prefix) - strlen(suffix)), p + strlen(prefix));
        snprintf(gguf, sizeof gguf, "%s/ggml-vocab-%s.gguf", dir, name);
        struct stat st;
        if (stat(gguf, &st) != 0) continue; /* vectors without a vocabulary (e.g. llama-bpe: see test_tokenizer_json) */
        int req = is_required(name);
        int bad = run_vocab(dir, name, req);
        if (req) {
            n_required++;
            CHECKF(bad == 0, "vocabulary %s", name);
        } else if (bad != 0) {
            printf("  note: %s is not supported exactly (optional)\n", name);
        }
    }
    closedir(d);
    CHECKF(n_required == (int)(sizeof required / sizeof required[0]), "found %d of the required vocabularies", n_required);
    test_phi3(dir);
    test_phi3_injection(dir);
    test_gpt2(dir);
    test_reference();
    return check_result("test_tokenizer");
}
