/* cli_worker.c - `hive worker`: dials out to a queen (`hive job
 * --workers-listen`) and runs its subtasks, on a model here or on an
 * OpenAI-compatible server (--backend). See hive/worker.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/job.h"
#include "hive/worker.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive worker --queen HOST:PORT [-m MODEL | --backend URL] [options]\n"
            "  Dials out to the queen (works from behind NAT), takes subtasks over an\n"
            "  encrypted link (the cluster key) and answers them, until Ctrl-C.\n"
            "  -m MODEL               run them here on this model (path or name; default: stories260K)\n"
            "  --backend URL          run them on an OpenAI-compatible server instead\n"
            "                         (llama.cpp's server, Ollama http://localhost:11434, LM Studio, vLLM, hive serve)\n"
            "  --backend-model NAME   the \"model\" field sent to it (default: its first, from /v1/models)\n"
            "  --chat                 use URL/v1/chat/completions (default: URL/v1/completions)\n"
            "  --key FILE             cluster key (default: hive keygen's)\n"
            "  --name NAME            its name in the queen's ledger (default: the hostname)\n"
            "  -t N                   threads (default: every core)\n"
            "  --slots N              subtasks at once, each on its own link to the queen (default: 4 on\n"
            "                         a model here, decoded in one batch; 1 with --backend)\n"
            "  --max-tasks N          leave after N answers\n");
}

int cli_worker(int argc, char **argv) {
    struct hive_worker_opts o;
    memset(&o, 0, sizeof o);
    const char *model = NULL, *key_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--chat")) {
            o.backend_chat = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hive worker: %s needs a value (try --help)\n", a);
            return 1;
        }
        i++;
        int r = 0;
        if (!strcmp(a, "--queen")) o.queen = v;
        else if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--backend")) o.backend_url = v;
        else if (!strcmp(a, "--backend-model")) o.backend_model = v;
        else if (!strcmp(a, "--key")) key_path = v;
        else if (!strcmp(a, "--name")) o.name = v;
        else if (!strcmp(a, "-t")) r = cli_int_option("worker", a, v, 1, 1024, &o.n_threads);
        else if (!strcmp(a, "--max-tasks")) r = cli_int_option("worker", a, v, 1, 1 << 30, &o.max_tasks);
        else if (!strcmp(a, "--slots")) r = cli_int_option("worker", a, v, 1, HIVE_WORKER_MAX_SLOTS, &o.slots);
        else {
            fprintf(stderr, "hive worker: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (r) return 1;
    }
    if (!o.queen) {
        fprintf(stderr, "hive worker: --queen HOST:PORT is needed (try --help)\n");
        return 1;
    }
    if (model && o.backend_url) {
        fprintf(stderr, "hive worker: -m and --backend exclude each other\n");
        return 1;
    }
    char err[HIVE_ERR_LEN], path[4096];
    if (key_path ? hive_key_load(key_path, o.key, err) : hive_key_load_default(o.key, err)) {
        fprintf(stderr, "hive worker: %s\n", err);
        return 1;
    }
    if (!o.backend_url) {
        if (!model ? cli_default_model(path, sizeof path) : cli_resolve_model(model, path, sizeof path)) return 1;
        o.model_path = path;
    }
    if (!o.slots) o.slots = o.backend_url ? 1 : HIVE_JOB_PER_REPLICA; /* as many as a replica runs */
    cli_catch_interrupt();
    o.stop = &cli_interrupted;
    int rc = hive_worker_run(&o, err);
    if (rc) {
        fprintf(stderr, "hive worker: %s\n", err);
        return 1;
    }
    return 0;
}
