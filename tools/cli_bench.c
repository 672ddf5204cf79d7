/* cli_bench.c - `hive bench`: how fast a model runs.
 *
 * Two measurements:
 *   - the engine on this machine (without --peers): prompt-processing and
 *     decode tok/s of hive_model_measure_speed, median of the runs, as text
 *     and one JSON line (as before);
 *   - through the scheduler (always): the same path `hive serve` takes, on an
 *     in-process node or across --peers. Each run submits --concurrency
 *     sequences of a --prompt token prompt and --decode generated tokens at
 *     once; it reports prompt tok/s (prompt tokens / time to the first token)
 *     and generation tok/s (tokens after the first / the time they took),
 *     the median over the runs, and the scheduler's per-stage compute and
 *     per-hop times, naming the slowest.
 * --json FILE writes every raw figure; --plot FILE.svg draws tokens/s per
 * run and the slowest stage's time per step (hand-written SVG). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "cli.h"
#include "hive/model.h"
#include "hive/sched.h"
#include "hive/tensor.h"

#define MAX_RUNS 32
#define MAX_CONC 256

static void usage(void) {
    fprintf(stderr,
            "usage: hive bench [-m MODEL.gguf] [options]\n"
            "  -t, --threads N     threads (default: every core, as `hive run` and `hive node` use)\n"
            "  --prompt N          prompt tokens (default 128)\n"
            "  --decode N          generated tokens per sequence (default 256)\n"
            "  -r, --runs N        runs; the median is reported (default 5)\n"
            "  --concurrency N     sequences at once through the scheduler (default 1)\n"
            "  --peers LIST|auto   run through these nodes (host:port,...) instead of this machine\n"
            "  --key FILE          cluster key for --peers\n"
            "  --head-layers       with --peers: this machine holds layers too\n"
            "  --spread            every node gets layers\n"
            "  --json FILE         every raw figure as JSON\n"
            "  --plot FILE.svg     tokens/s per run and the slowest stage per step, as SVG\n"
            "  --no-engine         skip the engine measurement (only the scheduler's)\n"
            "  --no-sched          skip the scheduler measurement (only the engine's)\n"
            "  --no-mmap-copy      engine: read the weights through the file mapping\n"
            "  Without -m the default model (stories260K) is used.\n");
}

struct run_fig {
    double prompt_tps, gen_tps, wall_ms, ttft_ms_max;
    double ttft_ms[MAX_CONC];
    int generated;
    int n_stages;
    double compute_ms[HIVE_SCHED_MAX_STAGES], hop_in_ms[HIVE_SCHED_MAX_STAGES], hop_out_ms;
    int slowest_stage;
    double slowest_ms;
};

struct stream {
    hive_seq *q;
    double t_submit, t_first, t_end;
    int n_gen;
};

static void *pull(void *arg) {
    struct stream *s = arg;
    int32_t tok;
    while (hive_seq_next(s->q, &tok, -1) == 1) {
        if (s->n_gen++ == 0) s->t_first = hive_now_ms();
    }
    s->t_end = hive_now_ms();
    return NULL;
}

/* One run: conc sequences at once. Returns 0 or prints and returns 1. */
static int one_run(hive_sched *sc, const int32_t *prompt, int n_prompt, int n_decode, int conc, struct run_fig *f) {
    struct stream st[MAX_CONC];
    pthread_t th[MAX_CONC];
    memset(st, 0, sizeof st);
    memset(f, 0, sizeof *f);
    struct hive_seq_params p = {.prompt = prompt, .n_prompt = n_prompt, .max_tokens = n_decode,
                                .sampling = hive_sampler_default_params(), .penalize_prompt = 0};
    char err[HIVE_ERR_LEN];
    int n = 0, rc = 0;
    double t0 = hive_now_ms();
    for (; n < conc; n++) {
        st[n].t_submit = hive_now_ms();
        if (hive_sched_submit(sc, &p, &st[n].q, err)) {
            fprintf(stderr, "hive bench: %s\n", err);
            rc = 1;
            break;
        }
        if (pthread_create(&th[n], NULL, pull, &st[n])) {
            hive_seq_release(st[n].q);
            rc = 1;
            break;
        }
    }
    double first = 0, last = 0;
    long decode_tokens = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (hive_seq_finish(st[i].q) == HIVE_FINISH_ERROR) {
            fprintf(stderr, "hive bench: %s\n", hive_seq_error(st[i].q));
            rc = 1;
        }
        f->ttft_ms[i] = hive_seq_ttft_ms(st[i].q);
        if (f->ttft_ms[i] > f->ttft_ms_max) f->ttft_ms_max = f->ttft_ms[i];
        hive_seq_release(st[i].q);
        f->generated += st[i].n_gen;
        if (st[i].n_gen > 1) decode_tokens += st[i].n_gen - 1;
        /* the first token's time from the scheduler: the puller may have started late */
        double t_first = f->ttft_ms[i] > 0 ? st[i].t_submit + f->ttft_ms[i] : st[i].t_first;
        if (st[i].n_gen > 0 && (!first || t_first < first)) first = t_first;
        if (st[i].t_end > last) last = st[i].t_end;
    }
    f->wall_ms = last - t0;
    f->prompt_tps = f->ttft_ms_max > 0 ? (double)n_prompt * n / (f->ttft_ms_max / 1000.0) : 0;
    f->gen_tps = last > first && first > 0 ? (double)decode_tokens / ((last - first) / 1000.0) : 0;
    struct hive_sched_stats *ss = calloc(1, sizeof *ss);
    if (ss) {
        /* readers see a copy the scheduler publishes every 50 ms: wait until it holds this run */
        for (int k = 0; k < 20; k++) {
            hive_sched_get_stats(sc, ss);
            if (ss->running == 0 && ss->n_stages > 0 && ss->st[0].compute_ms_avg > 0) break;
            struct timespec ts = {0, 25 * 1000000L};
            nanosleep(&ts, NULL);
        }
        f->n_stages = ss->n_stages;
        f->hop_out_ms = ss->hop_out_ms_avg;
        f->slowest_stage = -1;
        for (int i = 0; i < ss->n_stages && i < HIVE_SCHED_MAX_STAGES; i++) {
            f->compute_ms[i] = ss->st[i].compute_ms_avg;
            f->hop_in_ms[i] = ss->st[i].hop_in_ms_avg;
            if (f->slowest_stage < 0 || f->compute_ms[i] > f->slowest_ms) f->slowest_stage = i, f->slowest_ms = f->compute_ms[i];
        }
        free(ss);
    }
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double tmp[MAX_RUNS];
    memcpy(tmp, v, sizeof *v * (size_t)n);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* Two bar charts side by side: generation tok/s per run (median dashed) and
 * the slowest stage's compute per step per run. */
