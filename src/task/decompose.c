/* decompose.c - the decomposition prompt and a forgiving parser of the
 * model's reply (see hive/decompose.h).
 *
 * Models wrap the list they were asked for in prose, in ``` fences, in
 * objects, or stop in the middle of it. Rather than cJSON-parsing the whole
 * reply (which fails on every one of those), the parser walks one array
 * element by element: it finds where each element ends by bracket and
 * quote matching, hands that slice alone to cJSON, and stops at the first
 * element that is cut off. Candidates are tried in order (every ``` block,
 * then the whole reply; in each, every '[' that opens a string or object
 * element) and the first that yields a subtask wins.
 * Non-goals: numbered prose lists ("1. ..."), nested decompositions. */
#include "hive/decompose.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/core.h"
#include "hive/tokenizer.h"

/* '[' candidates tried per region: bounds the work on a reply of brackets. */
#define MAX_CANDIDATES 64

int hive_decompose_prompt(int tmpl, const char *task, int max_subtasks, char *buf, size_t cap) {
    if (!task) return -1;
    if (max_subtasks < 2) max_subtasks = 2;
    if (max_subtasks > HIVE_DECOMPOSE_MAX_SUBTASKS) max_subtasks = HIVE_DECOMPOSE_MAX_SUBTASKS;
    static const char fmt[] =
        "Split the task below into at most %d independent subtasks that different people could do at the same "
        "time without seeing each other's work. Write each subtask as a complete, self-contained instruction. "
        "Answer with only a JSON array of strings, for example [\"first subtask\", \"second subtask\"], and "
        "nothing else. If the task cannot be split, answer with an array of one string: the task.\n\n"
        "Task: %s";
    int n = snprintf(NULL, 0, fmt, max_subtasks, task);
    if (n < 0) return -1;
    char *text = malloc((size_t)n + 1);
    if (!text) return -1;
    snprintf(text, (size_t)n + 1, fmt, max_subtasks, task);
    struct hive_chat_msg msg = {"user", text};
    int len = hive_chat_format(tmpl, &msg, 1, 1, buf, cap);
    free(text);
    return len;
}

/* ---- the list being built ---- */

struct list {
    char **text;
    int n, max;
    int nomem;
};

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Adds s (trimmed, capped) unless it is empty, a repeat, or the list is full. */
static void add(struct list *L, const char *s) {
    if (L->n >= L->max || L->nomem) return;
    while (is_space(*s)) s++;
    size_t n = strlen(s);
    while (n && is_space(s[n - 1])) n--;
    if (n > HIVE_DECOMPOSE_MAX_LEN) {
        n = HIVE_DECOMPOSE_MAX_LEN;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* not inside a UTF-8 sequence */
    }
    if (!n) return;
    for (int i = 0; i < L->n; i++)
        if (strlen(L->text[i]) == n && !memcmp(L->text[i], s, n)) return;
    char *t = malloc(n + 1);
    if (!t) {
        L->nomem = 1;
        return;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    L->text[L->n++] = t;
}

static void list_clear(struct list *L) {
    for (int i = 0; i < L->n; i++) free(L->text[i]);
    L->n = 0;
}

/* ---- scanning ---- */

/* p at '"': just past the closing quote, or NULL when the string is cut. */
static const char *string_end(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* p at '{' or '[': just past its match, or NULL when it is cut. */
static const char *bracket_end(const char *p, const char *end) {
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = string_end(p, end);
            if (!p) return NULL;
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if ((c == '}' || c == ']') && --depth == 0) return p + 1;
        p++;
    }
    return NULL;
}

/* Object fields that name the subtask, in order of preference. */
static const char *const FIELDS[] = {"task", "prompt", "subtask", "description", "text", "content"};

/* Adds the subtask that the JSON element [p, e) holds, if any. */
static void take(struct list *L, const char *p, const char *e) {
    cJSON *v = cJSON_ParseWithLength(p, (size_t)(e - p));
    if (!v) return;
    if (cJSON_IsString(v)) {
        add(L, v->valuestring);
    } else if (cJSON_IsObject(v)) {
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, FIELDS[i]);
            if (cJSON_IsString(f)) {
                add(L, f->valuestring);
                break;
            }
        }
    }
    cJSON_Delete(v);
}

