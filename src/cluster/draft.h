/* draft.h - where speculative decoding's drafts come from. Internal to
 * src/cluster; the scheduler (sched.c) is its only user.
 *
 * A draft proposes the next k tokens of a sequence; the ring then verifies
 * them in one batched pass (SEQ_VERIFY, see proto.h). Two sources:
 *   - prompt lookup (n-grams): the last few tokens are searched for earlier
 *     in the sequence and what followed them there is proposed. Free, and it
 *     pays off where text repeats (summaries, code edits, stories);
 *   - a draft model: a small model with the same vocabulary, run on the
 *     head, greedy. Each sequence keeps its own KV cache in it.
 * Drafts are deterministic (one token proposed with certainty), which is
 * what the verifier's accept/reject rule assumes (hive_sample_verify). */
#ifndef HIVE_CLUSTER_DRAFT_H
#define HIVE_CLUSTER_DRAFT_H

#include <stdint.h>

#include "hive/gguf.h"
#include "hive/model.h"

/* Prompt lookup: up to k tokens continuing log[0..n_log), from the earlier
 * place where the longest run of the last tokens (up to 8) occurred. Returns
 * how many (0: the last token never occurred before). */
int draft_ngram_propose(const int32_t *log, int n_log, int k, int32_t *out);

typedef struct draft_model draft_model;

/* A sequence's state in the draft model: its KV cache and the tokens that
 * cache holds (so that a rejected draft is rewound by comparing). */
struct draft_seq {
    hive_ctx *ctx;
    int32_t *fed;
    int n_fed, cap_fed;
};

/* Loads the draft model. Its vocabulary must be the target's (target: the
 * target model's GGUF): the same size and the same token texts, else
 * HIVE_ERR_INVAL naming the first difference. n_ctx: positions per sequence. */
int draft_model_open(draft_model **out, const char *path, const hive_gguf *target, int n_ctx, int n_threads,
                     char *err);
void draft_model_close(draft_model *d);
/* Greedy: up to k tokens continuing log[0..n_log). Returns how many (0 when
 * the draft model failed: the sequence decodes without a draft). */
int draft_model_propose(draft_model *d, struct draft_seq *q, const int32_t *log, int n_log, int k, int32_t *out);
void draft_seq_free(struct draft_seq *q);

/* ---- how many tokens to draft ----
 * The k that maximises expected tokens per unit of time:
 * (1 - a^(k+1)) / (1 - a) tokens for a draft token accepted with
 * probability a, over 1 + (row + drafting) k, where row is what a drafted
 * row adds to a pass and drafting what drafting a token costs, both
 * relative to a pass of one row. The pass cost is fitted (fixed part + per
 * row) over the decode steps; until it can be, a row costs
 * DRAFT_ROW_COST of a pass (a pass over a few more rows reads the same
 * weights). */
#define DRAFT_ROW_COST 0.1
struct draft_tuner {
    double w, x, y, xx, xy; /* decayed sums over decode steps: rows x, ring ms y */
    double ms_per_tok;      /* drafting, per drafted token */
};
/* A decode pass of `rows` rows took ms through the ring. */
void draft_tuner_pass(struct draft_tuner *t, uint32_t rows, double ms);
/* Drafting k tokens took ms. */
void draft_tuner_drafted(struct draft_tuner *t, double ms, int k);
/* The best k in [0, k_max] for a sequence whose drafts were accepted
 * acc_num of acc_den times (decayed counts). */
int draft_tuner_k(const struct draft_tuner *t, double acc_num, double acc_den, int k_max);

#endif
