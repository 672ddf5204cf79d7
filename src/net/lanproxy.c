/* lanproxy.c - the LAN emulator: a TCP proxy with latency, jitter, a
 * bandwidth cap and cuts (model and commands: see lanproxy.h).
 *
 * One thread runs a ppoll() loop over every socket. Each connection is a
 * pair (client fd, upstream fd) with two directions; a direction is a FIFO of
 * timestamped chunks: read from its source as soon as bytes arrive, written
 * to its destination once the chunk's release time has come. An EOF travels
 * through the same FIFO as a marker and becomes shutdown(SHUT_WR) on the far
 * side, so half-closes pass through with the same delay as data.
 *
 * Non-goals: UDP, packet loss (TCP would hide it as latency anyway),
 * reordering. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hive/lanproxy.h"
#include "hive/net.h"

#define QUEUE_CAP (16u << 20)        /* bytes queued per connection and direction */
#define MAX_BACKLOG_US 50000         /* serialization backlog before reads pause */
#define READ_CHUNK_MAX 65536         /* largest chunk; smaller when rate-limited */
#define READ_BUDGET (256u << 10)     /* bytes read per source per wakeup, for fairness */
#define MAX_CONTROL_CLIENTS 8
#define CONTROL_LINE 256

struct chunk {
    struct chunk *next;
    int64_t release_us;
    uint32_t len, off;
    int eof; /* marker: the source closed its sending side */
    uint8_t data[];
};

/* One direction of one connection: fd[src] -> fd[1 - src]. */
struct dir {
    struct chunk *head, *tail;
    size_t queued;          /* data bytes in the FIFO */
    int64_t last_release;   /* release time of the newest chunk: keeps order */
    int src_eof;            /* EOF read from the source */
    int eof_done;           /* EOF delivered (shutdown sent) */
    int want_out;           /* destination was full: wait for POLLOUT */
};

struct pair {
    int fd[2];      /* 0: accepted client, 1: upstream (target) */
    int connecting; /* upstream connect still in progress */
    int dead;       /* tear down at the end of this loop pass */
    int pidx[2];    /* index in this pass's pollfd array, -1 if not polled */
    struct dir d[2]; /* d[0]: client -> upstream ("up"), d[1]: upstream -> client */
};

struct control_client {
    int fd;
    size_t len;
    char line[CONTROL_LINE];
};

struct hive_lanproxy {
    pthread_t thread;
    int thread_started;
    int listen_fd, listen_port;
    int control_fd, control_port;
    int wake_r, wake_w; /* self-pipe: commands and stop */
    struct sockaddr_storage target;
    socklen_t target_len;

    /* Loop-thread state. */
    struct pair **pairs;
    size_t n_pairs, cap_pairs;
    struct control_client controls[MAX_CONTROL_CLIENTS];
    int64_t delay_us, jitter_us;
    double rate_bps; /* bytes per second, 0 = unlimited */
    int64_t wire_free_at[2]; /* per direction: when the virtual wire is idle */
    int refuse_new;
    uint64_t rng;
    uint8_t scratch[READ_CHUNK_MAX];

    /* Commands from other threads, handed over under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cmd_pending;
    uint64_t cmd_seq, cmd_done_seq;
    char cmd[CONTROL_LINE];
    char cmd_reply[CONTROL_LINE];
    int cmd_rc;
    int loop_exited; /* under mu: no more commands will run */
    atomic_int stop;

    _Atomic uint64_t accepted, active, refused, bytes_dir[2];
};

static int64_t now_us(void) { return (int64_t)hive_now_us(); }

/* ---- chunks and scheduling ---- */

