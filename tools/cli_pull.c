/* cli_pull.c - `hive pull REF`: a GGUF from Hugging Face or a URL into hive's
 * store ($HIVE_MODELS, default ~/.local/share/hive/models). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hive/store.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive pull REF [-o FILE] [--force] [-q]\n"
            "  REF: hf:OWNER/REPO/FILE.gguf      a file of a Hugging Face repository\n"
            "       OWNER/REPO:QUANT             the repository's GGUF of that quant type (e.g. :Q4_K_M)\n"
            "       hf.co/OWNER/REPO[:QUANT]     the same, as Ollama writes it\n"
            "       https://.../FILE.gguf        any URL\n"
            "  -o FILE   write there instead of hive's store\n"
            "  --force   download again when the file is already there\n"
            "  -q        no progress bar (there is none when stderr is not a terminal)\n"
            "An interrupted download resumes from FILE.partial; the size, the sha256 the server\n"
            "publishes (Hugging Face) and the GGUF format are checked before FILE appears.\n"
            "$HF_TOKEN is sent to Hugging Face for gated repositories; $HF_ENDPOINT names a mirror.\n");
}

int cli_pull(int argc, char **argv) {
    struct hive_pull_opts o = {.retries = -1, .progress = isatty(STDERR_FILENO)};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--force")) {
            o.force = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o.progress = 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            o.dest = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hive pull: unknown option %s (try --help)\n", a);
            return 1;
        } else if (!o.ref) {
            o.ref = a;
        } else {
            fprintf(stderr, "hive pull: one reference at a time ('%s' and '%s')\n", o.ref, a);
            return 1;
        }
    }
    if (!o.ref) {
        usage();
        return 1;
    }
    char path[HIVE_STORE_PATH_CAP], err[HIVE_ERR_LEN];
    int already = 0;
    o.already = &already;
    if (hive_pull(&o, path, sizeof path, err)) {
        fprintf(stderr, "hive pull: %s\n", err);
        return 1;
    }
    if (already) fprintf(stderr, "hive pull: %s is already there (--force downloads it again)\n", path);
    printf("%s\n", path);
    return 0;
}
