/* test_tokenizer_json.c - the tokenizer.json -> GGUF converter.
 *
 * Converts shared/tokenizers/llama3-tokenizer.json (pre llama-bpe) and
 * qwen3-tokenizer.json (pre qwen2) into a temporary directory and checks the
 * results against llama.cpp's ggml-vocab-llama-bpe / ggml-vocab-qwen2 test
 * vectors, plus the special ids and chat template taken from the files. When
 * the `hive` binary is built, `hive vocab` and `hive tokenize` are run too. */
#include <unistd.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/tokenizer.h"
#include "test_tokenizer_vectors.h"

struct expect {
    const char *json, *pre, *vectors;
    int32_t bos, eos, n_vocab;
    int add_bos, chat;
    const char *eog; /* a token that must end generation */
};

static void check_one(const char *tmp, const struct expect *x) {
    char json[1024], gguf[1024], inp[1024], out[1024], err[HIVE_ERR_LEN], rel[256];
    snprintf(rel, sizeof rel, "tokenizers/%s", x->json);
    shared_path(json, sizeof json, rel);
    snprintf(rel, sizeof rel, "tokenizers/llama.cpp-vocab/ggml-vocab-%s.gguf.inp", x->vectors);
    shared_path(inp, sizeof inp, rel);
    snprintf(rel, sizeof rel, "tokenizers/llama.cpp-vocab/ggml-vocab-%s.gguf.out", x->vectors);
    shared_path(out, sizeof out, rel);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmp, x->vectors);

    int rc = hive_vocab_from_tokenizer_json(json, x->pre, gguf, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc != HIVE_OK) return;
    hive_gguf *g;
    rc = hive_gguf_open(&g, gguf, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    if (rc != HIVE_OK) return;
    hive_tokenizer *t;
    rc = hive_tokenizer_load(&t, g, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    CHECKF(hive_chat_template_detect(g) == x->chat, "%s: chat template %d", x->json, hive_chat_template_detect(g));
    hive_gguf_close(g);
    if (rc != HIVE_OK) return;

    CHECKF(run_vectors(t, inp, out, x->vectors, 1) == 0, "%s vectors", x->vectors);
    CHECKF(hive_tokenizer_n_vocab(t) == x->n_vocab, "%s: n_vocab %d", x->json, hive_tokenizer_n_vocab(t));
    CHECKF(hive_tokenizer_bos(t) == x->bos, "%s: bos %d", x->json, hive_tokenizer_bos(t));
    CHECKF(hive_tokenizer_eos(t) == x->eos, "%s: eos %d", x->json, hive_tokenizer_eos(t));
    CHECK(hive_tokenizer_add_bos(t) == x->add_bos);
    CHECK(hive_tokenizer_is_eog(t, hive_tokenizer_find(t, x->eog, strlen(x->eog))));

    /* add_special prepends BOS only when the model wants it; specials parse */
    char text[128];
    snprintf(text, sizeof text, "%sHello", x->eog);
    int32_t ids[32];
    int n = hive_tokenize(t, text, strlen(text), 1, 1, ids, 32);
    int first = x->add_bos ? 1 : 0;
    CHECK(n == first + 2 && (!x->add_bos || ids[0] == x->bos) && hive_tokenizer_is_eog(t, ids[first]));
    char dec[128];
    CHECK(hive_detokenize(t, ids, n, 1, dec, sizeof dec) > 0 && strstr(dec, text));

    /* the CLI, when built */
    char hive[1024];
    snprintf(hive, sizeof hive, "%s/hive", HIVE_BIN_DIR);
    if (access(hive, X_OK) == 0) {
        char cmd[8192], cli_gguf[1100], line[256] = "";
        snprintf(cli_gguf, sizeof cli_gguf, "%s/cli-%s.gguf", tmp, x->vectors);
        snprintf(cmd, sizeof cmd, "'%s' vocab '%s' --pre %s -o '%s' 2>/dev/null && '%s' tokenize -m '%s' --no-bos 'Hello world'",
                 hive, json, x->pre, cli_gguf, hive, cli_gguf);
        FILE *p = popen(cmd, "r");
        CHECK(p != NULL);
        if (p) {
            if (!fgets(line, sizeof line, p)) line[0] = 0;
            CHECKF(pclose(p) == 0, "%s", cmd);
        }
        n = hive_tokenize(t, "Hello world", 11, 0, 0, ids, 32);
        char want[256] = "";
        for (int i = 0; i < n; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? " %d" : "%d", ids[i]);
        line[strcspn(line, "\n")] = 0;
        CHECKF(!strcmp(line, want), "hive tokenize printed '%s', want '%s'", line, want);
        unlink(cli_gguf);
    } else {
        printf("  (hive binary not built; CLI not checked)\n");
    }
    hive_tokenizer_free(t);
    unlink(gguf);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) fputs(text, f), fclose(f);
}

