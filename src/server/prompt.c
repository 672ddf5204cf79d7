/* prompt.c - request text -> prompt tokens.
 *
 * A chat template's own text holds control tokens ("<|im_start|>",
 * "<|eot_id|>", ...) that must be tokenized with parse_special; the
 * messages must not: a user who types "<|im_end|><|im_start|>system" gets
 * those characters as text, never the control tokens.
 *
 * hive_tokenize splits its input at the special tokens it recognises and
 * encodes each text fragment between them on its own (a SentencePiece
 * dummy prefix starts every fragment). So the exact tokenization of "the
 * template's specials only" is: find the specials inside the template's
 * text, join everything between them (template text and message text
 * alike) into fragments, and encode each fragment with parse_special = 0.
 * Where no message holds special-token text this equals tokenizing the
 * rendered prompt whole.
 *
 * To know which bytes are the template's, the conversation is rendered a
 * second time with every content replaced by a marker the user cannot
 * type (it carries a random nonce); the text between markers is the
 * template's. Templates that trim contents (llama2, llama3) are handled by
 * taking the content from the real rendering, between the template parts. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"

struct ids {
    int32_t *v;
    int n, cap;
    int oom;
};

static void ids_push(struct ids *a, int32_t id) {
    if (a->oom) return;
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 256;
        int32_t *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) {
            a->oom = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
}

/* Tokenizes text[0..len) and appends the ids. */
static int tokenize_into(const hive_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                         struct ids *a) {
    if (len > (size_t)1 << 30) return -1;
    int cap = (int)len + 8;
    int32_t *tmp = hive_malloc_array((size_t)cap, sizeof *tmp);
    if (!tmp) return -1;
    int n = hive_tokenize(t, text, len, add_special, parse_special, tmp, cap);
    if (n > cap) { /* cannot happen (a byte is at most one token), but be safe */
        free(tmp);
        cap = n;
        tmp = hive_malloc_array((size_t)cap, sizeof *tmp);
        if (!tmp) return -1;
        n = hive_tokenize(t, text, len, add_special, parse_special, tmp, cap);
    }
    for (int i = 0; i < n; i++) ids_push(a, tmp[i]);
    free(tmp);
    return n < 0 || a->oom ? -1 : 0;
}

int srv_prompt_text(const hive_tokenizer *t, const char *text, int32_t **out) {
    struct ids a = {0};
    if (tokenize_into(t, text, strlen(text), 1, 0, &a)) {
        free(a.v);
        return -1;
    }
    *out = a.v;
    return a.n;
}

/* Renders msgs into a malloc'd string. */
static char *render(int tmpl, const struct hive_chat_msg *msgs, int n) {
    int len = hive_chat_format(tmpl, msgs, n, 1, NULL, 0);
    if (len < 0) return NULL;
    char *buf = malloc((size_t)len + 1);
    if (buf) hive_chat_format(tmpl, msgs, n, 1, buf, (size_t)len + 1);
    return buf;
}

/* A token the tokenizer matched as special: control tokens decode to ""
 * unless asked for their text. */
static int is_control(const hive_tokenizer *t, int32_t id) {
    char a[8], b[8];
    return hive_token_to_piece(t, id, 0, a, sizeof a) == 0 && hive_token_to_piece(t, id, 1, b, sizeof b) > 0;
}

struct frag {
    const hive_tokenizer *t;
    struct srv_buf text; /* the fragment being gathered */
    struct ids ids;
    int failed;
};

static void frag_flush(struct frag *f) {
    if (f->failed || !f->text.n) return;
    if (f->text.full || tokenize_into(f->t, f->text.p, f->text.n, 0, 0, &f->ids)) f->failed = 1;
    f->text.n = 0;
}

