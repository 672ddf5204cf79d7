/* tool_lanproxy.c - `hive-lanproxy`: the LAN emulator as a program.
 *
 *   hive-lanproxy --listen 127.0.0.1:PORT --to 127.0.0.1:PORT [--delay-ms D]
 *                 [--jitter-ms J] [--rate-mbit R] [--control 127.0.0.1:PORT] [--seed N]
 *
 * Prints "control on HOST:PORT" (with --control) and then
 * "listening on HOST:PORT" on stdout, flushed, so a test that passes port 0
 * can read the real ports. Runs until SIGINT or SIGTERM. Model and control
 * commands: include/hive/lanproxy.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/lanproxy.h"
#include "hive/net.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hive-lanproxy --listen HOST:PORT --to HOST:PORT [--delay-ms D] [--jitter-ms J]\n"
            "                     [--rate-mbit R] [--control HOST:PORT] [--seed N]\n"
            "Forwards TCP connections from --listen to --to, adding one-way delay D ms per\n"
            "direction (jitter +-J ms, never reordering) and a bandwidth cap of R Mbit/s per\n"
            "direction. Control socket commands, one per line: cut, cut-new on|off,\n"
            "delay D [J], jitter J, rate R, stats. Port 0 picks a free port (printed).\n");
}

static int parse_number(const char *flag, const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < 0) {
        fprintf(stderr, "hive-lanproxy: %s wants a number >= 0, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    char listen_host[256] = "", to_host[256] = "", control_host[256] = "";
    struct hive_lanproxy_opts o = {0};
    int have_listen = 0, have_to = 0, have_control = 0;
    char err[HIVE_ERR_LEN];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hive-lanproxy: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        double seed = 0;
        if (!strcmp(a, "--listen")) {
            bad = hive_net_parse_hostport(v, listen_host, sizeof listen_host, &o.listen_port, err) != HIVE_OK;
            have_listen = 1;
        } else if (!strcmp(a, "--to")) {
            bad = hive_net_parse_hostport(v, to_host, sizeof to_host, &o.to_port, err) != HIVE_OK;
            have_to = 1;
        } else if (!strcmp(a, "--control")) {
            bad = hive_net_parse_hostport(v, control_host, sizeof control_host, &o.control_port, err) != HIVE_OK;
            have_control = 1;
        } else if (!strcmp(a, "--delay-ms")) {
            if (parse_number(a, v, &o.delay_ms)) return 2;
        } else if (!strcmp(a, "--jitter-ms")) {
            if (parse_number(a, v, &o.jitter_ms)) return 2;
        } else if (!strcmp(a, "--rate-mbit")) {
            if (parse_number(a, v, &o.rate_mbit)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (parse_number(a, v, &seed)) return 2;
            o.seed = (uint64_t)seed;
        } else {
            fprintf(stderr, "hive-lanproxy: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "hive-lanproxy: %s: %s\n", a, err);
            return 2;
        }
    }
    if (!have_listen || !have_to) {
        fprintf(stderr, "hive-lanproxy: --listen and --to are required\n");
        usage(stderr);
        return 2;
    }
    o.listen_host = listen_host;
    o.to_host = to_host;
    o.control_host = have_control ? control_host : NULL;

    /* Block the stop signals before the loop thread exists so only sigwait
     * below sees them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    hive_lanproxy *p;
    if (hive_lanproxy_start(&p, &o, err) != HIVE_OK) {
        fprintf(stderr, "hive-lanproxy: %s\n", err);
        return 1;
    }
    if (have_control) printf("control on %s:%d\n", control_host, hive_lanproxy_control_port(p));
    printf("listening on %s:%d\n", listen_host, hive_lanproxy_port(p));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    hive_lanproxy_stop(p);
    return 0;
}
