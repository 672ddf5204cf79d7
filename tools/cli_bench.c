/* cli_bench.c - `hive bench`: prompt-processing and decode tok/s of a model
 * on this machine (median of several runs), as text and one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hive/model.h"
#include "hive/tensor.h"

static void usage(void) {
    fprintf(stderr,
            "usage: hive bench [-m MODEL.gguf] [-t THREADS] [--prompt N] [--decode N] [-r RUNS] [--no-mmap-copy]\n"
            "  -t defaults to every core, as for `hive run` and `hive node`, so the numbers\n"
            "  are those a run sees.\n"
            "  Times a prompt of N tokens in one batch (default 128) and N tokens of\n"
            "  greedy decode (default 64), median of RUNS (default 5). Without -m the\n"
            "  default model (stories260K) is used. --no-mmap-copy reads the weights\n"
            "  through the file mapping instead of a huge-page copy.\n");
}

int cli_bench(int argc, char **argv) {
    const char *model = NULL;
    struct hive_speed_opts o = {.n_threads = cli_default_threads(), .n_prompt = 128, .n_decode = 64, .reps = 5, .copy_weights = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--no-mmap-copy")) {
            o.copy_weights = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hive bench: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = cli_int_option("bench", a, v, 1, 1024, &o.n_threads);
        else if (!strcmp(a, "--prompt")) bad = cli_int_option("bench", a, v, 1, 1 << 16, &o.n_prompt);
        else if (!strcmp(a, "--decode")) bad = cli_int_option("bench", a, v, 1, 1 << 16, &o.n_decode);
        else if (!strcmp(a, "-r") || !strcmp(a, "--runs")) bad = cli_int_option("bench", a, v, 1, 32, &o.reps);
        else {
            fprintf(stderr, "hive bench: unknown option %s (try --help)\n", a);
            return 1;
        }
        if (bad) return 1;
        i++;
    }
    char path[4096];
    if (!model) {
        if (cli_default_model(path, sizeof path)) return 1;
        model = path;
    }
    char err[HIVE_ERR_LEN];
    struct hive_speed sp;
    if (hive_model_measure_speed(model, &o, &sp, err)) {
        fprintf(stderr, "hive bench: %s\n", err);
        return 1;
    }
    printf("%s: %d layers, %.1f MB of weights per token, %d thread%s, isa %s, weights %s\n", model, sp.n_layer,
           sp.bytes_per_token / 1e6, o.n_threads, o.n_threads > 1 ? "s" : "", hive_isa_name(hive_isa_current()),
           o.copy_weights ? "copied (huge pages)" : "mmap");
    printf("prefill %d tok: %.1f tok/s | decode %d tok: %.1f tok/s (%.2f GB/s of weights) | load %.0f ms\n",
           o.n_prompt, sp.prefill_tps, o.n_decode, sp.decode_tps, sp.decode_tps * (double)sp.bytes_per_token / 1e9,
           sp.load_ms);
    printf("{\"model\":\"%s\",\"threads\":%d,\"n_prompt\":%d,\"n_decode\":%d,\"runs\":%d,\"prefill_tps\":%.2f,"
           "\"decode_tps\":%.2f,\"bytes_per_token\":%llu,\"load_ms\":%.1f,\"weights\":\"%s\"}\n",
           model, o.n_threads, o.n_prompt, o.n_decode, o.reps, sp.prefill_tps, sp.decode_tps,
           (unsigned long long)sp.bytes_per_token, sp.load_ms, o.copy_weights ? "copy" : "mmap");
    return 0;
}