static uint64_t next_random(struct hive_lanproxy *p) {
    /* splitmix64: good enough for jitter, deterministic for a seed */
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* When bytes arriving now at direction k may be delivered: after the virtual
 * wire has carried them (rate), plus delay and jitter, never before the
 * previous chunk. */
static int64_t schedule(struct hive_lanproxy *p, struct dir *d, int k, size_t n, int64_t now) {
    int64_t done = now;
    if (p->rate_bps > 0 && n > 0) {
        int64_t start = p->wire_free_at[k] > now ? p->wire_free_at[k] : now;
        done = start + (int64_t)((double)n * 1e6 / p->rate_bps);
        p->wire_free_at[k] = done;
    }
    int64_t release = done + p->delay_us;
    if (p->jitter_us > 0) {
        int64_t span = 2 * p->jitter_us + 1;
        release += (int64_t)(next_random(p) % (uint64_t)span) - p->jitter_us;
    }
    if (release < done) release = done;
    if (release < d->last_release) release = d->last_release;
    d->last_release = release;
    return release;
}

static void push_chunk(struct dir *d, struct chunk *c) {
    c->next = NULL;
    if (d->tail) d->tail->next = c;
    else d->head = c;
    d->tail = c;
    d->queued += c->len;
}

static void pop_chunk(struct dir *d) {
    struct chunk *c = d->head;
    d->head = c->next;
    if (!d->head) d->tail = NULL;
    free(c);
}

static size_t read_size(const struct hive_lanproxy *p) {
    if (p->rate_bps <= 0) return READ_CHUNK_MAX;
    /* about 1 ms of wire time per chunk, so delivery is smooth at low rates */
    double n = p->rate_bps / 1000.0;
    if (n < 1024) return 1024;
    return n > READ_CHUNK_MAX ? READ_CHUNK_MAX : (size_t)n;
}

/* ---- pairs ---- */

static void close_abruptly(int fd) {
    if (fd < 0) return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() sends RST */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void pair_free(struct pair *pr, int abrupt) {
    for (int i = 0; i < 2; i++) {
        if (abrupt) close_abruptly(pr->fd[i]);
        else if (pr->fd[i] >= 0) close(pr->fd[i]);
        while (pr->d[i].head) pop_chunk(&pr->d[i]);
    }
    free(pr);
}

static int can_read(const struct hive_lanproxy *p, const struct pair *pr, int k, int64_t now) {
    const struct dir *d = &pr->d[k];
    if (pr->dead || d->src_eof || d->queued >= QUEUE_CAP) return 0;
    if (p->rate_bps > 0 && p->wire_free_at[k] - now > MAX_BACKLOG_US) return 0;
    return 1;
}

/* Reads what the source of direction k has, up to a budget. */
static void do_read(struct hive_lanproxy *p, struct pair *pr, int k, int64_t now) {
    struct dir *d = &pr->d[k];
    int src = pr->fd[k];
    size_t budget = READ_BUDGET;
    while (budget && can_read(p, pr, k, now)) {
        size_t want = read_size(p);
        ssize_t n = recv(src, p->scratch, want, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0) { /* reset by the peer: the whole connection goes */
            pr->dead = 1;
            return;
        }
        struct chunk *c = malloc(sizeof *c + (size_t)n);
        if (!c) {
            pr->dead = 1;
            return;
        }
        c->len = (uint32_t)n;
        c->off = 0;
        c->eof = n == 0;
        if (n) memcpy(c->data, p->scratch, (size_t)n);
        c->release_us = schedule(p, d, k, (size_t)n, now);
        push_chunk(d, c);
        if (n == 0) {
            d->src_eof = 1;
            return;
        }
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
    }
}

/* Delivers every chunk of direction k whose time has come. */
static void pump(struct hive_lanproxy *p, struct pair *pr, int k, int64_t now) {
    struct dir *d = &pr->d[k];
    int dst = pr->fd[1 - k];
    d->want_out = 0;
    while (d->head && d->head->release_us <= now && !pr->dead) {
        struct chunk *c = d->head;
        if (c->eof) {
            shutdown(dst, SHUT_WR);
            d->eof_done = 1;
            pop_chunk(d);
            continue;
        }
        ssize_t n = send(dst, c->data + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            d->want_out = 1;
            return;
        }
        if (n < 0) {
            pr->dead = 1;
            return;
        }
        c->off += (uint32_t)n;
        d->queued -= (size_t)n;
        atomic_fetch_add(&p->bytes_dir[k], (uint64_t)n);
        if (c->off == c->len) pop_chunk(d);
    }
}

static void upstream_connected(struct pair *pr) {
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(pr->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
        pr->dead = 1;
        return;
    }
    pr->connecting = 0;
    hive_net_set_nodelay(pr->fd[1]);
}

static void accept_clients(struct hive_lanproxy *p) {
    for (;;) {
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                hive_log(HIVE_LOG_WARN, "lanproxy: accept: %s", strerror(errno));
            return;
        }
        if (p->refuse_new) {
            atomic_fetch_add(&p->refused, 1); /* before the reset a test may be waiting for */
            close_abruptly(fd);
            continue;
        }
        hive_net_set_nodelay(fd);
        int up = socket(p->target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        struct pair *pr = up >= 0 ? calloc(1, sizeof *pr) : NULL;
        if (p->n_pairs == p->cap_pairs && pr) {
            size_t cap = p->cap_pairs ? p->cap_pairs * 2 : 16;
            struct pair **np = realloc(p->pairs, cap * sizeof *np);
            if (np) {
                p->pairs = np;
                p->cap_pairs = cap;
            } else {
                free(pr);
                pr = NULL;
            }
        }
        if (!pr) {
            close_abruptly(fd);
            if (up >= 0) close(up);
            hive_log(HIVE_LOG_WARN, "lanproxy: out of memory or sockets, dropping a connection");
            continue;
        }
        pr->fd[0] = fd;
        pr->fd[1] = up;
        pr->pidx[0] = pr->pidx[1] = -1;
        if (connect(up, (struct sockaddr *)&p->target, p->target_len) == 0) {
            hive_net_set_nodelay(up);
        } else if (errno == EINPROGRESS || errno == EINTR) {
            pr->connecting = 1;
        } else {
            pr->dead = 1; /* target down: the client sees a reset */
        }
        p->pairs[p->n_pairs++] = pr;
        atomic_fetch_add(&p->accepted, 1);
        atomic_fetch_add(&p->active, 1);
    }
}

/* Frees dead and finished pairs, keeping the order of the rest. */
static void reap_pairs(struct hive_lanproxy *p) {
    size_t j = 0;
    for (size_t i = 0; i < p->n_pairs; i++) {
        struct pair *pr = p->pairs[i];
        int finished = pr->d[0].eof_done && pr->d[1].eof_done;
        if (pr->dead || finished) {
            pair_free(pr, pr->dead);
            atomic_fetch_sub(&p->active, 1);
        } else {
            p->pairs[j++] = pr;
        }
    }
    p->n_pairs = j;
}

/* ---- commands ---- */

static int parse_ms(const char *s, int64_t *out_us) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || v > 1e7) return -1;
    while (*end == ' ') end++;
    if (*end) return -1;
    *out_us = (int64_t)(v * 1000.0);
    return 0;
}

