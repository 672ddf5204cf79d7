/* test_sample.c - samplers: greedy ties, top-k = 1 is greedy, sampling
 * frequencies follow softmax, filters, repetition, presence and frequency
 * penalties, range checks of the parameters, reproducibility, wire form
 * round trip and rejection of garbage. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "hive/core.h"
#include "hive/sample.h"

static struct hive_sampler_params params(float temp, int top_k, float top_p, float min_p, uint64_t seed) {
    struct hive_sampler_params p = hive_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    return p;
}

static void test_defaults(void) {
    struct hive_sampler_params p = hive_sampler_default_params();
    CHECK(p.temperature == 0.0f && p.top_k == 40 && fabsf(p.top_p - 0.95f) < 1e-7f);
    CHECK(fabsf(p.min_p - 0.05f) < 1e-7f && p.repeat_penalty == 1.0f && p.repeat_last_n == 64 && p.seed == 0);
    CHECK(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
    CHECK(hive_sampler_params_check(&p, NULL) == HIVE_OK);
}

static void test_greedy(void) {
    struct hive_sampler s;
    struct hive_sampler_params p = params(0.0f, 40, 0.95f, 0.05f, 1);
    hive_sampler_init(&s, &p);
    float logits[6] = {1.0f, 3.0f, -2.0f, 3.0f, 2.9f, 3.0f};
    CHECK(hive_sample(&s, logits, 6) == 1); /* ties -> lowest id */
    float neg[4] = {-5.0f, -1.0f, -1.0f, -3.0f};
    CHECK(hive_sample(&s, neg, 4) == 1);
    float one[1] = {0.0f};
    CHECK(hive_sample(&s, one, 1) == 0);

    /* top_k = 1 with a temperature equals greedy for any seed. */
    for (uint64_t seed = 0; seed < 50; seed++) {
        float l[8];
        for (int i = 0; i < 8; i++) l[i] = sinf((float)(i * 7 + (int)seed));
        int best = 0;
        for (int i = 1; i < 8; i++)
            if (l[i] > l[best]) best = i;
        p = params(1.5f, 1, 1.0f, 0.0f, seed);
        hive_sampler_init(&s, &p);
        CHECK(hive_sample(&s, l, 8) == best);
    }
}

/* Frequencies of a temperature-T draw follow softmax(logits / T). */
static void test_distribution(void) {
    const int n = 5, draws = 200000;
    const float logits0[5] = {2.0f, 1.0f, 0.5f, -1.0f, 0.0f};
    const float temps[2] = {1.0f, 0.7f};
    for (int ti = 0; ti < 2; ti++) {
        float t = temps[ti];
        struct hive_sampler s;
        struct hive_sampler_params p = params(t, 0, 1.0f, 0.0f, 1234 + (uint64_t)ti);
        hive_sampler_init(&s, &p);
        int counts[5] = {0};
        for (int k = 0; k < draws; k++) {
            float l[5];
            memcpy(l, logits0, sizeof l);
            int id = hive_sample(&s, l, n);
            CHECK(id >= 0 && id < n);
            if (id >= 0 && id < n) counts[id]++;
        }
        double z = 0.0;
        for (int i = 0; i < n; i++) z += exp(logits0[i] / t);
        for (int i = 0; i < n; i++) {
            double expect = exp(logits0[i] / t) / z, got = (double)counts[i] / draws;
            double sigma = sqrt(expect * (1 - expect) / draws);
            CHECKF(fabs(got - expect) < 5 * sigma + 1e-4, "T=%g id %d: freq %.4f vs softmax %.4f", t, i, got, expect);
        }
    }
}

/* Speculative decoding's accept/reject rule: whatever token was drafted,
 * the verified token has the sampler's distribution (here with top-k 3 too,
 * so a draft outside the survivors is covered); greedy verification is
 * greedy sampling. */