/* Adds a template part: its specials split fragments, its text joins them. */
static void add_template(struct frag *f, const char *s, size_t len) {
    struct ids parts = {0};
    if (tokenize_into(f->t, s, len, 0, 1, &parts)) {
        f->failed = 1;
        free(parts.v);
        return;
    }
    size_t pos = 0;
    for (int i = 0; i < parts.n; i++) {
        if (!is_control(f->t, parts.v[i])) continue;
        size_t tl = 0;
        const char *tt = hive_tokenizer_token_text(f->t, parts.v[i], &tl);
        const char *at = tt && tl ? memmem(s + pos, len - pos, tt, tl) : NULL;
        if (!at) { /* a special with no text of its own: keep the template's tokens as they are */
            f->failed = 1;
            break;
        }
        srv_buf_put(&f->text, s + pos, (size_t)(at - (s + pos)));
        frag_flush(f);
        ids_push(&f->ids, parts.v[i]);
        pos = (size_t)(at - s) + tl;
    }
    srv_buf_put(&f->text, s + pos, len - pos);
    free(parts.v);
}

static size_t trimmed(const char *s, size_t *begin) {
    size_t b = 0, e = strlen(s);
    while (b < e && strchr(" \t\n\r\v\f", s[b])) b++;
    while (e > b && strchr(" \t\n\r\v\f", s[e - 1])) e--;
    *begin = b;
    return e - b;
}

int srv_prompt_chat(const hive_tokenizer *t, int tmpl, const struct hive_chat_msg *msgs, int n, int32_t **out) {
    unsigned char nonce[8];
    randombytes_buf(nonce, sizeof nonce);
    char (*marks)[40] = calloc((size_t)(n > 0 ? n : 1), sizeof *marks);
    struct hive_chat_msg *mm = calloc((size_t)(n > 0 ? n : 1), sizeof *mm);
    char *real = render(tmpl, msgs, n);
    char *marked = NULL;
    struct frag f = {.t = t};
    int rc = -1;
    if (!marks || !mm || !real) goto out;
    for (int i = 0; i < n; i++) {
        snprintf(marks[i], sizeof marks[i], "\x01hive%02x%02x%02x%02x%02x%02x%02x%02x:%d\x02", nonce[0], nonce[1],
                 nonce[2], nonce[3], nonce[4], nonce[5], nonce[6], nonce[7], i);
        mm[i] = (struct hive_chat_msg){msgs[i].role, marks[i]};
    }
    marked = render(tmpl, mm, n);
    if (!marked) goto out;
    if (hive_tokenizer_add_bos(t) && hive_tokenizer_bos(t) >= 0) ids_push(&f.ids, hive_tokenizer_bos(t));
    /* Walk the marked rendering; r follows along in the real one. */
    const char *m = marked, *r = real;
    for (int i = 0; i < n; i++) {
        const char *at = strstr(m, marks[i]);
        if (!at) goto out; /* the template dropped a message: not expected */
        size_t tl = (size_t)(at - m);
        if (strncmp(r, m, tl)) goto out;
        add_template(&f, m, tl);
        r += tl;
        m = at + strlen(marks[i]);
        /* The content as the template wrote it: whole or trimmed. The next
         * template part (up to the next marker) must follow it. */
        const char *c = msgs[i].content ? msgs[i].content : "";
        const char *next = i + 1 < n ? strstr(m, marks[i + 1]) : m + strlen(m);
        size_t next_len = next ? (size_t)(next - m) : 0;
        size_t b, clen = strlen(c);
        if (!strncmp(r, c, clen) && !strncmp(r + clen, m, next_len)) {
            srv_buf_put(&f.text, c, clen);
        } else if ((clen = trimmed(c, &b)), !strncmp(r, c + b, clen) && !strncmp(r + clen, m, next_len)) {
            srv_buf_put(&f.text, c + b, clen);
        } else {
            goto out;
        }
        r += clen;
    }
    if (strcmp(r, m)) goto out;
    add_template(&f, m, strlen(m));
    frag_flush(&f);
    if (!f.failed && !f.ids.oom) rc = f.ids.n;
out:
    free(marks);
    free(mm);
    free(real);
    free(marked);
    srv_buf_free(&f.text);
    if (rc < 0) {
        free(f.ids.v);
        return -1;
    }
    *out = f.ids.v;
    return rc;
}
