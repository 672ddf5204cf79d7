/* test_draft.c - where drafts come from and how many: prompt lookup picks
 * the longest matching context, and the tuner drafts more when drafts are
 * right and cheap, less (or none) when they are wrong or dear. */
#include "check.h"
#include "cluster/draft.h"

static void test_ngram(void) {
    int32_t out[8];
    const int32_t log1[] = {1, 2, 3, 4, 1, 2};
    CHECK(draft_ngram_propose(log1, 6, 3, out) == 3 && out[0] == 3 && out[1] == 4 && out[2] == 1);
    CHECK(draft_ngram_propose(log1, 6, 8, out) == 4 && out[3] == 2); /* up to the end of the log */
    const int32_t none[] = {1, 2, 3, 4, 5};
    CHECK(draft_ngram_propose(none, 5, 4, out) == 0);
    CHECK(draft_ngram_propose(none, 1, 4, out) == 0);
    /* "9 7" occurs twice; "5 9 7" only at the start: the longer context wins
     * over the more recent one. */
    const int32_t ctx[] = {5, 9, 7, 10, 11, 8, 9, 7, 20, 5, 9, 7};
    CHECK(draft_ngram_propose(ctx, 12, 2, out) == 2 && out[0] == 10 && out[1] == 11);
    /* Equal contexts: the latest. */
    const int32_t late[] = {3, 7, 1, 3, 7, 2, 3, 7};
    CHECK(draft_ngram_propose(late, 8, 1, out) == 1 && out[0] == 2);
}

static void test_tuner(void) {
    struct draft_tuner t = {0};
    /* Unmeasured: a row costs DRAFT_ROW_COST of a pass, drafting nothing. */
    CHECK(draft_tuner_k(&t, 9, 10, 8) == 8);  /* right 90% of the time: as many as allowed */
    CHECK(draft_tuner_k(&t, 1, 20, 8) == 0);  /* right 5%: none */
    int k_mid = draft_tuner_k(&t, 6, 10, 8);
    CHECK(k_mid >= 1 && k_mid < 8);
    /* Measured: a pass costs 10 ms + 1 ms a row. */
    for (int i = 0; i < 40; i++) draft_tuner_pass(&t, (uint32_t)(1 + i % 5), 10.0 + 1.0 * (1 + i % 5));
    int k_cheap = draft_tuner_k(&t, 8, 10, 8);
    CHECK(k_cheap >= 3);
    /* Drafting a token costs as much as a pass: drafting no longer pays. */
    for (int i = 0; i < 40; i++) draft_tuner_drafted(&t, 44.0, 4);
    CHECK(draft_tuner_k(&t, 8, 10, 8) < k_cheap);
    CHECK(draft_tuner_k(&t, 5, 10, 8) == 0);
}

int main(void) {
    test_ngram();
    test_tuner();
    return check_result("test_draft");
}
