/* chat.c - chat template families: detection from the Jinja text in
 * tokenizer.chat_template, and formatting a conversation the way each
 * family's model card / template renders it.
 *
 * The leading BOS is never part of the text (tokenize with add_special = 1);
 * BOS/EOS texts between turns are (tokenize with parse_special = 1).
 *
 *   chatml  <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
 *   llama3  <|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|> ...
 *           <|start_header_id|>assistant<|end_header_id|>\n\n
 *   llama2  [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
 *           (contents trimmed, as in Meta's template)
 *   mistral [INST] {user} [/INST]{assistant}</s>[INST] {user} [/INST]
 *           (Mistral-7B-Instruct v0.1/v0.2 template; it has no system role,
 *           so a system message is put before the first user message,
 *           followed by a blank line)
 *   zephyr  <|{role}|>\n{content}</s>\n ... <|assistant|>\n
 *   phi3    <|{role}|>\n{content}<|end|>\n ... <|assistant|>\n
 *   none    the contents, one per line */
#include <string.h>

#include "hive/tokenizer.h"

struct out {
    char *buf;
    size_t cap, len;
};

static void put_n(struct out *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, o->len++)
        if (o->len + 1 < o->cap) o->buf[o->len] = s[i];
}

static void put(struct out *o, const char *s) { put_n(o, s, strlen(s)); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void put_trimmed(struct out *o, const char *s) {
    size_t b = 0, e = strlen(s);
    while (b < e && is_space(s[b])) b++;
    while (e > b && is_space(s[e - 1])) e--;
    put_n(o, s + b, e - b);
}

static const char *safe(const char *s) { return s ? s : ""; }

static int is_role(const struct hive_chat_msg *m, const char *role) { return m->role && !strcmp(m->role, role); }

/* Families whose turns are "<open>{role}<mid>{content}<close>". */
static void format_tagged(const struct hive_chat_msg *msgs, int n, int add_assistant, const char *open,
                          const char *mid, const char *close, int trim, struct out *o) {
    for (int i = 0; i < n; i++) {
        put(o, open), put(o, safe(msgs[i].role)), put(o, mid);
        if (trim) put_trimmed(o, safe(msgs[i].content));
        else put(o, safe(msgs[i].content));
        put(o, close);
    }
    if (add_assistant) put(o, open), put(o, "assistant"), put(o, mid);
}

static void format_inst(const struct hive_chat_msg *msgs, int n, int llama2, struct out *o) {
    const char *system = NULL;
    int first_user = 1, any = 0;
    for (int i = 0; i < n; i++) {
        const char *c = safe(msgs[i].content);
        if (is_role(&msgs[i], "system")) {
            system = c;
            continue;
        }
        if (is_role(&msgs[i], "assistant")) {
            if (llama2) put(o, " "), put_trimmed(o, c), put(o, " </s>");
            else put(o, c), put(o, "</s>");
            continue;
        }
        if (any && llama2) put(o, "<s>"); /* every llama2 user turn opens with BOS; the first comes from add_special */
        put(o, "[INST] ");
        if (system && first_user) {
            if (llama2) put(o, "<<SYS>>\n"), put(o, system), put(o, "\n<</SYS>>\n\n");
            else put(o, system), put(o, "\n\n");
        }
        if (llama2) put_trimmed(o, c);
        else put(o, c);
        put(o, " [/INST]");
        first_user = 0;
        any = 1;
    }
}

int hive_chat_format(int tmpl, const struct hive_chat_msg *msgs, int n_msgs, int add_assistant, char *buf,
                     size_t cap) {
    struct out o = {buf, buf ? cap : 0, 0};
    if (n_msgs < 0 || (n_msgs && !msgs)) n_msgs = 0;
    switch (tmpl) {
    case HIVE_CHAT_CHATML:
        format_tagged(msgs, n_msgs, add_assistant, "<|im_start|>", "\n", "<|im_end|>\n", 0, &o);
        break;
    case HIVE_CHAT_LLAMA3:
        format_tagged(msgs, n_msgs, add_assistant, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", 1, &o);
        break;
    case HIVE_CHAT_ZEPHYR:
        format_tagged(msgs, n_msgs, add_assistant, "<|", "|>\n", "</s>\n", 0, &o);
        break;
    case HIVE_CHAT_PHI3:
        format_tagged(msgs, n_msgs, add_assistant, "<|", "|>\n", "<|end|>\n", 0, &o);
        break;
    case HIVE_CHAT_LLAMA2:
    case HIVE_CHAT_MISTRAL:
        /* The model answers right after "[/INST]": no assistant prefix. */
        format_inst(msgs, n_msgs, tmpl == HIVE_CHAT_LLAMA2, &o);
        break;
    default:
        for (int i = 0; i < n_msgs; i++) put(&o, safe(msgs[i].content)), put(&o, "\n");
        break;
    }
    if (o.cap) o.buf[o.len < o.cap ? o.len : o.cap - 1] = 0;
    return o.len > INT32_MAX ? -1 : (int)o.len;
}

/* Whether needle occurs in s (memmem is a GNU extension Windows lacks). */
static int contains(struct hive_str s, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= s.len && i <= s.len - n; i++)
        if (!memcmp(s.ptr + i, needle, n)) return 1;
    return 0;
}

int hive_chat_template_detect(const hive_gguf *g) {
    struct hive_str s;
    if (!g || hive_gguf_get_str(g, "tokenizer.chat_template", &s) != HIVE_OK) return HIVE_CHAT_NONE;
    if (contains(s, "<|im_start|>")) return HIVE_CHAT_CHATML;
    if (contains(s, "<|start_header_id|>")) return HIVE_CHAT_LLAMA3;
    if (contains(s, "[INST]")) return contains(s, "<<SYS>>") ? HIVE_CHAT_LLAMA2 : HIVE_CHAT_MISTRAL;
    if (contains(s, "<|user|>")) return contains(s, "<|end|>") ? HIVE_CHAT_PHI3 : HIVE_CHAT_ZEPHYR;
    return HIVE_CHAT_NONE;
}

static const struct {
    const char *name;
    int tmpl;
} template_names[] = {
    {"none", HIVE_CHAT_NONE}, {"llama2", HIVE_CHAT_LLAMA2}, {"llama3", HIVE_CHAT_LLAMA3},
    {"chatml", HIVE_CHAT_CHATML}, {"mistral", HIVE_CHAT_MISTRAL}, {"zephyr", HIVE_CHAT_ZEPHYR},
    {"phi3", HIVE_CHAT_PHI3},
};

int hive_chat_template_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof template_names / sizeof template_names[0]; i++)
        if (!strcmp(name, template_names[i].name)) return template_names[i].tmpl;
    return -1;
}

const char *hive_chat_template_name(int tmpl) {
    for (size_t i = 0; i < sizeof template_names / sizeof template_names[0]; i++)
        if (template_names[i].tmpl == tmpl) return template_names[i].name;
    return "unknown";
}
