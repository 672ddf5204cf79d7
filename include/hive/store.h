/* store.h - the models people already have: hive's own store, `hive pull`
 * downloads, and GGUF files read in place from Ollama and LM Studio.
 *
 * Where models are looked for:
 *   hive       $HIVE_MODELS, else $XDG_DATA_HOME/hive/models, else
 *              ~/.local/share/hive/models: a flat directory of NAME.gguf files
 *              (what `hive pull` writes).
 *   Ollama     $OLLAMA_MODELS, else ~/.ollama/models:
 *              manifests/<registry>/<namespace>/<model>/<tag> is a JSON
 *              manifest; its layer of mediaType application/vnd.ollama.image.model
 *              has digest "sha256:<hex>", the GGUF file blobs/sha256-<hex>.
 *              Names: [registry/][namespace/]model[:tag], defaults
 *              registry.ollama.ai, library, latest.
 *   LM Studio  ~/.lmstudio/models and ~/.cache/lm-studio/models:
 *              publisher/repo/file.gguf.
 * Nothing is copied: a resolved name is the path of the file where it is. */
#ifndef HIVE_STORE_H
#define HIVE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"

#define HIVE_STORE_PATH_CAP 4096
#define HIVE_STORE_NAME_CAP 512

enum hive_model_source {
    HIVE_SRC_PATH = 0,  /* a file path given as is */
    HIVE_SRC_HIVE,      /* hive's store */
    HIVE_SRC_OLLAMA,
    HIVE_SRC_LMSTUDIO,
};

/* "path", "hive", "ollama", "lmstudio". */
const char *hive_model_source_name(int source);

struct hive_model_ref {
    int source;                        /* enum hive_model_source */
    char name[HIVE_STORE_NAME_CAP];    /* the name that finds it again */
    char path[HIVE_STORE_PATH_CAP];    /* the GGUF file */
    uint64_t size;                     /* file size in bytes */
};

/* The directories (not created). Return HIVE_OK or HIVE_ERR_INVAL when no
 * environment variable or HOME says where. */
int hive_store_dir(char *buf, size_t cap, char *err);
int hive_ollama_dir(char *buf, size_t cap, char *err);
/* LM Studio's model directories that exist (0, 1 or 2 of them). */
int hive_lmstudio_dirs(char dirs[2][HIVE_STORE_PATH_CAP]);

/* Resolves a -m argument, in order: an existing file path; a name in hive's
 * store (NAME or NAME.gguf); an Ollama model; an LM Studio file
 * (publisher/repo/file.gguf, publisher/repo when it holds one GGUF, or a file
 * name found once). An Ollama manifest whose blob is missing, or a resolved
 * file that is not GGUF, is an error of its own (not "not found").
 * HIVE_ERR_INVAL when nothing matches: err names the close matches. */
int hive_store_resolve(const char *name, struct hive_model_ref *out, char *err);

/* Calls fn for every model of every source (hive, Ollama, LM Studio), each
 * source's names sorted; fn returning nonzero stops the walk. Broken entries
 * (a manifest without a model layer, a missing blob) are skipped. */
typedef int (*hive_model_visit_fn)(void *ctx, const struct hive_model_ref *m);
int hive_store_list(hive_model_visit_fn fn, void *ctx);

/* Removes NAME (or NAME.gguf) from hive's store, and its .partial. Ollama
 * and LM Studio files are theirs: HIVE_ERR_INVAL with a message saying so. */
int hive_store_remove(const char *name, char *err);

/* Up to n names of known models close to name (edit distance or substring),
 * joined by ", " into buf; returns how many. */
int hive_store_close_matches(const char *name, char *buf, size_t cap, int n);

/* What a GGUF file holds, for listings. */
struct hive_model_info {
    char arch[64];       /* general.architecture */
    char file_type[32];  /* general.file_type as llama.cpp names it ("Q4_K_M"), else the commonest weight type */
    int64_t n_params;    /* elements over all tensors */
};
int hive_model_info_read(const char *path, struct hive_model_info *info, char *err);

/* ---- Ollama ---- */
struct hive_ollama_name {
    char host[256];
    char ns[128];
    char model[128];
    char tag[128];
};
/* Parses [host/][namespace/]model[:tag]; every part checked (letters,
 * digits, '.', '_', '-', and ':' in the host; no "..", no empty part). */
int hive_ollama_parse_name(const char *s, struct hive_ollama_name *out, char *err);
/* Reads a manifest (JSON, at most 1 MiB): the model layer's digest as 64
 * lowercase hex digits and its declared size. HIVE_ERR_FORMAT for anything
 * malformed: not an object, layers missing or not an array, a layer without a
 * string mediaType, a model layer whose digest is not sha256:<64 hex> or whose
 * size is not a non-negative integer, two model layers, none. */
int hive_ollama_manifest_parse(const char *json, size_t len, char hex[65], uint64_t *size, char *err);
/* The blob path of an Ollama name in models_dir. */
int hive_ollama_lookup(const char *models_dir, const struct hive_ollama_name *n, char *path, size_t cap,
                       uint64_t *size, char *err);

/* ---- pull ---- */
struct hive_pull_opts {
    const char *ref;      /* hf:OWNER/REPO/FILE.gguf, OWNER/REPO:QUANT, hf.co/OWNER/REPO[:QUANT], https://... */
    const char *dest;     /* output file; NULL = hive's store / the file's name */
    int progress;         /* 1: a progress bar on stderr (speed, time left) */
    int force;            /* download again when dest exists */
    int retries;          /* extra attempts after a cut transfer (resumed with Range); <0 = 3 */
    int *already;         /* optional: set to 1 when dest was already there (nothing downloaded) */
};
/* Downloads to dest.partial (resumed with an HTTP Range request when it
 * exists; a server that answers 200 restarts it), checks the size, the
 * sha256 when the server publishes one (Hugging Face's X-Linked-ETag, or an
 * RFC 9530 Repr-Digest: sha-256) and that the file parses as GGUF, then
 * renames it to dest. On failure dest is absent (a resumable .partial may
 * stay, one with a wrong hash is removed). Writes the final path into path.
 * $HF_ENDPOINT replaces https://huggingface.co, $HF_TOKEN is sent to it. */
int hive_pull(const struct hive_pull_opts *o, char *path, size_t cap, char *err);
/* The download URL and file name of a reference, without downloading
 * (OWNER/REPO:QUANT asks the Hugging Face API for the file list). */
int hive_pull_resolve_ref(const char *ref, char *url, size_t url_cap, char *file, size_t file_cap, char *err);

/* sha256 of a file as 64 lowercase hex digits. */
int hive_sha256_file(const char *path, char hex[65], char *err);

#endif