/* Runs one command on the loop thread. */
static int run_command(struct hive_lanproxy *p, const char *line, char *reply, size_t cap) {
    char cmd[CONTROL_LINE];
    snprintf(cmd, sizeof cmd, "%s", line);
    size_t n = strlen(cmd);
    while (n && (cmd[n - 1] == '\n' || cmd[n - 1] == '\r' || cmd[n - 1] == ' ')) cmd[--n] = '\0';
    char *arg = strchr(cmd, ' ');
    if (arg) {
        *arg++ = '\0';
        while (*arg == ' ') arg++;
    }
    if (!strcmp(cmd, "cut") && !arg) {
        size_t cut = p->n_pairs;
        for (size_t i = 0; i < p->n_pairs; i++) p->pairs[i]->dead = 1;
        reap_pairs(p);
        snprintf(reply, cap, "ok cut %zu connections", cut);
        return HIVE_OK;
    }
    if (!strcmp(cmd, "cut-new") && arg && (!strcmp(arg, "on") || !strcmp(arg, "off"))) {
        p->refuse_new = !strcmp(arg, "on");
        snprintf(reply, cap, "ok cut-new %s", arg);
        return HIVE_OK;
    }
    if (!strcmp(cmd, "delay") && arg) {
        int64_t d, j = p->jitter_us;
        char *second = strchr(arg, ' ');
        if (second) *second++ = '\0';
        if (parse_ms(arg, &d) == 0 && (!second || parse_ms(second, &j) == 0)) {
            p->delay_us = d;
            p->jitter_us = j;
            snprintf(reply, cap, "ok delay %.3f ms jitter %.3f ms", d / 1e3, j / 1e3);
            return HIVE_OK;
        }
    }
    if (!strcmp(cmd, "jitter") && arg) {
        int64_t j;
        if (parse_ms(arg, &j) == 0) {
            p->jitter_us = j;
            snprintf(reply, cap, "ok jitter %.3f ms", j / 1e3);
            return HIVE_OK;
        }
    }
    if (!strcmp(cmd, "rate") && arg) {
        char *end;
        double r = strtod(arg, &end);
        if (end != arg && !*end && r >= 0 && r <= 1e6) {
            p->rate_bps = r * 1e6 / 8.0;
            int64_t now = now_us();
            p->wire_free_at[0] = p->wire_free_at[1] = now;
            snprintf(reply, cap, "ok rate %g Mbit/s", r);
            return HIVE_OK;
        }
    }
    if (!strcmp(cmd, "stats") && !arg) {
        snprintf(reply, cap, "ok accepted=%llu active=%llu refused=%llu up=%llu down=%llu",
                 (unsigned long long)atomic_load(&p->accepted), (unsigned long long)atomic_load(&p->active),
                 (unsigned long long)atomic_load(&p->refused), (unsigned long long)atomic_load(&p->bytes_dir[0]),
                 (unsigned long long)atomic_load(&p->bytes_dir[1]));
        return HIVE_OK;
    }
    snprintf(reply, cap, "error unknown command '%.64s' (cut, cut-new on|off, delay D [J], jitter J, rate R, stats)",
             line);
    return HIVE_ERR_INVAL;
}