static void test_verify_distribution(void) {
    const int n = 5, draws = 200000;
    const float logits0[5] = {2.0f, 1.0f, 0.5f, -1.0f, 0.0f};
    for (int top_k = 0; top_k <= 3; top_k += 3) {
        for (int draft = 0; draft < n; draft++) {
            struct hive_sampler s;
            struct hive_sampler_params p = params(0.8f, top_k, 1.0f, 0.0f, 99 + (uint64_t)draft);
            hive_sampler_init(&s, &p);
            int counts[5] = {0};
            for (int k = 0; k < draws; k++) {
                float l[5];
                memcpy(l, logits0, sizeof l);
                int id = hive_sample_verify(&s, l, n, draft);
                CHECK(id >= 0 && id < n);
                if (id >= 0 && id < n) counts[id]++;
            }
            int kept = top_k ? top_k : n; /* logits0's best top_k are ids 0, 1, 2 */
            double z = 0.0;
            for (int i = 0; i < kept; i++) z += exp(logits0[i] / 0.8);
            for (int i = 0; i < n; i++) {
                double expect = i < kept ? exp(logits0[i] / 0.8) / z : 0, got = (double)counts[i] / draws;
                double sigma = sqrt(expect * (1 - expect) / draws);
                CHECKF(fabs(got - expect) < 5 * sigma + 1e-4, "top_k %d, draft %d: id %d freq %.4f, expected %.4f",
                       top_k, draft, i, got, expect);
            }
        }
    }
    struct hive_sampler g;
    struct hive_sampler_params gp = hive_sampler_default_params();
    hive_sampler_init(&g, &gp);
    for (int draft = -1; draft < n; draft++) {
        float l[5];
        memcpy(l, logits0, sizeof l);
        CHECK(hive_sample_verify(&g, l, n, draft) == 0);
    }
}

static void test_filters(void) {
    struct hive_sampler s;
    /* top-k 2: only ids 0 and 1 can appear. */
    float base[5] = {3.0f, 2.9f, 2.8f, 2.7f, 2.6f};
    struct hive_sampler_params p = params(1.0f, 2, 1.0f, 0.0f, 7);
    hive_sampler_init(&s, &p);
    int seen[5] = {0};
    for (int k = 0; k < 2000; k++) {
        float l[5];
        memcpy(l, base, sizeof l);
        seen[hive_sample(&s, l, 5)]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0 && seen[4] == 0);

    /* top-p: probabilities 0.5, 0.3, 0.2 -> p = 0.6 keeps two. */
    float pl[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    p = params(1.0f, 0, 0.6f, 0.0f, 9);
    hive_sampler_init(&s, &p);
    int seen3[3] = {0};
    for (int k = 0; k < 2000; k++) {
        float l[3];
        memcpy(l, pl, sizeof l);
        seen3[hive_sample(&s, l, 3)]++;
    }
    CHECK(seen3[0] > 0 && seen3[1] > 0 && seen3[2] == 0);

    /* min-p 0.5: keeps ids with p >= 0.5 * p_max -> 0.5 and 0.3 stay, 0.2 goes. */
    p = params(1.0f, 0, 1.0f, 0.5f, 11);
    hive_sampler_init(&s, &p);
    memset(seen3, 0, sizeof seen3);
    for (int k = 0; k < 2000; k++) {
        float l[3];
        memcpy(l, pl, sizeof l);
        seen3[hive_sample(&s, l, 3)]++;
    }
    CHECK(seen3[0] > 0 && seen3[1] > 0 && seen3[2] == 0);
}

static void test_repeat_penalty(void) {
    struct hive_sampler s;
    struct hive_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 0);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 2;
    hive_sampler_init(&s, &p);
    hive_sampler_accept(&s, 0); /* outside the window of 2 after the next two */
    hive_sampler_accept(&s, 1);
    hive_sampler_accept(&s, 1);
    hive_sampler_accept(&s, 2);
    float l[4] = {4.0f, 3.0f, -1.0f, 2.0f};
    int id = hive_sample(&s, l, 4);
    CHECK(id == 0);
    CHECK(l[0] == 4.0f);             /* not in the window */
    CHECK(l[1] == 1.5f);             /* positive: divided once, though seen twice */
    CHECK(l[2] == -2.0f);            /* negative: multiplied */
    CHECK(l[3] == 2.0f);
    /* Penalty changes the greedy choice. */
    float l2[3] = {2.0f, 3.0f, 1.0f};
    CHECK(hive_sample(&s, l2, 3) == 0);
}

/* OpenAI presence / frequency penalties over the window, as llama.cpp:
 * logit -= frequency * count + presence * (count > 0), after the repetition
 * penalty. */
