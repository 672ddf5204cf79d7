/* engine.h - what a worker runs its tasks on: one small interface in front
 * of hive's own engine (engine_hive.c: an in-process scheduler over a GGUF)
 * and of any OpenAI-compatible server (engine_http.c: llama.cpp's server,
 * Ollama, LM Studio, vLLM, `hive serve`). Internal to src/task. */
#ifndef HIVE_TASK_ENGINE_H
#define HIVE_TASK_ENGINE_H

#include <stdint.h>

#include "wire.h"

struct engine_answer {
    char *text;              /* malloc'd */
    int n_prompt, n_gen;
    uint64_t layer_passes;   /* 0 where the engine cannot tell (a server) */
};

typedef struct engine engine;
struct engine {
    /* 0 with *a filled, or an error code with the reason in err. Called
     * from several threads at once (the worker's slots). */
    int (*run)(engine *e, const struct wire_task *t, struct engine_answer *a, char *err);
    void (*close)(engine *e);
};

/* max_seqs: tasks run at once (0: 1). */
int engine_hive_open(engine **out, const char *model_path, int n_threads, int max_seqs, char *err);
/* url: the server's base ("http://host:port"); model: its "model" field. */
int engine_http_open(engine **out, const char *url, const char *model, int chat, char *err);

#endif
