/* cli_job.c - `hive job`: the queen. Runs a job (hive/job.h) on a fleet of
 * replicas over --peers (or this machine alone) and on workers that dial in
 * (--workers-listen), then prints each subtask's answer in order, the merge,
 * and a summary (who did what, retries, wall time).
 *
 *   hive job "TASK"              the model decomposes the task
 *   hive job --map FILE          one subtask per non-empty line of FILE ("-": stdin)
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/fleet.h"
#include "hive/gguf.h"
#include "hive/job.h"
#include "hive/ledger.h"
#include "hive/tokenizer.h"
#include "hive/worker.h"

struct job_opts {
    const char *task, *map_file, *reduce, *model, *peers, *key_path, *listen, *ledger_path, *name;
    int no_merge, json, quiet, no_ledger, max_replicas, per_replica;
    int n_predict, deadline_ms, timeout_ms, n_threads, n_ctx, wait_workers_ms, worker_dead_ms;
    struct hive_sampler_params sp;
};

static void usage(void) {
    fprintf(stderr,
            "usage: hive job \"TASK\" [options]\n"
            "       hive job --map FILE [options]\n"
            "  Splits the work into subtasks, runs them in parallel on the replicas of the\n"
            "  model over --peers (or on this machine) and on workers that dial in, and\n"
            "  merges the answers with one more model call.\n"
            "  TASK                   the model decomposes it into subtasks (a JSON list)\n"
            "  --map FILE             one subtask per non-empty line of FILE (- = stdin)\n"
            "  --reduce PROMPT        the merge instruction (default: combine the answers)\n"
            "  --no-merge             no merge call: the answers are the result\n"
            "  -m MODEL               the model (path or name; default: stories260K)\n"
            "  --peers A,B,...        nodes to run on; the planner forms replicas over them\n"
            "  --key FILE             cluster key (default: hive keygen's)\n"
            "  --replicas N           at most N replicas (default: what the planner finds best)\n"
            "  --per-replica N        subtasks at once on each replica, decoded in one batch (default 4;\n"
            "                         1 when the replicas have no room for 4 sequences' KV cache)\n"
            "  --workers-listen H:P   accept workers (`hive worker --queen H:P`) here\n"
            "  --wait-workers MS      with no --peers and no -m: wait this long for a worker (default 60000)\n"
            "  --worker-dead-after MS a worker silent this long is dropped, its subtask requeued (default 5000)\n"
            "  -n N                   tokens per answer, at most (default 128)\n"
            "  --deadline MS          a subtask not answered within MS goes to another (default 120000)\n"
            "  --timeout MS           give up on the whole job after MS (default: never)\n"
            "  --ledger FILE          the contribution ledger (default: $HIVE_LEDGER or ~/.local/share/hive/ledger.db)\n"
            "  --no-ledger            record nothing\n"
            "  --name NAME            the queen's name in the ledger (default \"queen\")\n"
            "  -t N                   threads on this machine, alone (default: every core)\n"
            "  --ctx N                context per sequence\n"
            "  --json                 the result as JSON on stdout\n"
            "  -q, --quiet            no progress on stderr\n"
            "  sampling: --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed (default greedy)\n");
}

static int parse_args(int argc, char **argv, struct job_opts *o) {
    memset(o, 0, sizeof *o);
    o->sp = hive_sampler_default_params();
    o->n_predict = 128;
    o->deadline_ms = 120000;
    o->timeout_ms = -1;
    o->wait_workers_ms = 60000;
    int seed_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 2;
        }
        if (a[0] != '-' || !strcmp(a, "-")) {
            if (o->task) {
                fprintf(stderr, "hive job: one task only (quote it)\n");
                return 1;
            }
            o->task = a;
            continue;
        }
        if (!strcmp(a, "--no-merge")) o->no_merge = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--no-ledger")) o->no_ledger = 1;
        else if (!v) {
            fprintf(stderr, "hive job: %s needs a value (try --help)\n", a);
            return 1;
        } else {
            int r = cli_sampler_option("job", a, v, &o->sp, &seed_set);
            if (r < 0) return 1;
            if (r == 0) {
                i++;
                continue;
            }
            i++;
            r = 0;
            if (!strcmp(a, "--map")) o->map_file = v;
            else if (!strcmp(a, "--reduce")) o->reduce = v;
            else if (!strcmp(a, "-m")) o->model = v;
            else if (!strcmp(a, "--peers")) o->peers = v;
            else if (!strcmp(a, "--key")) o->key_path = v;
            else if (!strcmp(a, "--workers-listen")) o->listen = v;
            else if (!strcmp(a, "--ledger")) o->ledger_path = v;
            else if (!strcmp(a, "--name")) o->name = v;
            else if (!strcmp(a, "--replicas")) r = cli_int_option("job", a, v, 1, 64, &o->max_replicas);
            else if (!strcmp(a, "--per-replica")) r = cli_int_option("job", a, v, 1, 64, &o->per_replica);
            else if (!strcmp(a, "--wait-workers")) r = cli_int_option("job", a, v, 0, 86400000, &o->wait_workers_ms);
            else if (!strcmp(a, "--worker-dead-after")) r = cli_int_option("job", a, v, 200, 3600000, &o->worker_dead_ms);
            else if (!strcmp(a, "-n")) r = cli_int_option("job", a, v, 1, 1 << 20, &o->n_predict);
            else if (!strcmp(a, "--deadline")) r = cli_int_option("job", a, v, 100, 86400000, &o->deadline_ms);
            else if (!strcmp(a, "--timeout")) r = cli_int_option("job", a, v, 1, 86400000 * 7, &o->timeout_ms);
            else if (!strcmp(a, "-t")) r = cli_int_option("job", a, v, 1, 1024, &o->n_threads);
            else if (!strcmp(a, "--ctx")) r = cli_int_option("job", a, v, 16, 1 << 20, &o->n_ctx);
            else {
                fprintf(stderr, "hive job: unknown option %s (try --help)\n", a);
                return 1;
            }
            if (r) return 1;
        }
    }
    if (!o->task == !o->map_file) {
        fprintf(stderr, "hive job: give a TASK or --map FILE (one of them; try --help)\n");
        return 1;
    }
    return 0;
}

/* The non-empty lines of path ("-": stdin), trimmed of their line ends. */
static int read_lines(const char *path, char ***out, int *n) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "hive job: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char **v = NULL, *line = NULL;
    size_t cap = 0;
    int count = 0, vcap = 0, rc = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (count == vcap) {
            vcap = vcap ? vcap * 2 : 32;
            char **p = realloc(v, (size_t)vcap * sizeof *p);
            if (!p) {
                rc = 1;
                break;
            }
            v = p;
        }
        if (!(v[count] = strdup(line))) {
            rc = 1;
            break;
        }
        count++;
    }
    free(line);
    int read_err = ferror(f) ? errno : 0; /* a directory, an I/O error */
    if (f != stdin) fclose(f);
    if (!rc && read_err) fprintf(stderr, "hive job: cannot read %s: %s\n", path, strerror(read_err)), rc = 1;
    else if (rc) fprintf(stderr, "hive job: out of memory reading %s\n", path);
    else if (count == 0) fprintf(stderr, "hive job: %s has no subtasks (one per non-empty line)\n", path), rc = 1;
    *out = v;
    *n = count;
    return rc;
}