static void test_presence_frequency(void) {
    struct hive_sampler s;
    struct hive_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 0);
    p.repeat_last_n = 4;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    hive_sampler_init(&s, &p);
    hive_sampler_accept(&s, 3); /* falls out of the window of 4 */
    hive_sampler_accept(&s, 1);
    hive_sampler_accept(&s, 1);
    hive_sampler_accept(&s, 1);
    hive_sampler_accept(&s, 2);
    float l[5] = {1.0f, 2.0f, 2.0f, 2.0f, -1.0f};
    CHECK(hive_sample(&s, l, 5) == 3);
    CHECK(l[0] == 1.0f);
    CHECK(l[1] == 2.0f - 3 * 0.25f - 0.5f); /* count 3 */
    CHECK(l[2] == 2.0f - 0.25f - 0.5f);     /* count 1 */
    CHECK(l[3] == 2.0f);                    /* outside the window */
    CHECK(l[4] == -1.0f);

    /* Combined with the repetition penalty: divide first, then subtract. */
    p.repeat_penalty = 2.0f;
    hive_sampler_init(&s, &p);
    hive_sampler_accept(&s, 0);
    hive_sampler_accept(&s, 0);
    hive_sampler_accept(&s, 1);
    float m[3] = {4.0f, -1.0f, 0.5f};
    hive_sample(&s, m, 3);
    CHECK(m[0] == 4.0f / 2.0f - 2 * 0.25f - 0.5f);
    CHECK(m[1] == -1.0f * 2.0f - 0.25f - 0.5f);
    CHECK(m[2] == 0.5f);

    /* Negative penalties encourage repeats; repeat_last_n 0 turns all off. */
    p = params(0.0f, 0, 1.0f, 0.0f, 0);
    p.presence_penalty = -2.0f;
    hive_sampler_init(&s, &p);
    hive_sampler_accept(&s, 2);
    float n[3] = {1.0f, 0.0f, -0.5f};
    CHECK(hive_sample(&s, n, 3) == 2 && n[2] == 1.5f);
    p.repeat_last_n = 0;
    hive_sampler_init(&s, &p);
    hive_sampler_accept(&s, 2);
    float o[3] = {1.0f, 0.0f, -0.5f};
    CHECK(hive_sample(&s, o, 3) == 0 && o[2] == -0.5f);
}

static void test_params_check(void) {
    char err[HIVE_ERR_LEN];
    struct hive_sampler_params ok = hive_sampler_default_params();
    CHECK(hive_sampler_params_check(&ok, err) == HIVE_OK);
    ok.temperature = 0.8f, ok.top_p = 1.0f, ok.min_p = 0.0f, ok.top_k = 0;
    ok.presence_penalty = 2.0f, ok.frequency_penalty = -2.0f, ok.repeat_last_n = HIVE_SAMPLER_HISTORY;
    CHECK(hive_sampler_params_check(&ok, err) == HIVE_OK);
    ok.min_p = 1.0f, ok.repeat_last_n = 0;
    CHECK(hive_sampler_params_check(&ok, err) == HIVE_OK);

    struct {
        const char *what, *field;
        struct hive_sampler_params p;
    } bad[16];
    int nb = 0;
#define BAD(F, V)                                                                                                      \
    do {                                                                                                               \
        bad[nb].what = #F " = " #V;                                                                                    \
        bad[nb].field = #F;                                                                                            \
        bad[nb].p = hive_sampler_default_params();                                                                     \
        bad[nb].p.F = V;                                                                                               \
        nb++;                                                                                                          \
    } while (0)
    BAD(temperature, -1.0f);
    BAD(temperature, NAN);
    BAD(top_p, 0.0f);
    BAD(top_p, 2.0f);
    BAD(top_p, -0.5f);
    BAD(min_p, 5.0f);
    BAD(min_p, -0.01f);
    BAD(top_k, -1);
    BAD(repeat_penalty, 0.0f);
    BAD(repeat_penalty, -1.0f);
    BAD(presence_penalty, 2.5f);
    BAD(presence_penalty, INFINITY);
    BAD(frequency_penalty, -2.01f);
    BAD(repeat_last_n, -1);
    BAD(repeat_last_n, HIVE_SAMPLER_HISTORY + 1);
#undef BAD
    for (int i = 0; i < nb; i++) {
        err[0] = 0;
        int rc = hive_sampler_params_check(&bad[i].p, err);
        CHECKF(rc == HIVE_ERR_INVAL, "%s accepted", bad[i].what);
        CHECKF(strstr(err, bad[i].field) != NULL, "%s: message \"%s\" does not name the field", bad[i].what, err);
    }
    CHECK(hive_sampler_params_check(NULL, NULL) == HIVE_ERR_INVAL);
}

