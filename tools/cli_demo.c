/* cli_demo.c - `hive demo`: a whole cluster on one machine in one command.
 * Generates a temporary cluster key, starts three `hive node` processes on
 * 127.0.0.1 (this same binary, via /proc/self/exe) on ephemeral ports,
 * splits the default model across them, prints the plan, streams a story
 * and the per-stage and per-hop times, and stops the nodes again: on
 * success, on error and on Ctrl-C (the run stops at the next token, the
 * nodes are stopped and the demo exits 130; the nodes also die with this
 * process, PR_SET_PDEATHSIG). The model and the options are checked before
 * any node starts. Everything it writes lives in a temporary directory
 * that is removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hive/core.h"
#include "hive/gguf.h"
#include "hive/model.h"
#include "hive/net.h"
#include "hive/sample.h"

#pragma weak cli_default_model
#pragma weak cli_run

#define MAX_DEMO_NODES 8

static int g_n_children;
static pid_t g_children[MAX_DEMO_NODES];

static void usage(void) {
    fprintf(stderr,
            "usage: hive demo [-m MODEL.gguf] [-p PROMPT] [-n N] [--nodes K] [-t N (per node, default 1)]\n"
            "                 [--temp T] [--seed S]\n"
            "                 [--trace FILE]\n"
            "  Starts K (default 3) local nodes, splits the model across them and tells a story.\n");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Starts one node; returns its pid and fills addr from its first line. */