/* ---- output ---- */

/* Subtasks (and the merge) each computed, by who. */
struct tally {
    char name[64];
    int n;
};

static void tally_add(struct tally *t, int *n, int cap, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(t[i].name, name)) {
            t[i].n++;
            return;
        }
    if (*n < cap) {
        snprintf(t[*n].name, sizeof t[*n].name, "%s", name);
        t[(*n)++].n = 1;
    }
}

static cJSON *answer_json(const struct hive_job_answer *a, int i) {
    cJSON *o = cJSON_CreateObject();
    if (i >= 0) cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddStringToObject(o, "prompt", a->prompt ? a->prompt : "");
    if (a->done) cJSON_AddStringToObject(o, "answer", a->text ? a->text : "");
    else cJSON_AddNullToObject(o, "answer");
    cJSON_AddStringToObject(o, "done_by", a->done_by ? a->done_by : "");
    cJSON_AddNumberToObject(o, "attempts", a->attempts);
    cJSON_AddNumberToObject(o, "prompt_tokens", a->n_prompt);
    cJSON_AddNumberToObject(o, "completion_tokens", a->n_gen);
    return o;
}

static int print_result(hive_job *j, const struct job_opts *o) {
    struct hive_job_status st;
    hive_job_get_status(j, &st);
    struct tally t[128];
    int nt = 0;
    long gen = 0;
    cJSON *root = o->json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (root) {
        cJSON_AddStringToObject(root, "id", hive_job_id(j));
        cJSON_AddStringToObject(root, "state", hive_job_state_name(st.state));
        if (st.error[0]) cJSON_AddStringToObject(root, "error", st.error);
        arr = cJSON_AddArrayToObject(root, "subtasks");
    }
    for (int i = 0; i <= st.n_subtasks; i++) {
        struct hive_job_answer a;
        int idx = i < st.n_subtasks ? i : HIVE_JOB_MERGE;
        if (hive_job_get_answer(j, idx, &a)) continue;
        if (a.done) tally_add(t, &nt, 128, a.done_by ? a.done_by : "?"), gen += a.n_gen;
        if (root && idx >= 0) cJSON_AddItemToArray(arr, answer_json(&a, i));
        else if (root) cJSON_AddItemToObject(root, "merge", answer_json(&a, -1));
        else if (idx >= 0) printf("[%d] %s\n%s\n\n", i + 1, a.prompt ? a.prompt : "", a.done ? a.text : "(no answer)");
        else printf("[merge]\n%s\n", a.done ? a.text : "(no answer)");
        hive_job_answer_free(&a);
    }
    if (root) {
        cJSON *s = cJSON_AddObjectToObject(root, "summary");
        cJSON_AddNumberToObject(s, "wall_ms", st.wall_ms);
        cJSON_AddNumberToObject(s, "retries", st.retries);
        cJSON_AddNumberToObject(s, "discarded", st.discarded);
        cJSON_AddNumberToObject(s, "completion_tokens", (double)gen);
        cJSON *by = cJSON_AddObjectToObject(s, "by");
        for (int i = 0; i < nt; i++) cJSON_AddNumberToObject(by, t[i].name, t[i].n);
        if (cli_print_json(root)) return 1;
    }
    if (!o->quiet) {
        fprintf(stderr, "job %s: %s, %d subtasks%s in %.1f s, %d retries, %d late duplicates discarded, %.1f tok/s\n",
                hive_job_id(j), hive_job_state_name(st.state), st.n_subtasks, st.merged ? " + merge" : "",
                st.wall_ms / 1000, st.retries, st.discarded, st.wall_ms > 0 ? gen * 1000.0 / st.wall_ms : 0);
        for (int i = 0; i < nt; i++) fprintf(stderr, "  %-32s %d\n", t[i].name, t[i].n);
        if (st.error[0]) fprintf(stderr, "hive job: %s\n", st.error);
    }
    return st.state == HIVE_JOB_DONE ? 0 : 1;
}