static const char *skip_space(const char *p, const char *end) {
    while (p < end && is_space(*p)) p++;
    return p;
}

/* Walks the array opening at p ('['), adding its elements. *cut = 1 when
 * the text ends inside it. Other values (numbers, nested arrays) are skipped;
 * anything that is not JSON between elements ends the walk. */
static void walk_array(struct list *L, const char *p, const char *end, int *cut) {
    p++;
    for (;;) {
        p = skip_space(p, end);
        if (p >= end) {
            *cut = 1;
            return;
        }
        if (*p == ']') return;
        const char *e;
        if (*p == '"') e = string_end(p, end);
        else if (*p == '{' || *p == '[') e = bracket_end(p, end);
        else { /* a scalar: up to the next separator */
            e = p;
            while (e < end && *e != ',' && *e != ']' && !is_space(*e)) e++;
            if (e >= end) e = NULL;
        }
        if (!e) {
            *cut = 1;
            return;
        }
        take(L, p, e);
        p = skip_space(e, end);
        if (p >= end) {
            *cut = 1;
            return;
        }
        if (*p != ',') return; /* ']' or junk */
        p++;
    }
}

/* Tries the '[' in [p, end) that open a string or object element; the first
 * that yields at least one subtask wins. Returns 1 then. */
static int try_region(struct list *L, const char *p, const char *end, int *cut) {
    int tried = 0;
    for (; p < end && tried < MAX_CANDIDATES; p++) {
        if (*p != '[') continue;
        const char *q = skip_space(p + 1, end);
        if (q < end && *q != '"' && *q != '{') continue;
        tried++;
        int c = 0;
        walk_array(L, p, end, &c);
        if (L->n) {
            *cut = c;
            return 1;
        }
        if (L->nomem) return 0;
    }
    return 0;
}

/* The inside of each ``` block in turn (the info string "json" and the like
 * skipped; an unclosed block runs to the end). */
static int try_fences(struct list *L, const char *s, const char *end, int *cut) {
    const char *p = s;
    for (;;) {
        const char *open = memmem(p, (size_t)(end - p), "```", 3);
        if (!open) return 0;
        const char *body = open + 3;
        while (body < end && *body != '\n' && *body != '[') body++; /* the info string */
        const char *close = memmem(body, (size_t)(end - body), "```", 3);
        const char *stop = close ? close : end;
        if (try_region(L, body, stop, cut)) return 1;
        if (!close || L->nomem) return 0;
        p = close + 3;
    }
}

void hive_subtasks_free(struct hive_subtasks *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->text[i]);
    free(s->text);
    memset(s, 0, sizeof *s);
}

int hive_decompose_parse(const char *reply, size_t len, const char *task, int max_subtasks,
                         struct hive_subtasks *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!task) return hive_errf(err, HIVE_ERR_INVAL, "decompose: no task");
    if (max_subtasks < 1) max_subtasks = 1;
    if (max_subtasks > HIVE_DECOMPOSE_MAX_SUBTASKS) max_subtasks = HIVE_DECOMPOSE_MAX_SUBTASKS;
    struct list L = {hive_calloc((size_t)max_subtasks, sizeof(char *)), 0, max_subtasks, 0};
    if (!L.text) return hive_errf(err, HIVE_ERR_NOMEM, "decompose: out of memory");
    int cut = 0;
    if (reply) {
        if (len > HIVE_DECOMPOSE_MAX_REPLY) len = HIVE_DECOMPOSE_MAX_REPLY;
        const char *end = reply + len;
        if (!try_fences(&L, reply, end, &cut) && !L.nomem) {
            list_clear(&L);
            try_region(&L, reply, end, &cut);
        }
    }
    if (!L.n && !L.nomem) {
        /* The fallback keeps the task whole: it is the caller's text, not the model's. */
        char *t = strdup(task);
        if (t) L.text[L.n++] = t;
        else L.nomem = 1;
        out->fallback = 1;
        cut = 0;
    }
    if (L.nomem) {
        list_clear(&L);
        free(L.text);
        memset(out, 0, sizeof *out);
        return hive_errf(err, HIVE_ERR_NOMEM, "decompose: out of memory");
    }
    out->n = L.n;
    out->text = L.text;
    out->truncated = cut;
    return HIVE_OK;
}