static int write_plot(const char *path, const char *title, const struct run_fig *r, int n, double med_gen) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const int W = 760, H = 320, pw = 330, ph = 200, top = 70;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
               "<text x=\"20\" y=\"28\" font-size=\"16\" font-weight=\"bold\" fill=\"#1d2733\">",
            W, H, W, H);
    xml_text(f, title);
    fputs("</text>\n", f);
    for (int panel = 0; panel < 2; panel++) {
        int x0 = 50 + panel * (pw + 50);
        double maxv = 0;
        for (int i = 0; i < n; i++) {
            double v = panel ? r[i].slowest_ms : r[i].gen_tps;
            if (v > maxv) maxv = v;
        }
        if (maxv <= 0) maxv = 1;
        maxv *= 1.15;
        fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#5f6b7a\">%s</text>\n", x0, top - 12,
                panel ? "slowest stage: compute per step (ms)" : "generation tokens/s per run");
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#c9d0d8\"/>\n", x0, top + ph, x0 + pw, top + ph);
        for (int k = 0; k <= 4; k++) {
            int y = top + ph - ph * k / 4;
            fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eef1f4\"/>\n", x0, y, x0 + pw, y);
            double tv = maxv * k / 4;
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#5f6b7a\" font-size=\"10\">%.*f</text>\n", x0 - 4,
                    y + 3, maxv >= 100 ? 0 : maxv >= 10 ? 1 : 2, tv);
        }
        double bw = (double)pw / n;
        for (int i = 0; i < n; i++) {
            double v = panel ? r[i].slowest_ms : r[i].gen_tps;
            double h = v / maxv * ph;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>run %d: %.3f</title></rect>\n",
                    x0 + i * bw + bw * 0.15, top + ph - h, bw * 0.7, h, panel ? "#b45309" : "#0f766e", i + 1, v);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#5f6b7a\" font-size=\"10\">%d</text>\n",
                    x0 + i * bw + bw / 2, top + ph + 14, i + 1);
        }
        if (!panel) {
            double y = top + ph - med_gen / maxv * ph;
            fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#1d2733\" stroke-dasharray=\"4 3\"/>\n", x0,
                    y, x0 + pw, y);
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#1d2733\" font-size=\"10\">median %.1f</text>\n",
                    x0 + pw, y - 4, med_gen);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#5f6b7a\" font-size=\"10\">run</text>\n",
                x0 + pw / 2, top + ph + 30);
    }
    fputs("</svg>\n", f);
    return fclose(f) ? -1 : 0;
}