/* Waits until the job ends (or the timeout, or Ctrl-C), with a progress
 * line on stderr when it is a terminal. */
static void follow(hive_job *j, const struct job_opts *o) {
    double until = o->timeout_ms > 0 ? hive_now_ms() + o->timeout_ms : 0;
    uint64_t seen = 0;
    int last_done = -1, show = !o->quiet && isatty(fileno(stderr));
    while (!hive_job_wait(j, 0)) {
        if (cli_interrupted || (until > 0 && hive_now_ms() > until)) {
            hive_job_cancel(j);
            break;
        }
        seen = hive_job_wait_change(j, seen, 200);
        struct hive_job_status st;
        hive_job_get_status(j, &st);
        if (show && st.done != last_done && st.n_subtasks > 0) {
            fprintf(stderr, "\rjob: %d/%d done, %d running, %d retries", st.done, st.n_subtasks, st.running,
                    st.retries);
            last_done = st.done;
        }
    }
    if (show && last_done >= 0) fputc('\n', stderr);
}

/* ---- the queen ---- */

int cli_job(int argc, char **argv) {
    struct job_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 2 ? 0 : 1;
    char **lines = NULL, model_path[4096], ledger_path[4096], err[HIVE_ERR_LEN];
    int n_lines = 0;
    if (o.map_file && read_lines(o.map_file, &lines, &n_lines)) return 1;
    /* Without -m and --peers the queen can serve dial-in workers alone. */
    int use_fleet = o.model || o.peers || !o.listen;
    hive_gguf *gguf = NULL;
    hive_tokenizer *tok = NULL;
    hive_fleet *fleet = NULL;
    hive_ledger *ledger = NULL;
    hive_workers *workers = NULL;
    hive_job *job = NULL;
    char *peer_buf = NULL;
    int per_replica_default = 0;
    const char *addrs[HIVE_PLAN_MAX_NODES];
    struct hive_fleet_opts fo;
    memset(&fo, 0, sizeof fo);
    rc = 1;
    if (use_fleet) {
        if (!o.model ? cli_default_model(model_path, sizeof model_path)
                     : cli_resolve_model(o.model, model_path, sizeof model_path))
            goto out;
        if (hive_gguf_open(&gguf, model_path, err) || hive_tokenizer_load(&tok, gguf, err)) {
            fprintf(stderr, "hive job: %s\n", err);
            goto out;
        }
        if (cli_cluster_opts("job", o.peers, o.key_path, 0, &fo.sched, addrs, HIVE_PLAN_MAX_NODES, &peer_buf))
            goto out;
        fo.sched.model_path = model_path;
        fo.sched.n_ctx = o.n_ctx;
        /* Several subtasks per replica share each pass over the weights:
         * decode is bound by reading them, so 4 at once gave 1.7x the
         * tokens/s of one on a one-thread node (BENCHMARKS.md, jobs). */
        if (o.per_replica <= 0) o.per_replica = HIVE_JOB_PER_REPLICA, per_replica_default = 1;
        fo.sched.max_seqs = o.per_replica;
        fo.sched.n_threads = o.n_threads;
        fo.sched.log = stderr;
        fo.max_replicas = o.max_replicas;
    } else if (o.key_path ? hive_key_load(o.key_path, fo.sched.key, err) : hive_key_load_default(fo.sched.key, err)) {
        fprintf(stderr, "hive job: %s\n", err);
        goto out;
    }
    if (!o.no_ledger) {
        const char *lp = o.ledger_path;
        if (!lp && !hive_ledger_default_path(ledger_path, sizeof ledger_path, err)) lp = ledger_path;
        if (!lp || hive_ledger_open(&ledger, lp, err)) {
            fprintf(stderr, "hive job: ledger: %s (--no-ledger runs without)\n", err);
            goto out;
        }
    }
    cli_catch_interrupt();
    int fleet_rc = use_fleet ? hive_fleet_open(&fleet, &fo, err) : HIVE_OK;
    if (fleet_rc) {
        /* Only the planner's "does not fit" (HIVE_ERR_INVAL) is worth a try
         * with less KV cache; a peer that cannot be reached is not. */
        if (!per_replica_default || fleet_rc != HIVE_ERR_INVAL || cli_interrupted) {
            fprintf(stderr, "hive job: %s\n", err);
            goto out;
        }
        /* No room for the default's KV cache: one subtask at a time. */
        if (!o.quiet)
            fprintf(stderr, "hive job: no room for %d subtasks at once per replica (%s): one at a time\n",
                    o.per_replica, err);
        o.per_replica = fo.sched.max_seqs = 1;
        if (hive_fleet_open(&fleet, &fo, err)) {
            fprintf(stderr, "hive job: %s\n", err);
            goto out;
        }
    }
    if (o.listen) {
        struct hive_workers_opts wo = {.listen = o.listen, .dead_after_ms = o.worker_dead_ms,
                                       .log = o.quiet ? NULL : stderr};
        memcpy(wo.key, fo.sched.key, sizeof wo.key);
        if (hive_workers_open(&workers, &wo, err)) {
            fprintf(stderr, "hive job: %s\n", err);
            goto out;
        }
        printf("workers: listening on %s\n", hive_workers_addr(workers));
        fflush(stdout);
        if (!fleet && !hive_workers_wait(workers, o.wait_workers_ms)) {
            fprintf(stderr, "hive job: no worker came within %d ms\n", o.wait_workers_ms);
            goto out;
        }
    }
    struct hive_job_opts jo = {.fleet = fleet, .tok = tok,
                               .chat_template = gguf ? hive_chat_template_detect(gguf) : HIVE_CHAT_NONE,
                               .max_tokens = o.n_predict, .sampling = o.sp, .deadline_ms = o.deadline_ms,
                               .per_replica = o.per_replica, .workers = workers != NULL, .ledger = ledger,
                               .queen = o.name, .log = o.quiet ? NULL : stderr};
    struct hive_job_spec js = {.task = o.task, .subtasks = (const char *const *)lines, .n_subtasks = n_lines,
                               .reduce = o.reduce, .no_merge = o.no_merge};
    if (hive_job_start(&job, &jo, &js, err)) {
        fprintf(stderr, "hive job: %s\n", err);
        goto out;
    }
    if (workers) hive_workers_set_job(workers, job);
    follow(job, &o);
    if (workers) hive_workers_set_job(workers, NULL);
    rc = print_result(job, &o);
    if (cli_interrupted) rc = 130;
out:
    hive_job_free(job);
    hive_workers_close(workers);
    hive_fleet_close(fleet);
    hive_ledger_close(ledger);
    free(peer_buf);
    for (int i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    hive_tokenizer_free(tok);
    hive_gguf_close(gguf);
    return rc;
}