static void handle_wake(struct hive_lanproxy *p) {
    char drain[64];
    while (read(p->wake_r, drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&p->mu);
    if (p->cmd_pending) {
        p->cmd_rc = run_command(p, p->cmd, p->cmd_reply, sizeof p->cmd_reply);
        p->cmd_pending = 0;
        p->cmd_done_seq = p->cmd_seq;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

static void control_accept(struct hive_lanproxy *p) {
    for (;;) {
        int fd = accept4(p->control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return;
        }
        int slot = -1;
        for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
            if (p->controls[i].fd < 0) slot = i;
        if (slot < 0) {
            static const char busy[] = "error too many control connections\n";
            ssize_t ignored = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)ignored;
            close(fd);
            continue;
        }
        p->controls[slot].fd = fd;
        p->controls[slot].len = 0;
    }
}

static void control_close(struct control_client *c) {
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* Reads command lines from one control client and answers each. */
static void control_read(struct hive_lanproxy *p, struct control_client *c) {
    for (;;) {
        if (c->len == sizeof c->line) { /* a line this long is not a command */
            control_close(c);
            return;
        }
        ssize_t n = recv(c->fd, c->line + c->len, sizeof c->line - c->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            control_close(c);
            return;
        }
        c->len += (size_t)n;
        char *nl;
        while (c->fd >= 0 && (nl = memchr(c->line, '\n', c->len))) {
            *nl = '\0';
            char reply[CONTROL_LINE];
            run_command(p, c->line, reply, sizeof reply - 1);
            size_t rl = strlen(reply);
            reply[rl++] = '\n';
            /* Replies are short: the socket buffer takes them, or the client is gone. */
            if (send(c->fd, reply, rl, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)rl) {
                control_close(c);
                return;
            }
            size_t used = (size_t)(nl - c->line) + 1;
            memmove(c->line, nl + 1, c->len - used);
            c->len -= used;
        }
    }
}

/* ---- the loop ---- */

struct pollset {
    struct pollfd *fds;
    size_t n, cap;
};

static int pollset_add(struct pollset *ps, int fd, short events) {
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        struct pollfd *nf = realloc(ps->fds, cap * sizeof *nf);
        if (!nf) return -1;
        ps->fds = nf;
        ps->cap = cap;
    }
    ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = events};
    return (int)ps->n++;
}

static void earliest(int64_t *wake_at, int64_t t) {
    if (*wake_at < 0 || t < *wake_at) *wake_at = t;
}

static void *loop_main(void *arg) {
    struct hive_lanproxy *p = arg;
    struct pollset ps = {0};
    while (!atomic_load(&p->stop)) {
        int64_t now = now_us();
        int64_t wake_at = -1;
        ps.n = 0;
        int ok = pollset_add(&ps, p->wake_r, POLLIN) >= 0 && pollset_add(&ps, p->listen_fd, POLLIN) >= 0;
        int control_idx = p->control_fd >= 0 ? pollset_add(&ps, p->control_fd, POLLIN) : -1;
        int cc_idx[MAX_CONTROL_CLIENTS];
        for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
            cc_idx[i] = p->controls[i].fd >= 0 ? pollset_add(&ps, p->controls[i].fd, POLLIN) : -1;
        for (size_t i = 0; i < p->n_pairs; i++) {
            struct pair *pr = p->pairs[i];
            short ev[2] = {0, 0};
            if (pr->connecting) ev[1] |= POLLOUT;
            for (int k = 0; k < 2; k++) {
                struct dir *d = &pr->d[k];
                if (can_read(p, pr, k, now) && !(k == 1 && pr->connecting)) ev[k] |= POLLIN;
                else if (!d->src_eof && p->rate_bps > 0 && d->queued < QUEUE_CAP)
                    earliest(&wake_at, p->wire_free_at[k] - MAX_BACKLOG_US);
                if (d->want_out) ev[1 - k] |= POLLOUT;
                else if (d->head && !(k == 0 && pr->connecting)) earliest(&wake_at, d->head->release_us);
            }
            /* Only fds with interest are polled: a hung-up fd with no
             * interest would otherwise wake the loop forever. */
            for (int s = 0; s < 2; s++) pr->pidx[s] = ev[s] ? pollset_add(&ps, pr->fd[s], ev[s]) : -1;
        }
        if (!ok) {
            hive_log(HIVE_LOG_ERROR, "lanproxy: out of memory");
            break;
        }
        struct timespec ts, *tsp = NULL;
        if (wake_at >= 0) {
            int64_t left = wake_at - now;
            if (left < 0) left = 0;
            ts.tv_sec = left / 1000000;
            ts.tv_nsec = (left % 1000000) * 1000;
            tsp = &ts;
        }
        int n = ppoll(ps.fds, ps.n, tsp, NULL);
        if (n < 0 && errno != EINTR) {
            hive_log(HIVE_LOG_ERROR, "lanproxy: ppoll: %s", strerror(errno));
            break;
        }
        now = now_us();
        size_t n_polled_pairs = p->n_pairs; /* accepts below append new ones */
        for (size_t i = 0; i < n_polled_pairs; i++) {
            struct pair *pr = p->pairs[i];
            short rev[2] = {0, 0};
            for (int s = 0; s < 2; s++)
                if (pr->pidx[s] >= 0 && n > 0) rev[s] = ps.fds[pr->pidx[s]].revents;
            if (pr->connecting && rev[1]) upstream_connected(pr);
            for (int k = 0; k < 2; k++)
                if (rev[k] & (POLLIN | POLLHUP | POLLERR)) do_read(p, pr, k, now);
            for (int k = 0; k < 2; k++)
                if (!(k == 0 && pr->connecting)) pump(p, pr, k, now);
        }
        if (n > 0 && ps.fds[1].revents) accept_clients(p);
        if (n > 0 && control_idx >= 0 && ps.fds[control_idx].revents) control_accept(p);
        for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
            if (n > 0 && cc_idx[i] >= 0 && ps.fds[cc_idx[i]].revents && p->controls[i].fd >= 0)
                control_read(p, &p->controls[i]);
        reap_pairs(p);
        if (n > 0 && ps.fds[0].revents) handle_wake(p);
    }
    free(ps.fds);
    /* Wake anyone still waiting for a command. */
    pthread_mutex_lock(&p->mu);
    p->loop_exited = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- lifecycle ---- */

static int resolve_target(struct hive_lanproxy *p, const char *host, int port, char *err) {
    if (!host || !*host || port <= 0 || port > 65535)
        return hive_errf(err, HIVE_ERR_INVAL, "lanproxy: bad target %s:%d", host ? host : "", port);
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc) return hive_errf(err, HIVE_ERR_INVAL, "lanproxy: cannot resolve %s: %s", host, gai_strerror(rc));
    memcpy(&p->target, ai->ai_addr, ai->ai_addrlen);
    p->target_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return HIVE_OK;
}

int hive_lanproxy_start(hive_lanproxy **out, const struct hive_lanproxy_opts *o, char *err) {
    *out = NULL;
    if (o->delay_ms < 0 || o->jitter_ms < 0 || o->rate_mbit < 0 || o->delay_ms > 1e7 || o->jitter_ms > 1e7)
        return hive_errf(err, HIVE_ERR_INVAL, "lanproxy: delay, jitter and rate must be >= 0");
    struct hive_lanproxy *p = calloc(1, sizeof *p);
    if (!p) return hive_errf(err, HIVE_ERR_NOMEM, "out of memory");
    p->listen_fd = p->control_fd = p->wake_r = p->wake_w = -1;
    p->control_port = -1;
    for (int i = 0; i < MAX_CONTROL_CLIENTS; i++) p->controls[i].fd = -1;
    p->delay_us = (int64_t)(o->delay_ms * 1000.0);
    p->jitter_us = (int64_t)(o->jitter_ms * 1000.0);
    p->rate_bps = o->rate_mbit * 1e6 / 8.0;
    p->rng = o->seed ? o->seed : 0x6c616e70726f7879ull;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    atomic_init(&p->stop, 0);

    int rc = resolve_target(p, o->to_host, o->to_port, err);
    if (rc) goto fail;
    rc = hive_net_listen(o->listen_host ? o->listen_host : "127.0.0.1", o->listen_port, &p->listen_fd,
                         &p->listen_port, err);
    if (rc) goto fail;
    if (o->control_host) {
        rc = hive_net_listen(o->control_host, o->control_port, &p->control_fd, &p->control_port, err);
        if (rc) goto fail;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = hive_errf(err, HIVE_ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    p->wake_r = pipefd[0];
    p->wake_w = pipefd[1];
    if (pthread_create(&p->thread, NULL, loop_main, p) != 0) {
        rc = hive_errf(err, HIVE_ERR_IO, "lanproxy: cannot start thread");
        goto fail;
    }
    p->thread_started = 1;
    *out = p;
    return HIVE_OK;
fail:
    hive_lanproxy_stop(p);
    return rc;
}

int hive_lanproxy_port(const hive_lanproxy *p) { return p->listen_port; }
int hive_lanproxy_control_port(const hive_lanproxy *p) { return p->control_fd >= 0 ? p->control_port : -1; }

static void wake(struct hive_lanproxy *p) {
    ssize_t ignored = write(p->wake_w, "x", 1); /* a full pipe already means "wake up" */
    (void)ignored;
}

int hive_lanproxy_command(hive_lanproxy *p, const char *cmd, char *reply, size_t reply_cap) {
    if (strlen(cmd) >= CONTROL_LINE) {
        if (reply && reply_cap) snprintf(reply, reply_cap, "error command too long");
        return HIVE_ERR_INVAL;
    }
    pthread_mutex_lock(&p->mu);
    while (p->cmd_pending && !p->loop_exited) pthread_cond_wait(&p->cv, &p->mu);
    int rc = HIVE_ERR_CLOSED;
    const char *answer = "error proxy stopped";
    if (!p->loop_exited) {
        snprintf(p->cmd, sizeof p->cmd, "%s", cmd);
        p->cmd_pending = 1;
        uint64_t seq = ++p->cmd_seq;
        wake(p);
        while (p->cmd_done_seq < seq && !p->loop_exited) pthread_cond_wait(&p->cv, &p->mu);
        if (p->cmd_done_seq >= seq) {
            rc = p->cmd_rc;
            answer = p->cmd_reply;
        }
    }
    if (reply && reply_cap) snprintf(reply, reply_cap, "%s", answer);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void hive_lanproxy_get_stats(hive_lanproxy *p, struct hive_lanproxy_stats *st) {
    st->accepted = atomic_load(&p->accepted);
    st->active = atomic_load(&p->active);
    st->refused = atomic_load(&p->refused);
    st->bytes_up = atomic_load(&p->bytes_dir[0]);
    st->bytes_down = atomic_load(&p->bytes_dir[1]);
}

void hive_lanproxy_stop(hive_lanproxy *p) {
    if (!p) return;
    if (p->thread_started) {
        atomic_store(&p->stop, 1);
        wake(p);
        pthread_join(p->thread, NULL);
    }
    for (size_t i = 0; i < p->n_pairs; i++) pair_free(p->pairs[i], 1);
    free(p->pairs);
    for (int i = 0; i < MAX_CONTROL_CLIENTS; i++)
        if (p->controls[i].fd >= 0) close(p->controls[i].fd);
    int fds[] = {p->listen_fd, p->control_fd, p->wake_r, p->wake_w};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0) close(fds[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
