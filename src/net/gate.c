/* gate.c - admission of incoming connections before and after
 * authentication (see hive/net.h, "connection gate").
 *
 * Two pools. A connection is "unauthenticated" from accept until its owner
 * promotes it (handshake done, first message read), then "authenticated".
 * The unauthenticated pool has a per-source-address cap and OpenSSH-style
 * random early drop: below `drop_start` every connection is admitted, from
 * there the refusal probability rises linearly from `drop_rate` percent to
 * 100% at `max_unauth`. Unauthenticated connections are few and short-lived
 * (the owner enforces `handshake_ms`), so idle or garbage connections cannot
 * take the slots of authenticated links, which have their own cap.
 *
 * Per-address counts live in a table of max_unauth entries: only
 * unauthenticated connections are counted per address, so that many
 * addresses at most can have a count. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hive/net.h"
#include "sock_os.h"

struct gate_src {
    char addr[HIVE_GATE_ADDR_CAP];
    int count; /* 0: free slot */
};

struct hive_gate {
    struct hive_gate_opts o;
    pthread_mutex_t mu;
    int unauth, auth;
    struct hive_gate_stats st;
    struct gate_src *src; /* o.max_unauth entries */
};

struct hive_gate_opts hive_gate_default_opts(void) {
    struct hive_gate_opts o;
    memset(&o, 0, sizeof o);
    o.drop_start = 10;
    o.drop_rate = 30;
    o.max_unauth = 60;
    o.max_unauth_per_addr = 8;
    o.max_auth = 64;
    o.handshake_ms = 2000;
    return o;
}

static uint32_t default_random(void *arg) {
    (void)arg;
    return randombytes_random();
}

hive_gate *hive_gate_new(const struct hive_gate_opts *o) {
    struct hive_gate_opts d = o ? *o : hive_gate_default_opts();
    if (d.max_unauth < 1 || d.max_auth < 0 || d.max_unauth_per_addr < 1 || d.drop_start < 0 ||
        d.drop_rate < 0 || d.drop_rate > 100 || d.handshake_ms < 1)
        return NULL;
    if (d.drop_start > d.max_unauth) d.drop_start = d.max_unauth;
    if (!d.random) {
        if (sodium_init() < 0) return NULL;
        d.random = default_random;
    }
    hive_gate *g = hive_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->src = hive_calloc((size_t)d.max_unauth, sizeof *g->src);
    if (!g->src) {
        free(g);
        return NULL;
    }
    g->o = d;
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

void hive_gate_free(hive_gate *g) {
    if (!g) return;
    pthread_mutex_destroy(&g->mu);
    free(g->src);
    free(g);
}

int hive_gate_handshake_ms(const hive_gate *g) { return g->o.handshake_ms; }

static struct gate_src *find_src(hive_gate *g, const char *addr) {
    for (int i = 0; i < g->o.max_unauth; i++)
        if (g->src[i].count > 0 && !strcmp(g->src[i].addr, addr)) return &g->src[i];
    return NULL;
}

/* Addresses longer than the table's field are cut; both ends of a pair of
 * calls cut them alike. */
static void key_of(const char *addr, char key[HIVE_GATE_ADDR_CAP]) {
    snprintf(key, HIVE_GATE_ADDR_CAP, "%s", addr ? addr : "");
}

/* Random early drop: 1 = refuse. Called with n = unauthenticated count. */
static int early_drop(hive_gate *g, int n) {
    const struct hive_gate_opts *o = &g->o;
    if (n < o->drop_start) return 0;
    if (n >= o->max_unauth) return 1;
    /* p = rate + (100 - rate) * (n - start) / (full - start), in percent. */
    int span = o->max_unauth - o->drop_start;
    int p = o->drop_rate + (100 - o->drop_rate) * (n - o->drop_start) / (span > 0 ? span : 1);
    return (int)(o->random(o->random_arg) % 100u) < p;
}

int hive_gate_admit(hive_gate *g, const char *addr) {
    char key[HIVE_GATE_ADDR_CAP];
    key_of(addr, key);
    pthread_mutex_lock(&g->mu);
    int rc = HIVE_OK;
    struct gate_src *s = find_src(g, key);
    if (g->unauth >= g->o.max_unauth) {
        g->st.refused_full++;
        rc = HIVE_ERR_BUSY;
    } else if (s && s->count >= g->o.max_unauth_per_addr) {
        g->st.refused_addr++;
        rc = HIVE_ERR_BUSY;
    } else if (early_drop(g, g->unauth)) {
        g->st.refused_early++;
        rc = HIVE_ERR_BUSY;
    } else {
        if (!s) {
            for (int i = 0; i < g->o.max_unauth && !s; i++)
                if (g->src[i].count == 0) s = &g->src[i];
            /* There is always a free entry: fewer than max_unauth are counted. */
            snprintf(s->addr, sizeof s->addr, "%s", key);
        }
        s->count++;
        g->unauth++;
        g->st.admitted++;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* Only what was admitted can leave: a stray release changes nothing. */
static void drop_unauth(hive_gate *g, const char *key) {
    struct gate_src *s = find_src(g, key);
    if (!s) return;
    s->count--;
    g->unauth--;
}

int hive_gate_promote(hive_gate *g, const char *addr) {
    char key[HIVE_GATE_ADDR_CAP];
    key_of(addr, key);
    pthread_mutex_lock(&g->mu);
    drop_unauth(g, key);
    int rc = HIVE_OK;
    if (g->auth >= g->o.max_auth) {
        g->st.refused_auth++;
        rc = HIVE_ERR_BUSY;
    } else {
        g->auth++;
        g->st.promoted++;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void hive_gate_release(hive_gate *g, const char *addr, int authenticated) {
    char key[HIVE_GATE_ADDR_CAP];
    key_of(addr, key);
    pthread_mutex_lock(&g->mu);
    if (authenticated) {
        if (g->auth > 0) g->auth--;
    } else {
        drop_unauth(g, key);
    }
    pthread_mutex_unlock(&g->mu);
}

void hive_gate_get_stats(hive_gate *g, struct hive_gate_stats *st) {
    pthread_mutex_lock(&g->mu);
    *st = g->st;
    st->unauth = g->unauth;
    st->auth = g->auth;
    pthread_mutex_unlock(&g->mu);
}

void hive_gate_peer_addr(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (cap == 0) return;
    buf[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(buf, cap, "?");
        return;
    }
    char tmp[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, tmp, sizeof tmp);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            inet_ntop(AF_INET, &a->s6_addr[12], tmp, sizeof tmp);
        } else {
            /* One host usually owns a whole /64: count it as one source. */
            struct in6_addr net = *a;
            memset(&net.s6_addr[8], 0, 8);
            inet_ntop(AF_INET6, &net, tmp, sizeof tmp);
            snprintf(buf, cap, "%s/64", tmp);
            return;
        }
    }
    snprintf(buf, cap, "%s", tmp);
}
