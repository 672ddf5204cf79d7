/* fuzz_chat.c - chat templates: detection from a tokenizer.chat_template
 * text and rendering of a conversation.
 *   u8 template (modulo 7, HIVE_CHAT_NONE..PHI3) | u8 flags
 *   | messages separated by 0x00, each: u8 role (system, user, assistant,
 *     or another word) | content
 * flags & 1: add the assistant prefix; flags & 2: the whole rest is also
 * used as a Jinja template text for hive_chat_template_detect (inside a
 * GGUF image built here) and as a template name. Rendering into a large
 * and a small buffer must give the same length, NUL-terminated. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "hive/gguf.h"
#include "hive/tokenizer.h"

#define MAX_MSGS 64

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A GGUF v3 image with one key, tokenizer.chat_template = text. */
static uint8_t *gguf_with_template(const char *text, size_t len, size_t *out_len) {
    static const char key[] = "tokenizer.chat_template";
    size_t n = 4 + 4 + 8 + 8 + 8 + (sizeof key - 1) + 4 + 8 + len;
    uint8_t *p = malloc(n), *q = p;
    if (!p) return NULL;
    memcpy(q, "GGUF", 4), q += 4;
    put_u32(q, 3), q += 4;
    put_u64(q, 0), q += 8; /* tensors */
    put_u64(q, 1), q += 8; /* keys */
    put_u64(q, sizeof key - 1), q += 8;
    memcpy(q, key, sizeof key - 1), q += sizeof key - 1;
    put_u32(q, HIVE_GGUF_STRING), q += 4;
    put_u64(q, len), q += 8;
    memcpy(q, text, len);
    *out_len = n;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char *big;
    const size_t big_cap = 1 << 18;
    if (!big) {
        hive_log_set_level(HIVE_LOG_ERROR);
        big = malloc(big_cap);
        if (!big) abort();
    }
    struct fuzz_in in = {data, size, 0};
    int tmpl = fuzz_u8(&in) % 7;
    uint8_t flags = fuzz_u8(&in);
    size_t rest_len;
    const uint8_t *rest = fuzz_bytes(&in, fuzz_left(&in), &rest_len);

    char *copy = malloc(rest_len + 1); /* NUL-separated messages become C strings */
    if (!copy) return 0;
    memcpy(copy, rest, rest_len);
    copy[rest_len] = '\0';
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    struct hive_chat_msg msgs[MAX_MSGS];
    int n = 0;
    for (size_t off = 0; off < rest_len && n < MAX_MSGS;) {
        size_t l = strlen(copy + off);
        if (l == 0) {
            off++;
            continue;
        }
        msgs[n].role = roles[(uint8_t)copy[off] % 4];
        msgs[n].content = copy + off + 1;
        n++;
        off += l + 1;
    }
    int len = hive_chat_format(tmpl, msgs, n, flags & 1, big, big_cap);
    FUZZ_ASSERT(len >= 0);
    if ((size_t)len < big_cap) FUZZ_ASSERT(big[len] == '\0' && strlen(big) == (size_t)len);
    char small[16];
    int len2 = hive_chat_format(tmpl, msgs, n, flags & 1, small, sizeof small);
    FUZZ_ASSERT(len2 == len && strlen(small) < sizeof small);
    if ((size_t)len < big_cap) FUZZ_ASSERT(!strncmp(small, big, sizeof small - 1));

    if (flags & 2) {
        size_t gl;
        uint8_t *img = gguf_with_template((const char *)rest, rest_len, &gl);
        hive_gguf *g;
        char err[HIVE_ERR_LEN];
        if (img && hive_gguf_open_buffer(&g, "fuzz", img, gl, err) == HIVE_OK) {
            int d = hive_chat_template_detect(g);
            FUZZ_ASSERT(d >= HIVE_CHAT_NONE && d <= HIVE_CHAT_PHI3);
            hive_gguf_close(g);
        }
        free(img);
        int byname = hive_chat_template_from_name(copy);
        if (byname >= 0) FUZZ_ASSERT(hive_chat_template_name(byname) != NULL);
    }
    free(copy);
    return 0;
}