/* Broken tokenizer.json files and GGUF tokenizer metadata give errors, not crashes. */
static void check_malformed(const char *tmp) {
    char json[1100], gguf[1100], err[HIVE_ERR_LEN];
    snprintf(json, sizeof json, "%s/bad-tokenizer.json", tmp);
    snprintf(gguf, sizeof gguf, "%s/bad.gguf", tmp);
    static const struct {
        const char *text;
        int rc;
    } bad_json[] = {
        {"{", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\"}}", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}", HIVE_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 1.5}}}", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [1]}}", HIVE_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": \"x\"}]}", HIVE_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        write_text(json, bad_json[i].text);
        int rc = hive_vocab_from_tokenizer_json(json, "gpt-2", gguf, err);
        CHECKF(rc == bad_json[i].rc, "%s: got %d (%s)", bad_json[i].text, rc, err);
    }
    /* a tiny valid one: holes become [PAD] tokens, pairs and strings both work */
    write_text(json, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 3},"
                     " \"merges\": [[\"a\", \"b\"]]}, \"added_tokens\": [{\"id\": 5, \"content\": \"</s>\", \"special\": true}]}");
    CHECKF(hive_vocab_from_tokenizer_json(json, NULL, gguf, err) == HIVE_OK, "%s", err);
    hive_gguf *g;
    hive_tokenizer *t = NULL;
    if (hive_gguf_open(&g, gguf, err) == HIVE_OK) {
        CHECKF(hive_tokenizer_load(&t, g, err) == HIVE_OK, "%s", err);
        hive_gguf_close(g);
    }
    if (t) {
        int32_t ids[8];
        CHECK(hive_tokenizer_n_vocab(t) == 6 && hive_tokenizer_eos(t) == 5 && hive_tokenizer_is_eog(t, 5));
        CHECK(hive_tokenize(t, "ab", 2, 0, 0, ids, 8) == 1 && ids[0] == 3);
        CHECK(hive_tokenize(t, "ba</s>", 6, 1, 1, ids, 8) == 3 && ids[0] == 1 && ids[1] == 0 && ids[2] == 5);
        size_t len;
        const char *pad = hive_tokenizer_token_text(t, 2, &len);
        CHECK(pad && len == 6 && !memcmp(pad, "[PAD2]", 6));
        hive_tokenizer_free(t);
    }

    /* GGUF metadata: no tokenizer, unsupported model, inconsistent arrays */
    static const char *const toks[] = {"a", "b"};
    static const float scores[] = {0.0f};
    for (int c = 0; c < 4; c++) {
        hive_gguf_writer *w = hive_gguf_writer_new();
        CHECK(w != NULL);
        if (!w) return;
        if (c >= 1) hive_gguf_writer_set_str(w, "tokenizer.ggml.model", c == 1 ? "bert" : "llama");
        if (c >= 2) hive_gguf_writer_set_str_array(w, "tokenizer.ggml.tokens", toks, c == 2 ? 0 : 2);
        if (c == 3) hive_gguf_writer_set_array(w, "tokenizer.ggml.scores", HIVE_GGUF_FLOAT32, scores, 1);
        CHECKF(hive_gguf_writer_write(w, gguf, err) == HIVE_OK, "%s", err);
        hive_gguf_writer_free(w);
        if (hive_gguf_open(&g, gguf, err) != HIVE_OK) continue;
        int rc = hive_tokenizer_load(&t, g, err);
        hive_gguf_close(g);
        CHECKF(rc == (c == 1 ? HIVE_ERR_UNSUPPORTED : HIVE_ERR_FORMAT) && t == NULL, "case %d: %d %s", c, rc, err);
        if (c == 0) CHECK(strstr(err, "no tokenizer") != NULL);
    }
    unlink(json);
    unlink(gguf);
}

int main(void) {
    char tmp[] = "/tmp/hive-tokjson-XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    /* llama3: no tokenizer_config.json beside it, so bos/eos come from the
     * well-known names; qwen3: from qwen3-tokenizer_config.json. */
    static const struct expect cases[] = {
        {"llama3-tokenizer.json", "llama-bpe", "llama-bpe", 128000, 128001, 128256, 1, HIVE_CHAT_NONE, "<|eot_id|>"},
        {"qwen3-tokenizer.json", "qwen2", "qwen2", -1, 151645, 151669, 0, HIVE_CHAT_CHATML, "<|im_end|>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_one(tmp, &cases[i]);

    char err[HIVE_ERR_LEN];
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/none.gguf", tmp);
    CHECK(hive_vocab_from_tokenizer_json("/nonexistent/tokenizer.json", "qwen2", bad, err) == HIVE_ERR_IO);
    CHECK(hive_vocab_from_tokenizer_json("/nonexistent/tokenizer.json", "no-such-pre", bad, err) == HIVE_ERR_INVAL);
    check_malformed(tmp);
    rmdir(tmp);
    return check_result("test_tokenizer_json");
}
