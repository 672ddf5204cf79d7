/* sample.h - token samplers: greedy, temperature, top-k, top-p, min-p,
 * repetition, presence and frequency penalties, with a seeded RNG so a run
 * is reproducible.
 *
 * The sampler is plain data (no pointers) so that it can travel with a
 * request to the pipeline's last stage: serialize with hive_sampler_encode. */
#ifndef HIVE_SAMPLE_H
#define HIVE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define HIVE_SAMPLER_HISTORY 64 /* tokens remembered for the penalties */

struct hive_sampler_params {
    float temperature;     /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* window for the penalties, <= HIVE_SAMPLER_HISTORY */
    /* OpenAI semantics over the same window, as llama.cpp's penalties:
     * logit -= frequency_penalty * count + presence_penalty * (count > 0). */
    float presence_penalty;  /* 0: off; [-2, 2] */
    float frequency_penalty; /* 0: off; [-2, 2] */
    uint64_t seed;
};

struct hive_sampler {
    struct hive_sampler_params p;
    uint64_t rng;                          /* xorshift/splitmix state */
    int32_t history[HIVE_SAMPLER_HISTORY]; /* ring of recent tokens */
    int32_t n_history;                     /* total tokens accepted */
};

/* Defaults: greedy (temperature 0), top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1.0, repeat_last_n 64, presence/frequency 0, seed 0. */
struct hive_sampler_params hive_sampler_default_params(void);
/* HIVE_OK, or HIVE_ERR_INVAL with a message naming the field and its range
 * (err: HIVE_ERR_LEN bytes or NULL). Refuses temperature < 0, top_p outside
 * (0, 1], min_p outside [0, 1], top_k < 0, repeat_penalty <= 0, presence or
 * frequency penalty outside [-2, 2], repeat_last_n outside
 * [0, HIVE_SAMPLER_HISTORY], and any NaN or infinity. */
int hive_sampler_params_check(const struct hive_sampler_params *p, char *err);
void hive_sampler_init(struct hive_sampler *s, const struct hive_sampler_params *p);
/* Remember a token (prompt or generated) for the repetition penalty. */
void hive_sampler_accept(struct hive_sampler *s, int32_t token);
/* Picks a token from logits[n_vocab]; logits may be modified. Greedy picks
 * the highest logit, ties to the lowest id. Does not call accept. */
int32_t hive_sample(struct hive_sampler *s, float *logits, int32_t n_vocab);
/* Speculative decoding: verifies one drafted token against logits[n_vocab].
 * Greedy returns what hive_sample returns (the draft is accepted when they
 * agree). Sampling uses the accept/reject rule for a draft that proposed
 * `draft` with certainty: accept with probability p(draft), else draw from
 * p without it; the result is distributed exactly as hive_sample's. Does
 * not call accept. */
int32_t hive_sample_verify(struct hive_sampler *s, float *logits, int32_t n_vocab, int32_t draft);

/* Fixed-size little-endian wire form. */
#define HIVE_SAMPLER_WIRE_BYTES (4 * 8 + 8 + 8 + 4 * HIVE_SAMPLER_HISTORY + 4)
void hive_sampler_encode(const struct hive_sampler *s, uint8_t out[HIVE_SAMPLER_WIRE_BYTES]);
/* Returns 0, or -1 if a field is out of range. */
int hive_sampler_decode(struct hive_sampler *s, const uint8_t in[HIVE_SAMPLER_WIRE_BYTES]);

#endif