static void test_reproducible_and_wire(void) {
    struct hive_sampler a, b;
    struct hive_sampler_params p = params(0.9f, 20, 0.9f, 0.02f, 42);
    p.repeat_penalty = 1.1f;
    p.presence_penalty = 0.3f;
    p.frequency_penalty = 0.2f;
    hive_sampler_init(&a, &p);
    hive_sampler_init(&b, &p);
    int same = 1, differs_from_other_seed = 0;
    struct hive_sampler c;
    struct hive_sampler_params p2 = p;
    p2.seed = 43;
    hive_sampler_init(&c, &p2);
    for (int step = 0; step < 300; step++) {
        float la[64], lb[64], lc[64];
        for (int i = 0; i < 64; i++) la[i] = lb[i] = lc[i] = cosf((float)(i * 13 + step)) * 2.0f;
        int x = hive_sample(&a, la, 64), y = hive_sample(&b, lb, 64), z = hive_sample(&c, lc, 64);
        same &= x == y;
        differs_from_other_seed |= x != z;
        hive_sampler_accept(&a, x);
        hive_sampler_accept(&b, y);
        hive_sampler_accept(&c, z);
        if (step == 150) { /* a sampler that travels mid-stream continues identically */
            uint8_t wire[HIVE_SAMPLER_WIRE_BYTES];
            hive_sampler_encode(&b, wire);
            struct hive_sampler t;
            CHECK(hive_sampler_decode(&t, wire) == 0);
            CHECK(memcmp(&t, &b, sizeof t) == 0);
            b = t;
        }
    }
    CHECK(same);
    CHECK(differs_from_other_seed);

    /* Round trip of a fresh sampler and garbage rejection. */
    uint8_t wire[HIVE_SAMPLER_WIRE_BYTES];
    hive_sampler_encode(&a, wire);
    struct hive_sampler t;
    CHECK(hive_sampler_decode(&t, wire) == 0 && memcmp(&t, &a, sizeof t) == 0);

    uint8_t bad[HIVE_SAMPLER_WIRE_BYTES];
    memcpy(bad, wire, sizeof bad);
    uint32_t nan_bits = 0x7fc00000u;
    memcpy(bad, &nan_bits, 4); /* temperature = NaN (little-endian host) */
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    bad[20] = 0xff; /* repeat_last_n = huge */
    bad[23] = 0x7f;
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    bad[HIVE_SAMPLER_WIRE_BYTES - 1] = 0x80; /* n_history negative */
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    float neg_pen = -1.0f;
    memcpy(bad + 16, &neg_pen, 4);
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    float big = 2.5f;
    memcpy(bad + 24, &big, 4); /* presence_penalty > 2 */
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    big = -3.0f;
    memcpy(bad + 28, &big, 4); /* frequency_penalty < -2 */
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memcpy(bad, wire, sizeof bad);
    memcpy(bad + 28, &nan_bits, 4);
    CHECK(hive_sampler_decode(&t, bad) == -1);
    memset(bad, 0xff, sizeof bad);
    CHECK(hive_sampler_decode(&t, bad) == -1);
    /* Random bytes never crash and decode either fails or yields valid ranges. */
    uint64_t r = 99;
    for (int k = 0; k < 2000; k++) {
        for (size_t i = 0; i < sizeof bad; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            bad[i] = (uint8_t)(r >> 56);
        }
        if (hive_sampler_decode(&t, bad) == 0) {
            CHECK(t.p.repeat_last_n >= 0 && t.p.repeat_last_n <= HIVE_SAMPLER_HISTORY && t.n_history >= 0);
            CHECK(fabsf(t.p.presence_penalty) <= 2.0f && fabsf(t.p.frequency_penalty) <= 2.0f);
            float l[16];
            for (int i = 0; i < 16; i++) l[i] = (float)i;
            int id = hive_sample(&t, l, 16);
            CHECK(id >= 0 && id < 16);
        }
    }
}

int main(void) {
    test_defaults();
    test_greedy();
    test_distribution();
    test_verify_distribution();
    test_filters();
    test_repeat_penalty();
    test_presence_frequency();
    test_params_check();
    test_reproducible_and_wire();
    return check_result("test_sample");
}
