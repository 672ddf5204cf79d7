/* sample.c - token samplers (see hive/sample.h).
 *
 * Order of the stochastic chain, as in llama.cpp's common defaults:
 *   penalties (repetition, frequency, presence) -> top-k -> top-p -> min-p -> temperature -> draw.
 * top-k / top-p / min-p look at the distribution at temperature 1; the
 * temperature only reshapes what survives. Greedy (temperature <= 0) still
 * applies the penalties, then takes the argmax (ties -> lowest id).
 *
 * Everything is deterministic given the sampler state: candidates are sorted
 * by (logit desc, id asc) and the RNG is splitmix64 seeded from params.seed. */
#include "hive/sample.h"

#include "hive/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hive_sampler_params hive_sampler_default_params(void) {
    struct hive_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.0f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

int hive_sampler_params_check(const struct hive_sampler_params *p, char *err) {
    if (!p) return hive_errf(err, HIVE_ERR_INVAL, "no sampling parameters");
    if (!isfinite(p->temperature) || p->temperature < 0.0f || p->temperature > 1e6f)
        return hive_errf(err, HIVE_ERR_INVAL, "temperature %g out of range: must be >= 0 (0 = greedy)",
                         (double)p->temperature);
    if (!isfinite(p->top_p) || !(p->top_p > 0.0f) || p->top_p > 1.0f)
        return hive_errf(err, HIVE_ERR_INVAL, "top_p %g out of range: must be in (0, 1] (1 = off)", (double)p->top_p);
    if (!isfinite(p->min_p) || p->min_p < 0.0f || p->min_p > 1.0f)
        return hive_errf(err, HIVE_ERR_INVAL, "min_p %g out of range: must be in [0, 1] (0 = off)", (double)p->min_p);
    if (p->top_k < 0)
        return hive_errf(err, HIVE_ERR_INVAL, "top_k %d out of range: must be >= 0 (0 = off)", (int)p->top_k);
    if (!isfinite(p->repeat_penalty) || !(p->repeat_penalty > 0.0f) || p->repeat_penalty > 1e6f)
        return hive_errf(err, HIVE_ERR_INVAL, "repeat_penalty %g out of range: must be > 0 (1 = off)",
                         (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || p->presence_penalty < -2.0f || p->presence_penalty > 2.0f)
        return hive_errf(err, HIVE_ERR_INVAL, "presence_penalty %g out of range: must be in [-2, 2] (0 = off)",
                         (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty) || p->frequency_penalty < -2.0f || p->frequency_penalty > 2.0f)
        return hive_errf(err, HIVE_ERR_INVAL, "frequency_penalty %g out of range: must be in [-2, 2] (0 = off)",
                         (double)p->frequency_penalty);
    if (p->repeat_last_n < 0 || p->repeat_last_n > HIVE_SAMPLER_HISTORY)
        return hive_errf(err, HIVE_ERR_INVAL, "repeat_last_n %d out of range: must be in [0, %d]", (int)p->repeat_last_n,
                         HIVE_SAMPLER_HISTORY);
    return HIVE_OK;
}

void hive_sampler_init(struct hive_sampler *s, const struct hive_sampler_params *p) {
    memset(s, 0, sizeof *s);
    s->p = p ? *p : hive_sampler_default_params();
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    if (s->p.repeat_last_n > HIVE_SAMPLER_HISTORY) s->p.repeat_last_n = HIVE_SAMPLER_HISTORY;
    s->rng = s->p.seed;
}

void hive_sampler_accept(struct hive_sampler *s, int32_t token) {
    s->history[s->n_history % HIVE_SAMPLER_HISTORY] = token;
    if (s->n_history < INT32_MAX) s->n_history++;
}

/* splitmix64: one 64-bit output per call, full period over the state. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t *state) { return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0); }

static int32_t argmax(const float *logits, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* llama.cpp-style penalties over the last repeat_last_n accepted tokens.
 * Each distinct token of the window, with count = its occurrences there:
 *   repetition: logit divided by the penalty when positive, multiplied when
 *               negative (once, however often it occurred);
 *   frequency / presence (OpenAI): logit -= frequency * count + presence. */
static void apply_penalties(const struct hive_sampler *s, float *logits, int32_t n_vocab) {
    float penalty = s->p.repeat_penalty, freq = s->p.frequency_penalty, pres = s->p.presence_penalty;
    int rep_on = penalty != 1.0f && penalty > 0.0f;
    if ((!rep_on && freq == 0.0f && pres == 0.0f) || s->p.repeat_last_n <= 0) return;
    int32_t window = s->p.repeat_last_n;
    if (window > s->n_history) window = s->n_history;
    if (window > HIVE_SAMPLER_HISTORY) window = HIVE_SAMPLER_HISTORY;
    int32_t seen[HIVE_SAMPLER_HISTORY];
    int count[HIVE_SAMPLER_HISTORY];
    int n_seen = 0;
    for (int32_t k = 0; k < window; k++) {
        int32_t tok = s->history[(s->n_history - 1 - k) % HIVE_SAMPLER_HISTORY];
        if (tok < 0 || tok >= n_vocab) continue;
        int j = 0;
        while (j < n_seen && seen[j] != tok) j++;
        if (j == n_seen) {
            seen[n_seen] = tok;
            count[n_seen++] = 0;
        }
        count[j]++;
    }
    for (int j = 0; j < n_seen; j++) {
        float *l = &logits[seen[j]];
        if (rep_on) *l = *l > 0.0f ? *l / penalty : *l * penalty;
        *l -= (float)count[j] * freq + pres;
    }
}

struct candidate {
    float logit;
    int32_t id;
};

static int cmp_candidate(const void *a, const void *b) {
    const struct candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Keeps the k best candidates of cand[0..n) (sorted, best first). */
static int32_t keep_top_k(struct candidate *cand, int32_t n, int32_t k) {
    if (k <= 0 || k >= n) {
        qsort(cand, (size_t)n, sizeof *cand, cmp_candidate);
        return n;
    }
    /* Insertion into a sorted prefix of k: O(n k) worst case but k is small
     * in practice and this needs no extra memory. */
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        struct candidate c = cand[i];
        if (m == k && cmp_candidate(&c, &cand[k - 1]) >= 0) continue;
        int32_t j = m < k ? m++ : k - 1;
        while (j > 0 && cmp_candidate(&c, &cand[j - 1]) < 0) {
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = c;
    }
    return m;
}

/* The sampling distribution after penalties, top-k, top-p, min-p and
 * temperature: the n survivors in cand (best first) with unnormalized
 * weights prob[0..n) summing to *sum. Returns n, or -1 when out of memory. */
static int32_t sampling_dist(const struct hive_sampler *s, const float *logits, int32_t n_vocab,
                             struct candidate *cand, double *prob, double *sum_out) {
    for (int32_t i = 0; i < n_vocab; i++) cand[i] = (struct candidate){logits[i], i};
    int32_t n = keep_top_k(cand, n_vocab, s->p.top_k);

    /* Distribution at temperature 1 over the survivors (sorted, best first). */
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += prob[i] = exp((double)cand[i].logit - (double)cand[0].logit);
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        int32_t keep = n;
        for (int32_t i = 0; i < n; i++) {
            cum += prob[i] / sum;
            if (cum >= (double)s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (s->p.min_p > 0.0f) {
        /* prob[0] is the largest (== 1 before normalization). */
        int32_t keep = 1;
        while (keep < n && prob[keep] >= (double)s->p.min_p * prob[0]) keep++;
        n = keep;
    }

    /* Temperature. */
    double inv_t = 1.0 / (double)s->p.temperature;
    sum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double diff = (double)cand[i].logit - (double)cand[0].logit; /* <= 0 */
        sum += prob[i] = diff == 0.0 ? 1.0 : exp(diff * inv_t);      /* 0 * inf would be NaN */
    }
    *sum_out = sum;
    return n;
}

/* Draws from prob[0..n) (weights summing to sum), skipping index `skip`
 * (-1: none). */
static int32_t draw(uint64_t *rng, const double *prob, int32_t n, double sum, int32_t skip) {
    double u = rng_uniform(rng) * sum, cum = 0.0;
    int32_t pick = -1;
    for (int32_t i = 0; i < n; i++) {
        if (i == skip) continue;
        pick = i; /* the last one left, should rounding leave u past the end */
        cum += prob[i];
        if (u < cum) break;
    }
    return pick;
}

/* Shared by hive_sample and hive_sample_verify: draft < 0 samples plainly. */
static int32_t sample_or_verify(struct hive_sampler *s, float *logits, int32_t n_vocab, int32_t draft) {
    if (n_vocab <= 0) return 0;
    apply_penalties(s, logits, n_vocab);
    if (!(s->p.temperature > 0.0f)) return argmax(logits, n_vocab);

    struct candidate *cand = hive_malloc_array((size_t)n_vocab, sizeof *cand);
    double *prob = hive_malloc_array((size_t)n_vocab, sizeof *prob);
    if (!cand || !prob) { /* no memory: degrade to greedy rather than fail */
        free(cand);
        free(prob);
        return argmax(logits, n_vocab);
    }
    double sum;
    int32_t n = sampling_dist(s, logits, n_vocab, cand, prob, &sum);
    int32_t skip = -1;
    if (draft >= 0) {
        /* The draft proposed one token with certainty (q(draft) = 1): accept
         * it with probability p(draft); otherwise draw from the rest of p,
         * renormalized, which is max(0, p - q) normalized. Either way the
         * token has exactly the distribution p. */
        int32_t at = 0;
        while (at < n && cand[at].id != draft) at++;
        if (at < n) {
            if (rng_uniform(&s->rng) * sum < prob[at] || sum - prob[at] <= 0.0) {
                free(cand);
                free(prob);
                return draft;
            }
            sum -= prob[at];
            skip = at;
        }
    }
    int32_t id = cand[draw(&s->rng, prob, n, sum, skip)].id;
    free(cand);
    free(prob);
    return id;
}

int32_t hive_sample(struct hive_sampler *s, float *logits, int32_t n_vocab) {
    return sample_or_verify(s, logits, n_vocab, -1);
}

int32_t hive_sample_verify(struct hive_sampler *s, float *logits, int32_t n_vocab, int32_t draft) {
    return sample_or_verify(s, logits, n_vocab, draft < 0 || draft >= n_vocab ? -1 : draft);
}

/* ---- wire form ----
 * | temp f32 | top_k i32 | top_p f32 | min_p f32 | rep_pen f32 | rep_last_n i32 |
 * | presence f32 | frequency f32 | seed u64 | rng u64 | history i32 x HIVE_SAMPLER_HISTORY | n_history i32 |   all little-endian */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_f32(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
static float get_f32(const uint8_t *p) {
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

void hive_sampler_encode(const struct hive_sampler *s, uint8_t out[HIVE_SAMPLER_WIRE_BYTES]) {
    uint8_t *p = out;
    put_f32(p, s->p.temperature), p += 4;
    put_u32(p, (uint32_t)s->p.top_k), p += 4;
    put_f32(p, s->p.top_p), p += 4;
    put_f32(p, s->p.min_p), p += 4;
    put_f32(p, s->p.repeat_penalty), p += 4;
    put_u32(p, (uint32_t)s->p.repeat_last_n), p += 4;
    put_f32(p, s->p.presence_penalty), p += 4;
    put_f32(p, s->p.frequency_penalty), p += 4;
    put_u64(p, s->p.seed), p += 8;
    put_u64(p, s->rng), p += 8;
    for (int i = 0; i < HIVE_SAMPLER_HISTORY; i++) put_u32(p, (uint32_t)s->history[i]), p += 4;
    put_u32(p, (uint32_t)s->n_history);
}

int hive_sampler_decode(struct hive_sampler *s, const uint8_t in[HIVE_SAMPLER_WIRE_BYTES]) {
    struct hive_sampler t;
    memset(&t, 0, sizeof t);
    const uint8_t *p = in;
    t.p.temperature = get_f32(p), p += 4;
    t.p.top_k = (int32_t)get_u32(p), p += 4;
    t.p.top_p = get_f32(p), p += 4;
    t.p.min_p = get_f32(p), p += 4;
    t.p.repeat_penalty = get_f32(p), p += 4;
    t.p.repeat_last_n = (int32_t)get_u32(p), p += 4;
    t.p.presence_penalty = get_f32(p), p += 4;
    t.p.frequency_penalty = get_f32(p), p += 4;
    t.p.seed = get_u64(p), p += 8;
    t.rng = get_u64(p), p += 8;
    for (int i = 0; i < HIVE_SAMPLER_HISTORY; i++) t.history[i] = (int32_t)get_u32(p), p += 4;
    t.n_history = (int32_t)get_u32(p);

    /* Ranges: every float finite, temperature and probabilities sane,
     * repetition penalty positive, presence/frequency in [-2, 2], window and history within the ring. */
    if (!isfinite(t.p.temperature) || t.p.temperature > 1e6f) return -1;
    if (!isfinite(t.p.top_p) || t.p.top_p < 0.0f) return -1;
    if (!isfinite(t.p.min_p) || t.p.min_p > 1.0f) return -1;
    if (!isfinite(t.p.repeat_penalty) || !(t.p.repeat_penalty > 0.0f) || t.p.repeat_penalty > 1e6f) return -1;
    if (t.p.repeat_last_n < 0 || t.p.repeat_last_n > HIVE_SAMPLER_HISTORY) return -1;
    if (!isfinite(t.p.presence_penalty) || t.p.presence_penalty < -2.0f || t.p.presence_penalty > 2.0f) return -1;
    if (!isfinite(t.p.frequency_penalty) || t.p.frequency_penalty < -2.0f || t.p.frequency_penalty > 2.0f) return -1;
    if (t.n_history < 0) return -1;
    int32_t filled = t.n_history < HIVE_SAMPLER_HISTORY ? t.n_history : HIVE_SAMPLER_HISTORY;
    for (int32_t i = 0; i < filled; i++)
        if (t.history[i] < 0) return -1;
    *s = t;
    return 0;
}