/* "engine: run 3 of 5" on one updating line (a terminal only). */
static void engine_progress(void *ctx, int done, int total) {
    (void)ctx;
    fprintf(stderr, "\r  engine: run %d of %d", done, total);
    if (done >= total) fprintf(stderr, "\r%30s\r", "");
    fflush(stderr);
}

int cli_bench(int argc, char **argv) {
    const char *model = NULL, *peers = NULL, *key = NULL, *json_path = NULL, *plot_path = NULL;
    int conc = 1, head_layers = 0, spread = 0, engine = 1, sched = 1;
    struct hive_speed_opts o = {.n_threads = cli_default_threads(), .n_prompt = 128, .n_decode = 256, .reps = 5, .copy_weights = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(a, "--no-mmap-copy")) { o.copy_weights = 0; continue; }
        if (!strcmp(a, "--head-layers")) { head_layers = 1; continue; }
        if (!strcmp(a, "--spread")) { spread = 1; continue; }
        if (!strcmp(a, "--no-engine")) { engine = 0; continue; }
        if (!strcmp(a, "--no-sched")) { sched = 0; continue; }
        if (!v) {
            fprintf(stderr, "hive bench: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--peers")) peers = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--plot")) plot_path = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = cli_int_option("bench", a, v, 1, 1024, &o.n_threads);
        else if (!strcmp(a, "--prompt")) bad = cli_int_option("bench", a, v, 1, 1 << 16, &o.n_prompt);
        else if (!strcmp(a, "--decode")) bad = cli_int_option("bench", a, v, 1, 1 << 16, &o.n_decode);
        else if (!strcmp(a, "-r") || !strcmp(a, "--runs")) bad = cli_int_option("bench", a, v, 1, MAX_RUNS, &o.reps);
        else if (!strcmp(a, "--concurrency")) bad = cli_int_option("bench", a, v, 1, MAX_CONC, &conc);
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
    } else {
        if (cli_resolve_model(model, path, sizeof path)) return 1;
        model = path;
    }
    char err[HIVE_ERR_LEN];
    struct hive_speed sp;
    int have_engine = 0;
    if (engine && !peers) { /* the engine on this machine, as before */
        if (isatty(STDERR_FILENO)) o.progress = engine_progress;
        if (hive_model_measure_speed(model, &o, &sp, err)) {
            fprintf(stderr, "hive bench: %s\n", err);
            return 1;
        }
        have_engine = 1;
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
        fflush(stdout);
    }
    if (!sched) return 0;

    /* ---- through the scheduler ---- */
    struct hive_sched_opts so = {0};
    const char *addrs[HIVE_SCHED_MAX_STAGES];
    char *peer_buf = NULL;
    so.model_path = model;
    so.n_threads = o.n_threads;
    so.max_seqs = conc;
    so.max_queue = conc + 1;
    so.n_ctx = o.n_prompt + o.n_decode + 1;
    so.use_all = spread;
    so.log = stderr;
    if (cli_cluster_opts("bench", peers, key, head_layers, &so, addrs, HIVE_SCHED_MAX_STAGES, &peer_buf)) return 1;
    hive_sched *sc = NULL;
    if (hive_sched_open(&sc, &so, err)) {
        fprintf(stderr, "hive bench: %s\n", err);
        free(peer_buf);
        return 1;
    }
    int rc = 1;
    int n_vocab = hive_sched_n_vocab(sc);
    int32_t *prompt = malloc(sizeof *prompt * (size_t)o.n_prompt);
    struct run_fig *runs = calloc(MAX_RUNS, sizeof *runs);
    if (!prompt || !runs) goto out;
    for (int i = 0; i < o.n_prompt; i++) prompt[i] = (int32_t)(i == 0 ? 1 : 3 + (i * 37) % (n_vocab > 4 ? n_vocab - 3 : 1));
    struct run_fig warm;
    if (one_run(sc, prompt, o.n_prompt < 8 ? o.n_prompt : 8, 8, 1, &warm)) goto out; /* deploy, caches, threads */
    int n_stages = 0;
    printf("scheduler: %s, %d stream%s, prompt %d, %d generated, %d runs\n", peers ? "across the peers" : "this machine",
           conc, conc > 1 ? "s" : "", o.n_prompt, o.n_decode, o.reps);
    double ptps[MAX_RUNS], gtps[MAX_RUNS];
    for (int r = 0; r < o.reps; r++) {
        if (one_run(sc, prompt, o.n_prompt, o.n_decode, conc, &runs[r])) goto out;
        ptps[r] = runs[r].prompt_tps;
        gtps[r] = runs[r].gen_tps;
        n_stages = runs[r].n_stages;
        printf("run %d: prompt %.1f tok/s, generation %.1f tok/s, first token %.1f ms, %d tokens in %.0f ms\n", r + 1,
               runs[r].prompt_tps, runs[r].gen_tps, runs[r].ttft_ms_max, runs[r].generated, runs[r].wall_ms);
    }
    double med_p = median(ptps, o.reps), med_g = median(gtps, o.reps);
    printf("median: prompt %.1f tok/s, generation %.1f tok/s\n", med_p, med_g);
    hive_sched_print_summary(sc, stdout);
    struct hive_sched_stats *ss = calloc(1, sizeof *ss);
    if (!ss) goto out;
    hive_sched_get_stats(sc, ss);
    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "where", peers ? peers : "local");
        cJSON_AddNumberToObject(root, "threads", o.n_threads);
        cJSON_AddNumberToObject(root, "concurrency", conc);
        cJSON_AddNumberToObject(root, "n_prompt", o.n_prompt);
        cJSON_AddNumberToObject(root, "n_decode", o.n_decode);
        cJSON_AddNumberToObject(root, "runs", o.reps);
        if (have_engine) {
            cJSON *e = cJSON_AddObjectToObject(root, "engine");
            cJSON_AddNumberToObject(e, "prefill_tps", sp.prefill_tps);
            cJSON_AddNumberToObject(e, "decode_tps", sp.decode_tps);
            cJSON_AddNumberToObject(e, "bytes_per_token", (double)sp.bytes_per_token);
            cJSON_AddNumberToObject(e, "load_ms", sp.load_ms);
            cJSON_AddNumberToObject(e, "n_layer", sp.n_layer);
        } else {
            cJSON_AddNullToObject(root, "engine");
        }
        cJSON *med = cJSON_AddObjectToObject(root, "median");
        cJSON_AddNumberToObject(med, "prompt_tps", med_p);
        cJSON_AddNumberToObject(med, "gen_tps", med_g);
        cJSON *stages = cJSON_AddArrayToObject(root, "stages");
        for (int i = 0; i < ss->n_stages && i < HIVE_SCHED_MAX_STAGES; i++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddItemToArray(stages, s);
            cJSON_AddStringToObject(s, "name", ss->st[i].name);
            cJSON_AddStringToObject(s, "addr", ss->st[i].addr);
            cJSON_AddNumberToObject(s, "first", ss->st[i].first);
            cJSON_AddNumberToObject(s, "last", ss->st[i].last);
        }
        cJSON *jr = cJSON_AddArrayToObject(root, "run");
        for (int r = 0; r < o.reps; r++) {
            const struct run_fig *f = &runs[r];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddItemToArray(jr, j);
            cJSON_AddNumberToObject(j, "prompt_tps", f->prompt_tps);
            cJSON_AddNumberToObject(j, "gen_tps", f->gen_tps);
            cJSON_AddNumberToObject(j, "wall_ms", f->wall_ms);
            cJSON_AddNumberToObject(j, "generated", f->generated);
            cJSON_AddItemToObject(j, "ttft_ms", cJSON_CreateDoubleArray(f->ttft_ms, conc));
            cJSON_AddItemToObject(j, "compute_ms", cJSON_CreateDoubleArray(f->compute_ms, f->n_stages));
            cJSON_AddItemToObject(j, "hop_in_ms", cJSON_CreateDoubleArray(f->hop_in_ms, f->n_stages));
            cJSON_AddNumberToObject(j, "hop_out_ms", f->hop_out_ms);
            cJSON_AddNumberToObject(j, "slowest_stage", f->slowest_stage);
            cJSON_AddNumberToObject(j, "slowest_ms", f->slowest_ms);
        }
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        FILE *f = text ? fopen(json_path, "w") : NULL;
        int bad = !f || fputs(text, f) < 0 || fputc('\n', f) < 0;
        if (f && fclose(f)) bad = 1;
        free(text);
        if (bad) {
            fprintf(stderr, "hive bench: cannot write %s\n", json_path);
            free(ss);
            goto out;
        }
        printf("wrote %s\n", json_path);
    }
    free(ss);
    if (plot_path) {
        char title[512];
        const char *base = strrchr(model, '/');
        snprintf(title, sizeof title, "hive bench: %.200s, %d stage%s, %d stream%s, %d tokens", base ? base + 1 : model,
                 n_stages, n_stages == 1 ? "" : "s", conc, conc > 1 ? "s" : "", o.n_decode);
        if (write_plot(plot_path, title, runs, o.reps, med_g)) {
            fprintf(stderr, "hive bench: cannot write %s\n", plot_path);
            goto out;
        }
        printf("wrote %s\n", plot_path);
    }
    rc = 0;
out:
    free(prompt);
    free(runs);
    hive_sched_close(sc);
    free(peer_buf);
    return rc;
}
