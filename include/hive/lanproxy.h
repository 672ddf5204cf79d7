/* lanproxy.h - a userspace TCP proxy that makes a loopback link look like a
 * LAN: one-way latency, jitter, a bandwidth cap, and cuts on command.
 * The kernel here has no netem, so tests and benchmarks put one of these
 * between two nodes (in-process with hive_lanproxy_start, or as the
 * `hive-lanproxy` program).
 *
 * Model, per direction: bytes that arrive at the proxy are serialized onto a
 * virtual wire of rate_mbit (shared by every connection of the proxy in that
 * direction, like one cable), then delivered delay_ms (+ uniform jitter in
 * [-jitter_ms, +jitter_ms]) later. Delivery never reorders bytes: a chunk
 * whose jittered time falls before its predecessor's waits for it. Latency is
 * a timestamp per chunk, not a sleep per read, so it does not serialize with
 * throughput. Backpressure: at most 16 MB queued per connection and
 * direction, and with a rate cap at most 50 ms of serialization backlog,
 * beyond which the proxy stops reading (TCP flow control does the rest).
 *
 * Control commands (text lines, on the control socket or through
 * hive_lanproxy_command; each answered with "ok ..." or "error ..."):
 *   cut              close every current connection abruptly (RST)
 *   cut-new on|off   refuse new connections (accepted, then reset at once)
 *   delay D [J]      one-way delay D ms (and jitter J ms) for bytes arriving from now on
 *   jitter J
 *   rate R           cap in Mbit/s per direction, 0 = unlimited
 *   stats            "ok accepted=N active=N refused=N up=BYTES down=BYTES"
 * "up" is client->target, "down" target->client. */
#ifndef HIVE_LANPROXY_H
#define HIVE_LANPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "hive/core.h"

struct hive_lanproxy_opts {
    const char *listen_host;  /* NULL = "127.0.0.1" */
    int listen_port;          /* 0 = ephemeral, see hive_lanproxy_port */
    const char *to_host;      /* the target every connection is forwarded to */
    int to_port;
    double delay_ms;          /* one-way, each direction */
    double jitter_ms;         /* uniform +-, never reorders */
    double rate_mbit;         /* per direction; 0 = unlimited */
    const char *control_host; /* NULL = no control socket (hive_lanproxy_command still works) */
    int control_port;         /* 0 = ephemeral, see hive_lanproxy_control_port */
    uint64_t seed;            /* jitter PRNG seed (0 = a fixed default) */
};

struct hive_lanproxy_stats {
    uint64_t accepted, active, refused;
    uint64_t bytes_up, bytes_down; /* delivered to the far side */
};

typedef struct hive_lanproxy hive_lanproxy;

/* Binds the sockets, resolves the target and starts the event-loop thread.
 * Ports are known when this returns. */
int hive_lanproxy_start(hive_lanproxy **out, const struct hive_lanproxy_opts *opts, char *err);
int hive_lanproxy_port(const hive_lanproxy *p);
int hive_lanproxy_control_port(const hive_lanproxy *p); /* -1 without a control socket */
/* Runs one control command on the loop thread and waits for it; the reply
 * line (no newline) goes into reply (may be NULL). HIVE_OK or
 * HIVE_ERR_INVAL for an unknown or malformed command. After it returns the
 * command has taken effect (e.g. "cut": the connections are closed). */
int hive_lanproxy_command(hive_lanproxy *p, const char *cmd, char *reply, size_t reply_cap);
void hive_lanproxy_get_stats(hive_lanproxy *p, struct hive_lanproxy_stats *st);
/* Stops the loop, closes every socket and frees p (NULL is fine). */
void hive_lanproxy_stop(hive_lanproxy *p);

#endif
