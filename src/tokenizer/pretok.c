/* pretok.c - the pre-tokenizers of byte-level BPE models.
 *
 * Hugging Face tokenizers run a Sequence of Split pre-tokenizers, each a
 * regex with "Isolated" behaviour: within every current piece, each match
 * becomes a piece and so does every gap between matches. The regexes are
 * those of the models' tokenizer.json files, for example GPT-2's
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 * Each is hand-written below as a matcher that returns the length (in code
 * points) of the match a backtracking engine would find at a position, 0 for
 * none. Lookaheads and "$" see only the current piece, as in the original. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

struct pt_text {
    const uint32_t *cp;
    const uint8_t *fl; /* ucd_flags per code point */
};

typedef size_t (*pt_match)(const struct pt_text *s, size_t pos, size_t end);

#define NOT_LNS (UCD_L | UCD_N | UCD_WS) /* complement of [^\s\p{L}\p{N}] */

static size_t run_with(const struct pt_text *s, size_t pos, size_t end, unsigned mask) {
    size_t i = pos;
    while (i < end && (s->fl[i] & mask)) i++;
    return i - pos;
}

static size_t run_without(const struct pt_text *s, size_t pos, size_t end, unsigned mask) {
    size_t i = pos;
    while (i < end && !(s->fl[i] & mask)) i++;
    return i - pos;
}

static uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive (llama3's (?i:...)). */
static size_t contraction(const struct pt_text *s, size_t pos, size_t end, int icase) {
    if (s->cp[pos] != '\'' || pos + 1 >= end) return 0;
    uint32_t a = s->cp[pos + 1], b = pos + 2 < end ? s->cp[pos + 2] : 0;
    if (icase) a = ascii_lower(a), b = ascii_lower(b);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S): the whole run when it ends the piece, else all but its last
 * whitespace (which then precedes the next word). */
static size_t ws_not_before_word(const struct pt_text *s, size_t pos, size_t end) {
    size_t k = run_with(s, pos, end, UCD_WS);
    if (k == 0) return 0;
    if (pos + k == end) return k;
    return k >= 2 ? k - 1 : 0;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
static size_t m_gpt2(const struct pt_text *s, size_t pos, size_t end) {
    size_t n = contraction(s, pos, end, 0);
    if (n) return n;
    /* A leading ' ' is optional, but none of the three classes contains a
     * space, so the match either uses it or fails. */
    size_t q = pos + (s->cp[pos] == ' ');
    if (q < end) {
        unsigned f = s->fl[q];
        if (f & UCD_L) return q - pos + run_with(s, q, end, UCD_L);
        if (f & UCD_N) return q - pos + run_with(s, q, end, UCD_N);
        if (!(f & NOT_LNS)) return q - pos + run_without(s, q, end, NOT_LNS);
    }
    return ws_not_before_word(s, pos, end);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+                      */
static size_t m_llama3_like(const struct pt_text *s, size_t pos, size_t end, size_t max_digits) {
    size_t n = contraction(s, pos, end, 1);
    if (n) return n;
    uint32_t c = s->cp[pos];
    unsigned f = s->fl[pos];
    int crlf = c == '\r' || c == '\n';
    if (!(f & (UCD_L | UCD_N)) && !crlf && pos + 1 < end && (s->fl[pos + 1] & UCD_L))
        return 1 + run_with(s, pos + 1, end, UCD_L);
    if (f & UCD_L) return run_with(s, pos, end, UCD_L);
    if (f & UCD_N) {
        n = run_with(s, pos, end, UCD_N);
        return n < max_digits ? n : max_digits;
    }
    size_t q = pos + (c == ' ');
    if (q < end && !(s->fl[q] & NOT_LNS)) {
        size_t e = q + run_without(s, q, end, NOT_LNS);
        while (e < end && (s->cp[e] == '\r' || s->cp[e] == '\n')) e++;
        return e - pos;
    }
    if (!(f & UCD_WS)) return 0;
    /* \s*[\r\n]+ ends right after the last CR/LF of the whitespace run. */
    size_t k = run_with(s, pos, end, UCD_WS);
    for (size_t j = pos + k; j > pos; j--)
        if (s->cp[j - 1] == '\r' || s->cp[j - 1] == '\n') return j - pos;
    n = ws_not_before_word(s, pos, end);
    return n ? n : k; /* \s+ */
}

static size_t m_llama3(const struct pt_text *s, size_t pos, size_t end) { return m_llama3_like(s, pos, end, 3); }
static size_t m_qwen2(const struct pt_text *s, size_t pos, size_t end) { return m_llama3_like(s, pos, end, 1); }

/* [\r\n] */
static size_t m_crlf(const struct pt_text *s, size_t pos, size_t end) {
    (void)end;
    return s->cp[pos] == '\r' || s->cp[pos] == '\n';
}

/* \s?X+ for a class X given as a predicate. */
static size_t opt_ws_then_run(const struct pt_text *s, size_t pos, size_t end, int (*in)(const struct pt_text *, size_t)) {
    size_t i = pos;
    if ((s->fl[pos] & UCD_WS) && pos + 1 < end && in(s, pos + 1)) i = pos + 1;
    else if (!in(s, pos)) return 0;
    while (i < end && in(s, i)) i++;
    return i - pos;
}

static int is_ds_letter(const struct pt_text *s, size_t i) { return ucd_is_deepseek_letter(s->cp[i]); }

/* [!-/:-~！-／：-～‘-‟　-。] */
static int is_ds_punct(const struct pt_text *s, size_t i) {
    uint32_t c = s->cp[i];
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
}

static int is_letter(const struct pt_text *s, size_t i) { return (s->fl[i] & UCD_L) != 0; }
static int is_punct(const struct pt_text *s, size_t i) { return (s->fl[i] & UCD_P) != 0; }

/* [一-龥ࠀ-一가-퟿] */
static int is_cjk(const struct pt_text *s, size_t i) {
    uint32_t c = s->cp[i];
    return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
}

/* [\p{P}\$\+<=>\^~\|`] */
static int is_falcon_punct(const struct pt_text *s, size_t i) {
    uint32_t c = s->cp[i];
    return (s->fl[i] & UCD_P) || (c < 0x80 && c && strchr("$+<=>^~|`", (int)c));
}

static size_t m_ds_letters(const struct pt_text *s, size_t pos, size_t end) { return opt_ws_then_run(s, pos, end, is_ds_letter); }
static size_t m_ds_punct(const struct pt_text *s, size_t pos, size_t end) { return opt_ws_then_run(s, pos, end, is_ds_punct); }
static size_t m_ws_letters(const struct pt_text *s, size_t pos, size_t end) { return opt_ws_then_run(s, pos, end, is_letter); }
static size_t m_ws_punct(const struct pt_text *s, size_t pos, size_t end) { return opt_ws_then_run(s, pos, end, is_punct); }

/* \s+$ */
static size_t m_ws_at_end(const struct pt_text *s, size_t pos, size_t end) {
    size_t k = run_with(s, pos, end, UCD_WS);
    return pos + k == end ? k : 0;
}

/* [一-龥ࠀ-一가-퟿]+ */
static size_t m_cjk(const struct pt_text *s, size_t pos, size_t end) {
    size_t i = pos;
    while (i < end && is_cjk(s, i)) i++;
    return i - pos;
}

/* [\p{P}\$\+<=>\^~\|`]+ */
static size_t m_falcon_punct(const struct pt_text *s, size_t pos, size_t end) {
    size_t i = pos;
    while (i < end && is_falcon_punct(s, i)) i++;
    return i - pos;
}

static size_t m_numbers(const struct pt_text *s, size_t pos, size_t end) { return run_with(s, pos, end, UCD_N); } /* \p{N}+ */
static size_t m_number(const struct pt_text *s, size_t pos, size_t end) { (void)end; return (s->fl[pos] & UCD_N) != 0; } /* \p{N} */

/* [0-9][0-9][0-9] */
static size_t m_three_digits(const struct pt_text *s, size_t pos, size_t end) {
    if (end - pos < 3) return 0;
    for (size_t i = pos; i < pos + 3; i++)
        if (s->cp[i] < '0' || s->cp[i] > '9') return 0;
    return 3;
}

#define MAX_STAGES 6

struct pt_family {
    const char *names; /* tokenizer.ggml.pre values, '|'-separated */
    int pre;
    pt_match stages[MAX_STAGES];
};

static const struct pt_family families[] = {
    {"default|gpt-2|gpt2|mpt|gpt-neox|olmo|jais|phi-2|bloom|poro-chat|viking", PRE_GPT2, {m_gpt2}},
    {"llama3|llama-bpe|llama-v3|dbrx|smaug-bpe|falcon3|pixtral|bailingmoe", PRE_LLAMA3, {m_llama3}},
    {"qwen2|deepseek-r1-qwen|stablelm2|megrez", PRE_QWEN2, {m_qwen2}},
    {"deepseek-llm", PRE_DEEPSEEK_LLM, {m_crlf, m_ds_letters, m_ds_punct, m_ws_at_end, m_cjk, m_numbers}},
    {"deepseek-coder", PRE_DEEPSEEK_CODER, {m_crlf, m_ws_letters, m_ws_punct, m_cjk, m_number}},
    {"falcon", PRE_FALCON, {m_falcon_punct, m_gpt2, m_three_digits}},
    {"starcoder|refact|smollm|command-r|codeshell|exaone|minerva-7b", PRE_STARCODER, {m_number, m_gpt2}},
};
#define N_FAMILIES (sizeof families / sizeof families[0])

static const struct pt_family *family_of(int pre) {
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (families[i].pre == pre) return &families[i];
    return &families[0];
}

int pretok_from_name(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < N_FAMILIES; i++) {
        const char *p = families[i].names;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (len == n && !memcmp(p, name, n)) return families[i].pre;
            p += len + (bar != NULL);
        }
    }
    return -1;
}

/* One Split stage over every current piece: cuts_in (n_in boundaries, in
 * code point indices) -> cuts_out, which has room for every code point. */
static size_t split_stage(const struct pt_text *s, pt_match match, const size_t *cuts_in, size_t n_in, size_t *cuts_out) {
    size_t n_out = 0;
    cuts_out[n_out++] = cuts_in[0];
    for (size_t p = 0; p + 1 < n_in; p++) {
        size_t begin = cuts_in[p], end = cuts_in[p + 1];
        size_t pos = begin;
        while (pos < end) {
            size_t len = match(s, pos, end);
            if (!len) {
                pos++;
                continue;
            }
            if (pos != cuts_out[n_out - 1]) cuts_out[n_out++] = pos; /* the gap before the match */
            pos += len;
            if (pos != end) cuts_out[n_out++] = pos;
        }
        cuts_out[n_out++] = end;
    }
    return n_out;
}

int pretok_split(int pre, const char *text, size_t len, size_t **cuts, size_t *n_cuts) {
    *cuts = NULL;
    *n_cuts = 0;
    /* n code points <= len bytes; +1 for the closing boundary. */
    uint32_t *cp = hive_malloc_array(len + 1, sizeof *cp);
    uint8_t *fl = malloc(len + 1);
    size_t *off = hive_malloc_array(len + 1, sizeof *off);
    size_t *a = hive_malloc_array(len + 2, sizeof *a);
    size_t *b = hive_malloc_array(len + 2, sizeof *b);
    if (!cp || !fl || !off || !a || !b) {
        free(cp), free(fl), free(off), free(a), free(b);
        return HIVE_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        off[n] = i;
        i += (size_t)utf8_decode((const unsigned char *)text + i, len - i, &cp[n]);
        fl[n] = (uint8_t)ucd_flags(cp[n]);
    }
    off[n] = len;

    struct pt_text s = {cp, fl};
    size_t n_cut = 0;
    a[n_cut++] = 0;
    if (n) a[n_cut++] = n;
    const struct pt_family *fam = family_of(pre);
    for (int st = 0; st < MAX_STAGES && fam->stages[st] && n_cut > 1; st++) {
        n_cut = split_stage(&s, fam->stages[st], a, n_cut, b);
        size_t *tmp = a;
        a = b, b = tmp;
    }
    for (size_t i = 0; i < n_cut; i++) a[i] = off[a[i]]; /* code points -> bytes */
    free(cp), free(fl), free(off), free(b);
    *cuts = a;
    *n_cuts = n_cut;
    return HIVE_OK;
}