static pid_t start_node(const char *dir, const char *key, int index, const char *threads, char *addr, size_t cap) {
    char cache[512], name[32], log[512];
    snprintf(cache, sizeof cache, "%s/cache-%d", dir, index);
    snprintf(name, sizeof name, "node-%d", index + 1);
    snprintf(log, sizeof log, "%s/node-%d.log", dir, index + 1);
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        signal(SIGINT, SIG_IGN); /* the demo decides when nodes stop */
        int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(pipefd[1], 1);
        if (log_fd >= 0) dup2(log_fd, 2);
        close(pipefd[0]);
        char *argv[16];
        int k = 0;
        argv[k++] = "hive";
        argv[k++] = "node";
        argv[k++] = "--listen";
        argv[k++] = "127.0.0.1:0";
        argv[k++] = (char *)"--key";
        argv[k++] = (char *)key;
        argv[k++] = "--cache-dir";
        argv[k++] = cache;
        argv[k++] = "--name";
        argv[k++] = name;
        if (threads) {
            argv[k++] = "-t";
            argv[k++] = (char *)threads;
        }
        argv[k] = NULL;
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(pipefd[1]);
    char line[256];
    size_t len = 0;
    addr[0] = '\0';
    for (int waited = 0; waited < 30000 && len < sizeof line - 1;) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        int pr = poll(&p, 1, 100);
        if (pr < 0 && errno == EINTR) break;
        if (pr <= 0) {
            waited += 100;
            continue;
        }
        if (read(pipefd[0], line + len, 1) != 1) break;
        if (line[len] == '\n') {
            line[len] = '\0';
            if (sscanf(line, "listening on %127s", addr) == 1) break;
            len = 0;
            continue;
        }
        len++;
    }
    close(pipefd[0]);
    if (!addr[0] || cap < 2) {
        fprintf(stderr, "hive demo: %s did not start; its log:\n", name);
        FILE *f = fopen(log, "r");
        char buf[512];
        while (f && fgets(buf, sizeof buf, f)) fputs(buf, stderr);
        if (f) fclose(f);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void stop_nodes(void) {
    for (int i = 0; i < g_n_children; i++)
        if (g_children[i] > 0) kill(g_children[i], SIGTERM);
    for (int i = 0; i < g_n_children; i++) {
        if (g_children[i] <= 0) continue;
        int done = 0;
        for (int t = 0; t < 250 && !done; t++) { /* 5 s, then force */
            done = waitpid(g_children[i], NULL, WNOHANG) == g_children[i];
            if (!done) {
                struct timespec ts = {0, 20 * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        if (!done) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
        }
        g_children[i] = 0;
    }
}

int cli_demo(int argc, char **argv) {
    /* All nodes share this machine's cores, so each gets one thread by
     * default: more would only make the nodes' thread pools fight. */
    const char *model = NULL, *prompt = "Once upon a time", *n_predict = "150", *threads = "1";
    const char *temp = NULL, *seed = NULL, *trace = NULL;
    int n_nodes = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "hive demo: %s needs a value (or is unknown)\n", a);
            return 1;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) n_predict = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = v;
        else if (!strcmp(a, "--temp")) temp = v;
        else if (!strcmp(a, "--seed")) seed = v;
        else if (!strcmp(a, "--trace")) trace = v;
        else if (!strcmp(a, "--nodes")) {
            if (cli_int_option("demo", a, v, 1, MAX_DEMO_NODES, &n_nodes)) return 1;
        } else {
            fprintf(stderr, "hive demo: unknown option %s (try --help)\n", a);
            return 1;
        }
        i++;
    }
    if (!cli_run) {
        fprintf(stderr, "hive demo: distributed runs are not built into this binary\n");
        return 1;
    }
    /* Everything that can be checked is checked before a node starts. */
    int n_check;
    struct hive_sampler_params sp_check = hive_sampler_default_params();
    if (cli_int_option("demo", "-n", n_predict, 0, 1 << 24, &n_check) ||
        (threads && cli_int_option("demo", "-t", threads, 1, 1024, &n_check)) ||
        (temp && cli_sampler_option("demo", "--temp", temp, &sp_check, NULL)) ||
        (seed && cli_sampler_option("demo", "--seed", seed, &sp_check, NULL)))
        return 1;
    char model_path[4096];
    if (!model) {
        if (!cli_default_model || cli_default_model(model_path, sizeof model_path)) return 1;
        model = model_path;
    }
    {
        char err[HIVE_ERR_LEN];
        hive_gguf *g = NULL;
        struct hive_hparams hp;
        if (hive_gguf_open(&g, model, err) || hive_model_read_hparams(g, &hp, err)) {
            fprintf(stderr, "hive demo: %s\n", err);
            hive_gguf_close(g);
            return 1;
        }
        hive_gguf_close(g);
        if (n_nodes > hp.n_layer) {
            fprintf(stderr,
                    "hive demo: %s has %d layer%s, so %d nodes cannot each hold one; use --nodes 1..%d\n", model,
                    hp.n_layer, hp.n_layer == 1 ? "" : "s", n_nodes, hp.n_layer < MAX_DEMO_NODES ? hp.n_layer : MAX_DEMO_NODES);
            return 1;
        }
    }
    char dir[] = "/tmp/hive-demo-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "hive demo: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char key_path[128], err[HIVE_ERR_LEN];
    uint8_t key[HIVE_KEY_BYTES];
    snprintf(key_path, sizeof key_path, "%s/cluster.key", dir);
    hive_key_generate(key);
    int rc = 1;
    if (hive_key_write(key_path, key, 1, err)) {
        fprintf(stderr, "hive demo: %s\n", err);
        goto out;
    }
    cli_catch_interrupt(); /* Ctrl-C: the run stops at its next token, then the nodes stop */
    signal(SIGPIPE, SIG_IGN);

    fprintf(stderr, "hive demo: starting %d nodes on 127.0.0.1 with a fresh cluster key\n", n_nodes);
    char peers[MAX_DEMO_NODES * 130] = "";
    for (int i = 0; i < n_nodes; i++) {
        char addr[128];
        pid_t pid = cli_interrupted ? -1 : start_node(dir, key_path, i, threads, addr, sizeof addr);
        if (pid <= 0) goto out;
        g_children[i] = pid;
        g_n_children = i + 1;
        size_t l = strlen(peers);
        snprintf(peers + l, sizeof peers - l, "%s%s", i ? "," : "", addr);
        fprintf(stderr, "  node-%d listening on %s (pid %d)\n", i + 1, addr, (int)pid);
    }
    fprintf(stderr, "hive demo: model %s\n\n", model);

    char head_cache[128];
    snprintf(head_cache, sizeof head_cache, "%s/head-cache", dir);
    char *rargv[40];
    int k = 0;
    rargv[k++] = "run";
    rargv[k++] = "-m";
    rargv[k++] = (char *)model;
    rargv[k++] = "--peers";
    rargv[k++] = peers;
    rargv[k++] = "--key";
    rargv[k++] = key_path;
    rargv[k++] = "--spread";
    rargv[k++] = "--cache-dir";
    rargv[k++] = head_cache;
    rargv[k++] = "-p";
    rargv[k++] = (char *)prompt;
    rargv[k++] = "-n";
    rargv[k++] = (char *)n_predict;
    if (threads) {
        rargv[k++] = "-t";
        rargv[k++] = (char *)threads;
    }
    if (temp) {
        rargv[k++] = "--temp";
        rargv[k++] = (char *)temp;
    }
    if (seed) {
        rargv[k++] = "--seed";
        rargv[k++] = (char *)seed;
    }
    if (trace) {
        rargv[k++] = "--trace";
        rargv[k++] = (char *)trace;
    }
    rargv[k] = NULL;
    rc = cli_interrupted ? 130 : cli_run(k, rargv);
out:
    stop_nodes();
    if (cli_interrupted) {
        fprintf(stderr, "\nhive demo: interrupted; %d node%s stopped\n", g_n_children, g_n_children == 1 ? "" : "s");
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 130;
    }
    if (rc) {
        /* Show what the nodes said, it usually explains the failure. */
        for (int i = 0; i < n_nodes; i++) {
            char log[256], buf[512];
            snprintf(log, sizeof log, "%s/node-%d.log", dir, i + 1);
            FILE *f = fopen(log, "r");
            while (f && fgets(buf, sizeof buf, f))
                if (strstr(buf, "warn") || strstr(buf, "error") || strstr(buf, "refused")) fprintf(stderr, "  node-%d: %s", i + 1, buf);
            if (f) fclose(f);
        }
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
