/* test_tokenizer_chat.c - chat template formatting and detection.
 *
 * The expected strings are the renderings of a system + user + assistant +
 * user conversation (with the generation prompt) given in each family's
 * model card / Jinja template, minus the leading BOS, which the tokenizer
 * adds (add_special = 1). */
#include <unistd.h>

#include "check.h"
#include "hive/gguf.h"
#include "hive/tokenizer.h"

static const struct hive_chat_msg conv[] = {
    {"system", "You are helpful."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "How are you?"},
};

static void check_format(int tmpl, const char *want) {
    char buf[1024];
    int n = hive_chat_format(tmpl, conv, 4, 1, buf, sizeof buf);
    CHECKF(n == (int)strlen(want) && !strcmp(buf, want), "%s:\n got: '%s'\nwant: '%s'", hive_chat_template_name(tmpl), buf, want);
    /* snprintf-like: the length is reported even when nothing fits */
    CHECK(hive_chat_format(tmpl, conv, 4, 1, NULL, 0) == n);
    char small[8];
    CHECK(hive_chat_format(tmpl, conv, 4, 1, small, sizeof small) == n && strlen(small) == 7 && !strncmp(small, want, 7));
}

static void check_detect(const char *tmpdir, const char *jinja, int want) {
    char path[1100], err[HIVE_ERR_LEN];
    snprintf(path, sizeof path, "%s/t.gguf", tmpdir);
    hive_gguf_writer *w = hive_gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return;
    if (jinja) CHECK(hive_gguf_writer_set_str(w, "tokenizer.chat_template", jinja) == HIVE_OK);
    CHECK(hive_gguf_writer_set_str(w, "general.name", "chat-test") == HIVE_OK);
    int rc = hive_gguf_writer_write(w, path, err);
    CHECKF(rc == HIVE_OK, "%s", err);
    hive_gguf_writer_free(w);
    hive_gguf *g;
    if (rc == HIVE_OK && hive_gguf_open(&g, path, err) == HIVE_OK) {
        CHECKF(hive_chat_template_detect(g) == want, "template %.40s: got %d want %d", jinja ? jinja : "(none)",
               hive_chat_template_detect(g), want);
        hive_gguf_close(g);
    } else {
        CHECKF(0, "%s", err);
    }
    unlink(path);
}

int main(void) {
    check_format(HIVE_CHAT_CHATML,
                 "<|im_start|>system\nYou are helpful.<|im_end|>\n"
                 "<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n"
                 "<|im_start|>user\nHow are you?<|im_end|>\n"
                 "<|im_start|>assistant\n");
    check_format(HIVE_CHAT_LLAMA3,
                 "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_format(HIVE_CHAT_LLAMA2,
                 "[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
                 "<s>[INST] How are you? [/INST]");
    check_format(HIVE_CHAT_MISTRAL, "[INST] You are helpful.\n\nHi [/INST]Hello!</s>[INST] How are you? [/INST]");
    check_format(HIVE_CHAT_ZEPHYR,
                 "<|system|>\nYou are helpful.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n"
                 "<|user|>\nHow are you?</s>\n<|assistant|>\n");
    check_format(HIVE_CHAT_PHI3,
                 "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
                 "<|user|>\nHow are you?<|end|>\n<|assistant|>\n");

    /* llama3 trims contents; without add_assistant no prompt is appended */
    struct hive_chat_msg one = {"user", "  Hi\n"};
    char buf[256];
    hive_chat_format(HIVE_CHAT_LLAMA3, &one, 1, 0, buf, sizeof buf);
    CHECK(!strcmp(buf, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
    hive_chat_format(HIVE_CHAT_CHATML, &one, 1, 0, buf, sizeof buf);
    CHECK(!strcmp(buf, "<|im_start|>user\n  Hi\n<|im_end|>\n"));
    /* a conversation without a system message */
    hive_chat_format(HIVE_CHAT_LLAMA2, conv + 1, 1, 1, buf, sizeof buf);
    CHECK(!strcmp(buf, "[INST] Hi [/INST]"));
    CHECK(hive_chat_format(HIVE_CHAT_CHATML, NULL, 0, 0, buf, sizeof buf) == 0 && buf[0] == 0);

    static const char *const names[] = {"none", "llama2", "llama3", "chatml", "mistral", "zephyr", "phi3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int t = hive_chat_template_from_name(names[i]);
        CHECK(t >= 0 && !strcmp(hive_chat_template_name(t), names[i]));
    }
    CHECK(hive_chat_template_from_name("nope") == -1);

    char tmp[] = "/tmp/hive-tokchat-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    check_detect(tmp, NULL, HIVE_CHAT_NONE);
    check_detect(tmp, "{% for m in messages %}{{ m['content'] }}{% endfor %}", HIVE_CHAT_NONE);
    check_detect(tmp, "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{% endfor %}", HIVE_CHAT_CHATML);
    check_detect(tmp, "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}", HIVE_CHAT_LLAMA3);
    check_detect(tmp, "{% set content = '<<SYS>>\\n' + system_message %}{{ bos_token + '[INST] ' + content }}", HIVE_CHAT_LLAMA2);
    check_detect(tmp, "{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}", HIVE_CHAT_MISTRAL);
    check_detect(tmp, "{{ '<|user|>\n' + message['content'] + eos_token }}", HIVE_CHAT_ZEPHYR);
    check_detect(tmp, "{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}", HIVE_CHAT_PHI3);
    rmdir(tmp);

    /* the template stored in llama.cpp's phi-3 vocabulary */
    const char *d = shared_dir();
    if (d) {
        char path[1024], err[HIVE_ERR_LEN];
        snprintf(path, sizeof path, "%s/tokenizers/llama.cpp-vocab/ggml-vocab-phi-3.gguf", d);
        hive_gguf *g;
        if (hive_gguf_open(&g, path, err) == HIVE_OK) {
            CHECK(hive_chat_template_detect(g) == HIVE_CHAT_PHI3);
            hive_gguf_close(g);
        }
    }
    return check_result("test_tokenizer_chat");
}
