/* unicode.c - UTF-8 decoding and code point class lookups. */
#include "tokenizer/unicode.h"

unsigned ucd_flags(uint32_t cp) {
    if (cp > 0x10FFFF) return 0; /* includes UCD_INVALID units */
    /* Last run whose start <= cp: binary search over run starts. */
    size_t lo = 0, hi = hive_ucd_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((hive_ucd_runs[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return hive_ucd_runs[lo] & 0xFF;
}

int ucd_is_deepseek_letter(uint32_t cp) {
    size_t lo = 0, hi = hive_ucd_n_deepseek_letters;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < hive_ucd_deepseek_letters[mid][0]) hi = mid;
        else if (cp > hive_ucd_deepseek_letters[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        goto invalid;
    }
    if ((size_t)len > n) goto invalid;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = UCD_INVALID | c;
    return 1;
}

int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
