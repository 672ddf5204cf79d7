/* cli_models.c - `hive models`: the models hive can open by name (hive's store,
 * Ollama's, LM Studio's), and `hive rm NAME` (hive's store only). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "hive/store.h"

struct listing {
    int paths;
    int n;
};

static void size_str(char *buf, size_t cap, double b) {
    if (b >= 1e9) snprintf(buf, cap, "%.1f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, cap, "%.1f MB", b / 1e6);
    else snprintf(buf, cap, "%.0f kB", b / 1e3);
}

static void params_str(char *buf, size_t cap, double p) {
    if (p >= 1e9) snprintf(buf, cap, "%.1fB", p / 1e9);
    else if (p >= 1e6) snprintf(buf, cap, "%.1fM", p / 1e6);
    else snprintf(buf, cap, "%.0fK", p / 1e3);
}

static int show(void *ctx, const struct hive_model_ref *m) {
    struct listing *l = ctx;
    struct hive_model_info info;
    char err[HIVE_ERR_LEN], size[32], params[32];
    int ok = hive_model_info_read(m->path, &info, err) == HIVE_OK;
    size_str(size, sizeof size, (double)m->size);
    if (ok) params_str(params, sizeof params, (double)info.n_params);
    if (!l->n++)
        printf("%-40s %-8s %9s  %-10s %-8s %7s%s\n", "NAME", "SOURCE", "SIZE", "ARCH", "TYPE", "PARAMS",
               l->paths ? "  PATH" : "");
    printf("%-40s %-8s %9s  %-10s %-8s %7s%s%s\n", m->name, hive_model_source_name(m->source), size,
           ok ? info.arch : "(unreadable)", ok ? info.file_type : "-", ok ? params : "-", l->paths ? "  " : "",
           l->paths ? m->path : "");
    return 0;
}

int cli_models(int argc, char **argv) {
    struct listing l = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(stderr, "usage: hive models [--paths]\n"
                            "  the models -m NAME finds: hive's store ($HIVE_MODELS, default ~/.local/share/hive/models),\n"
                            "  Ollama's ($OLLAMA_MODELS, default ~/.ollama/models) and LM Studio's (~/.lmstudio/models),\n"
                            "  read in place. --paths adds each file's path.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--paths")) l.paths = 1;
        else {
            fprintf(stderr, "hive models: unknown option %s (try --help)\n", argv[i]);
            return 1;
        }
    }
    hive_store_list(show, &l);
    if (!l.n) {
        char dir[HIVE_STORE_PATH_CAP] = "?";
        hive_store_dir(dir, sizeof dir, NULL);
        fprintf(stderr, "hive models: no models (hive's store %s is empty, no Ollama or LM Studio models);\n"
                        "  `hive pull OWNER/REPO:QUANT` fetches one from Hugging Face\n", dir);
    }
    return 0;
}

int cli_rm(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: hive rm NAME...   (removes models from hive's store; see `hive models`)\n");
        return argc < 2 ? 1 : 0;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        char err[HIVE_ERR_LEN];
        if (hive_store_remove(argv[i], err)) {
            fprintf(stderr, "hive rm: %s\n", err);
            rc = 1;
        } else {
            printf("removed %s\n", argv[i]);
        }
    }
    return rc;
}
