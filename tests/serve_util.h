/* serve_util.h - starting `hive serve` as a process for the tests: waits
 * for its "listening on http://..." line and gives the base URL. */
#ifndef HIVE_TEST_SERVE_UTIL_H
#define HIVE_TEST_SERVE_UTIL_H

#include "test_cluster_util.h"

struct ts_serve {
    pid_t pid;
    char base[128];
    char log[256];
};

/* argv after "hive serve" (NULL-terminated). Returns 0, -1 on failure, or
 * 77 when this binary has no scheduler yet. */
static inline int ts_serve_start(const struct tc_env *e, struct ts_serve *s, const char *const *args) {
    snprintf(s->log, sizeof s->log, "%s/serve.log", e->dir);
    char *argv[48];
    int k = 0;
    argv[k++] = (char *)e->bin;
    argv[k++] = "serve";
    for (int i = 0; args[i] && k < 47; i++) argv[k++] = (char *)args[i];
    argv[k] = NULL;
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    int log_fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    s->pid = tc_spawn(argv, pipefd[1], log_fd);
    close(pipefd[1]);
    if (log_fd >= 0) close(log_fd);
    tc_read_listening(pipefd[0], s->base, sizeof s->base, 120000);
    close(pipefd[0]);
    if (s->base[0]) return 0;
    int st = tc_wait(s->pid, 5000);
    s->pid = 0;
    char *logtext = check_read_file(s->log, NULL);
    int no_sched = logtext && strstr(logtext, "scheduler is not built");
    if (!no_sched) fprintf(stderr, "hive serve did not start (exit %d); its log:\n%s\n", st, logtext ? logtext : "");
    free(logtext);
    return no_sched ? 77 : -1;
}

/* SIGTERM; returns the exit status (0 = clean, and under ASan no leaks). */
static inline int ts_serve_stop(struct ts_serve *s) {
    if (s->pid <= 0) return 0;
    kill(s->pid, SIGTERM);
    int st = tc_wait(s->pid, 60000);
    s->pid = 0;
    if (st != 0) {
        char *logtext = check_read_file(s->log, NULL);
        fprintf(stderr, "hive serve exited with %d; its log:\n%s\n", st, logtext ? logtext : "");
        free(logtext);
    }
    return st;
}

#endif
