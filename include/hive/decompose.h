/* decompose.h - the queen's decomposition step: the prompt that asks a model
 * to split a task into independent subtasks, and a parser for its reply.
 *
 * The parser never fails on what the model says: a reply with no usable
 * list becomes one subtask, the whole task (fallback = 1). It takes
 *   - a JSON array of strings, alone, after prose, or inside ``` fences;
 *   - an array of objects with a "task" / "prompt" / "subtask" /
 *     "description" / "text" string field;
 *   - a truncated array (the model ran out of tokens): the complete
 *     elements before the cut are kept.
 * Elements are trimmed; empty ones and exact repeats are dropped; the count
 * is capped at max_subtasks and each text at HIVE_DECOMPOSE_MAX_LEN bytes
 * (cut on a UTF-8 boundary). */
#ifndef HIVE_DECOMPOSE_H
#define HIVE_DECOMPOSE_H

#include <stddef.h>

/* A hard cap on the count (a job's queue is sized by it) and on one
 * subtask's text (a prompt, not a document). */
#define HIVE_DECOMPOSE_MAX_SUBTASKS 256
#define HIVE_DECOMPOSE_MAX_LEN 4096
/* Replies are read up to this many bytes; a longer one is treated as cut. */
#define HIVE_DECOMPOSE_MAX_REPLY (1 << 20)

struct hive_subtasks {
    int n;
    char **text;  /* n malloc'd NUL-terminated strings */
    int fallback; /* 1: no list was found; text[0] is the task itself */
    int truncated;/* 1: the list was cut short; the complete elements are kept */
};

/* Writes the decomposition request for task, as a user turn of chat
 * template tmpl (enum hive_chat_template; HIVE_CHAT_NONE: plain text) with
 * the assistant prefix, into buf. Asks for at most max_subtasks (clamped to
 * [2, HIVE_DECOMPOSE_MAX_SUBTASKS]) independent subtasks as a JSON array of
 * strings. Returns the length (snprintf-like: >= cap means it was cut), or
 * -1 when task is NULL or the text cannot be built. */
int hive_decompose_prompt(int tmpl, const char *task, int max_subtasks, char *buf, size_t cap);

/* Parses a reply of len bytes (need not be NUL-terminated). max_subtasks is
 * clamped to [1, HIVE_DECOMPOSE_MAX_SUBTASKS]. Returns 0, or HIVE_ERR_NOMEM
 * / HIVE_ERR_INVAL (task NULL) with a message; out is then empty. Free with
 * hive_subtasks_free. */
int hive_decompose_parse(const char *reply, size_t len, const char *task, int max_subtasks,
                         struct hive_subtasks *out, char *err);
void hive_subtasks_free(struct hive_subtasks *s);

#endif
