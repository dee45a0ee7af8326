/*
 * loadgen — a Socket.IO v5 / Engine.IO v4 load generator over WebSocket, for the end-to-end bench.
 *
 * One thread, epoll (level-triggered), non-blocking sockets, no dependencies beyond libc.
 * It speaks just enough of the protocols to drive a server hard and measure it:
 *   HTTP/1.1 upgrade (Sec-WebSocket-Key) -> 101; masked client frames, unmasked server frames;
 *   Engine.IO OPEN "0{...}" -> Socket.IO CONNECT "40" -> "40{...}"; Engine.IO ping "2" -> pong "3";
 *   WebSocket ping -> pong; EVENT "42[...]", ACK "43<id>[...]".
 *   --msgpack: the Socket.IO packets of socket.io-msgpack-parser instead (one msgpack map per
 *   packet, in binary frames: {type, nsp, id?, data}), for Server(parser="msgpack"); the same
 *   events, with the same fields ({"t": <ns>, "pad": "..."}), so the two parsers do equal work.
 *
 * Scenarios (see bench/README.md):
 *   fanout   N receivers + 1 sender; the sender keeps W `bcast` events (with ack) outstanding; every
 *            receiver counts "tick" deliveries and the latency from the monotonic timestamp inside.
 *            A "tick" may carry one more element after the payload (the connection-state-recovery
 *            offset, `42["tick",{...},"<offset>"]`): counted in ticks_with_offset_pct.
 *            --stalled K adds K receivers that complete the handshake, then never read their socket
 *            again (SO_RCVBUF --stalled-rcvbuf, set before connect()); they only write an Engine.IO
 *            pong every --stalled-pong seconds, so the heartbeat cannot be what disconnects them.
 *            While the sender runs, the server's RSS is sampled and the server's side of each
 *            stalled connection is watched in /proc/net/tcp (closed = no longer ESTABLISHED); at the
 *            end the stalled ones read again: each either gets EOF/reset (the server dropped it) or
 *            catches up with every tick (it is still connected).
 *   echo     C clients, each with one `echo` (with ack) outstanding; acks/s and round trip.
 *   connect  K connections (Q in flight) through the full handshake; handshakes/s; then held idle
 *            to read the server's RSS (needs --server-pid). 200 warm-up handshakes (opened, then
 *            closed) go first: the output's "warmup_conns", for a tool that counts the server's
 *            whole run (bench/compat_instructions.py).
 *
 * Output: progress on stderr, one JSON object on stdout. Every phase has a deadline: the program
 * always ends by itself (exit 2 with {"error": ...} when something went wrong).
 *
 *   gcc -O2 -o loadgen loadgen.c
 *   loadgen fanout  --port P [--receivers 1000] [--window 16] [--duration 5] [--warmup 2]
 *                   [--stalled 0] [--stalled-rcvbuf 4096] [--stalled-pong 5] [--stalled-check 15]
 *                   [--max-server-rss-mib M] [--pad 50] [--event bcast|bcastbin]
 *   loadgen echo    --port P [--clients 50] [--duration 5] [--warmup 2]
 *   loadgen connect --port P [--conns 5000] [--concurrency 200] [--hold 2] [--server-pid PID]
 *   fanout also: [--port2 P2]  every other receiver on P2 (a second node of a cluster)
 *   common: [--host 127.0.0.1] [--path /socket.io/] [--server-pid PID] [--pad 50] [--msgpack]
 *           [--server-core CPU] [--loadgen-core CPU]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* time, rusage, /proc                                                                          */

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int g_server_pid = 0;

/* utime + stime of the whole server process (all threads), in seconds; -1 if unknown. */
static double server_cpu_s(void) {
    if (g_server_pid <= 0) return -1;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", g_server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces */
    if (!p) return -1;
    p += 2; /* field 3 (state) */
    unsigned long long ut = 0, st = 0;
    /* fields 3..15: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of the server in KiB; -1 if unknown. */
static long server_rss_kib(void) {
    if (g_server_pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", g_server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* jiffies of one CPU from /proc/stat, in seconds: task time (user+nice+system), interrupt time
 * (irq+softirq: loopback TCP is processed there) and the total (to see what else ran on the server's core) */
static int g_server_core = -1, g_loadgen_core = -1;
typedef struct {
    double task, irq, total;
} core_t;
static int core_jiffies(int cpu, core_t *out) {
    if (cpu < 0) return 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[512], name[16];
    snprintf(name, sizeof name, "cpu%d ", cpu);
    int ok = 0;
    double hz = (double)sysconf(_SC_CLK_TCK);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, strlen(name)) == 0) {
            unsigned long long v[8] = {0};
            /* user nice system idle iowait irq softirq steal */
            sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]);
            out->task = (double)(v[0] + v[1] + v[2]) / hz;
            out->irq = (double)(v[5] + v[6]) / hz;
            out->total = (double)(v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) / hz;
            ok = 1;
            break;
        }
    }
    fclose(f);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* latency histogram: log-linear, 64 sub-buckets per power of two (< 1.6% error), values in ns */

#define H_SUB 64
#define H_BUCKETS (H_SUB * 60)
typedef struct {
    uint64_t c[H_BUCKETS];
    uint64_t n, max;
} hist_t;

static inline int h_index(uint64_t v) {
    if (v < 2 * H_SUB) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6; /* log2(H_SUB) */
    return shift * H_SUB + (int)(v >> shift);
}
static inline uint64_t h_value(int i) { /* middle of the bucket */
    if (i < 2 * H_SUB) return (uint64_t)i;
    int shift = i / H_SUB - 1;
    uint64_t lo = (uint64_t)(i - shift * H_SUB) << shift;
    return lo + ((1ull << shift) >> 1);
}
static inline void h_add(hist_t *h, uint64_t v) {
    int i = h_index(v);
    if (i >= H_BUCKETS) i = H_BUCKETS - 1;
    h->c[i]++;
    h->n++;
    if (v > h->max) h->max = v;
}
static double h_pct_us(const hist_t *h, double q) {
    if (h->n == 0) return -1;
    uint64_t rank = (uint64_t)(q * (double)(h->n - 1)) + 1, acc = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        acc += h->c[i];
        if (acc >= rank) return h_value(i) / 1000.0;
    }
    return h->max / 1000.0;
}

/* ------------------------------------------------------------------------------------------ */
/* output                                                                                      */

static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static const char *g_scenario = "?";
static void die_json(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    logf_("error: %s", msg);
    printf("{\"scenario\":\"%s\",\"error\":\"%s\"}\n", g_scenario, msg);
    fflush(stdout);
    exit(2);
}

/* ------------------------------------------------------------------------------------------ */
/* connections                                                                                 */

enum { ST_CONNECTING, ST_HTTP, ST_EIO_OPEN, ST_SIO_CONNECT, ST_READY, ST_CLOSED };
enum { R_RECEIVER, R_SENDER, R_ECHO, R_IDLE, R_STALLED };

typedef struct conn {
    int fd, idx, state, role;
    char *rbuf; /* unparsed input left over from earlier reads (partial frame) */
    size_t rlen, rcap;
    char *wbuf; /* output not yet accepted by the kernel, or gathered before a flush */
    size_t wlen, wcap, woff;
    int want_out;   /* EPOLLOUT registered */
    char *frag;     /* fragmented message being reassembled */
    size_t flen, fcap;
    int fop;
    uint64_t t_start; /* connect() time */
    uint64_t ticks;   /* "tick" events received (all time) */
    uint64_t next_id; /* next ack id to use */
    uint64_t sent_at; /* echo: when the outstanding echo was sent */
    uint64_t wait_id; /* echo: the ack id we wait for */
    int outstanding;
    int no_read;           /* stalled: EPOLLIN not registered, the socket is never read */
    int lport;             /* our local port (stalled: to find the server's side in /proc/net/tcp) */
    uint64_t srv_gone_ns;  /* stalled: when the server's side was first seen not ESTABLISHED */
    uint64_t closed_ns;    /* stalled: when we saw EOF / reset */
    uint64_t rx, rx_mark;  /* bytes read (all time); stalled: rx when it started reading again */
    int bin_wait;          /* attachments still owed to a binary "tick" (451-[...] then frames) */
    uint64_t bin_t;        /* that tick's timestamp (0: none parsed) */
} conn_t;

static int g_ep;
static conn_t *g_conns;
static int g_nconns;
static struct sockaddr_in g_addr;
/* --port2: every other receiver connects there (a cluster: the sender's node and another) */
static struct sockaddr_in g_addr2;
static int g_port2 = 0;
static char g_host[64] = "127.0.0.1";
static char g_path[256] = "/socket.io/";
static int g_port = 0;
static char g_pad[16384];
static char *g_msg; /* one outgoing event: 128 bytes + the pad */
static char g_event[32] = "bcast"; /* --event: what the sender emits (bcastbin: a binary tick) */
static int g_msgpack = 0; /* --msgpack: socket.io-msgpack-parser's packets in binary frames */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t rng(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* scenario-wide counters */
static int g_ready = 0, g_failed = 0, g_closed_unexpectedly = 0, g_inflight = 0;
static int g_measuring = 0;
/* when the bytes being parsed were read: the delivery time of every frame in them (one clock
 * read per recv, not per frame: at millions of deliveries a second the per-frame clock read was
 * 6% of this process, which is the one that must not be the bottleneck) */
static uint64_t g_rx_ns = 0;
static uint64_t g_win_deliveries = 0, g_win_acks = 0, g_total_acks = 0, g_total_sent = 0;
static uint64_t g_t_first_start = 0, g_t_last_ready = 0;
static int g_window = 16, g_sending = 0;
static hist_t g_lat, g_hs;
static conn_t *g_sender = NULL;
static char g_last_error[256] = "";
static int g_slow_connects = 0; /* TCP connects that took > 500 ms: SYN retransmits (full accept queue) */
static uint64_t g_win_offsets = 0; /* ticks in the window that carried a recovery offset */
/* stalled receivers (fanout --stalled) */
static int g_stall_from = 0, g_stall_n = 0, g_stall_rcvbuf = 4096;
static double g_stall_pong_s = 5;
static int g_stalled_closed = 0; /* stalled connections we saw end (EOF, reset, close frame) */
static char g_stalled_why[128] = "";
static uint64_t g_send_start = 0; /* when the sender started: stalled timings are relative to it */
/* server RSS sampled while the sender runs */
static int g_sample_rss = 0;
static long g_rss_max = -1;
#define RSS_TL 240
static long g_rss_tl[RSS_TL]; /* one sample per second from g_send_start */
static int g_rss_tl_n = 0;
static long g_rss_limit_kib = 0; /* --max-server-rss-mib: stop sending past it (a safety cap) */
static int g_rss_limit_hit = 0;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) die_json("out of memory");
    return q;
}

static void buf_reserve(char **b, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    *b = xrealloc(*b, c);
    *cap = c;
}

static void set_events(conn_t *c, int out) {
    struct epoll_event ev = {.events = (c->no_read ? 0 : EPOLLIN) | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void conn_close(conn_t *c, const char *why) {
    if (c->state == ST_CLOSED) return;
    if (why && c->role == R_STALLED && c->state == ST_READY) {
        g_stalled_closed++;
        c->closed_ns = now_ns();
        snprintf(g_stalled_why, sizeof g_stalled_why, "%s", why);
    } else if (why) {
        snprintf(g_last_error, sizeof g_last_error, "conn %d: %s", c->idx, why);
        if (c->state == ST_READY)
            g_closed_unexpectedly++;
        else {
            g_failed++;
            g_inflight--;
        }
    }
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = ST_CLOSED;
    free(c->rbuf);
    free(c->wbuf);
    free(c->frag);
    c->rbuf = c->wbuf = c->frag = NULL;
    c->rlen = c->rcap = c->wlen = c->wcap = c->woff = c->flen = c->fcap = 0;
}

/* write what is queued; keep the rest for EPOLLOUT */
static void conn_flush(conn_t *c) {
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) set_events(c, 1);
            return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            conn_close(c, "write failed");
            return;
        }
    }
    c->woff = c->wlen = 0;
    if (c->want_out) set_events(c, 0);
}

static void queue_raw(conn_t *c, const void *p, size_t n) {
    buf_reserve(&c->wbuf, &c->wcap, c->wlen + n);
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

/* queue one masked client frame */
static void queue_frame(conn_t *c, int opcode, const char *payload, size_t len) {
    buf_reserve(&c->wbuf, &c->wcap, c->wlen + len + 14);
    unsigned char *h = (unsigned char *)c->wbuf + c->wlen;
    size_t hl = 0;
    h[hl++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t key = (uint32_t)rng();
    unsigned char mk[4];
    memcpy(mk, &key, 4);
    memcpy(h + hl, mk, 4);
    hl += 4;
    unsigned char *p = h + hl;
    for (size_t i = 0; i < len; i++) p[i] = (unsigned char)payload[i] ^ mk[i & 3];
    c->wlen += hl + len;
}

static inline void queue_text(conn_t *c, const char *s, size_t n) { queue_frame(c, 1, s, n); }

/* msgpack writing, just what the events need */
static size_t mp_uint64(unsigned char *o, uint64_t v) {
    o[0] = 0xcf;
    for (int i = 0; i < 8; i++) o[1 + i] = (unsigned char)(v >> (56 - 8 * i));
    return 9;
}

static size_t mp_str(unsigned char *o, const char *s, size_t n) {
    size_t h;
    if (n < 32) {
        o[0] = (unsigned char)(0xa0 | n);
        h = 1;
    } else if (n < 256) {
        o[0] = 0xd9;
        o[1] = (unsigned char)n;
        h = 2;
    } else {
        o[0] = 0xda;
        o[1] = (unsigned char)(n >> 8);
        o[2] = (unsigned char)n;
        h = 3;
    }
    memcpy(o + h, s, n);
    return h + n;
}

/* {type: 2, nsp: "/", id, data: [event, {t, pad}]} */
static size_t mp_event(unsigned char *o, uint64_t id, const char *event, uint64_t t) {
    static const unsigned char head[] = "\x84\xa4type\x02\xa3nsp\xa1/\xa2id";
    size_t k = sizeof head - 1;
    memcpy(o, head, k);
    k += mp_uint64(o + k, id);
    memcpy(o + k, "\xa4" "data" "\x92", 6);
    k += 6;
    k += mp_str(o + k, event, strlen(event));
    memcpy(o + k, "\x82\xa1t", 3);
    k += 3;
    k += mp_uint64(o + k, t);
    memcpy(o + k, "\xa3pad", 4);
    k += 4;
    k += mp_str(o + k, g_pad, strlen(g_pad));
    return k;
}

static void send_bcast(conn_t *c) {
    char *msg = g_msg;
    uint64_t id = c->next_id++;
    if (g_msgpack) {
        size_t m = mp_event((unsigned char *)msg, id, g_event, now_ns());
        queue_frame(c, 2, msg, m);
        c->outstanding++;
        g_total_sent++;
        return;
    }
    int n = snprintf(msg, sizeof g_pad + 128, "42%llu[\"%s\",{\"t\":%llu,\"pad\":\"%s\"}]", (unsigned long long)id,
                     g_event, (unsigned long long)now_ns(), g_pad);
    queue_text(c, msg, (size_t)n);
    c->outstanding++;
    g_total_sent++;
}

static void send_echo(conn_t *c) {
    char *msg = g_msg;
    uint64_t id = c->next_id++;
    uint64_t t = now_ns();
    if (g_msgpack) {
        c->wait_id = id;
        c->sent_at = t;
        c->outstanding = 1;
        queue_frame(c, 2, msg, mp_event((unsigned char *)msg, id, "echo", t));
        return;
    }
    int n = snprintf(msg, sizeof g_pad + 128, "42%llu[\"echo\",{\"t\":%llu,\"pad\":\"%s\"}]", (unsigned long long)id,
                     (unsigned long long)t, g_pad);
    c->wait_id = id;
    c->sent_at = t;
    c->outstanding = 1;
    queue_text(c, msg, (size_t)n);
}

static void fill_window(conn_t *c) {
    while (g_sending && c->outstanding < g_window) send_bcast(c);
}

/* parse "t":<digits> out of an event payload */
static int parse_t(const char *p, size_t n, uint64_t *out) {
    /* the events this tool sends put "t" first in their object: 42["tick",{"t":... */
    const char *m = memchr(p, '{', n);
    if (m && (size_t)(p + n - m) > 5 && memcmp(m + 1, "\"t\":", 4) == 0)
        m += 5;
    else if ((m = memmem(p, n, "\"t\":", 4)) != NULL)
        m += 4;
    else
        return 0;
    const char *end = p + n;
    uint64_t v = 0;
    int any = 0;
    while (m < end && *m >= '0' && *m <= '9') {
        v = v * 10 + (uint64_t)(*m - '0');
        m++;
        any = 1;
    }
    *out = v;
    return any;
}

static void on_ready(conn_t *c) {
    uint64_t t = now_ns();
    c->state = ST_READY;
    g_ready++;
    g_inflight--;
    g_t_last_ready = t;
    h_add(&g_hs, t - c->t_start);
    if (c->role == R_STALLED) {
        /* from now on the socket is never read: what the server sends piles up */
        c->no_read = 1;
        set_events(c, c->want_out);
    }
}

/* a binary "tick" is complete (its last attachment arrived): count it like a text one */
/* An ACK for connection c (JSON and msgpack parsers alike): a sender's window moves on; an echo
 * client checks it is the answer to its one call in flight, records the round trip, sends the next. */
static void on_ack(conn_t *c, uint64_t id) {
    if (c->role == R_SENDER) {
        c->outstanding--;
        g_total_acks++;
        if (g_measuring) g_win_acks++;
        fill_window(c);
    } else if (c->role == R_ECHO) {
        if (id != c->wait_id) {
            conn_close(c, "ack id mismatch");
            return;
        }
        uint64_t t = g_rx_ns;
        c->outstanding = 0;
        g_total_acks++;
        if (g_measuring) {
            g_win_acks++;
            h_add(&g_lat, t - c->sent_at);
        }
        if (g_sending) send_echo(c);
    }
}

static void on_binary_done(conn_t *c) {
    c->bin_wait = 0;
    if (c->role == R_RECEIVER) {
        c->ticks++;
        if (g_measuring) {
            g_win_deliveries++;
            if (c->bin_t) h_add(&g_lat, g_rx_ns - c->bin_t);
        }
    } else if (c->role == R_SENDER || c->role == R_STALLED) {
        c->ticks++;
    }
}

/* one complete Engine.IO text packet */
static void on_text(conn_t *c, const char *p, size_t n) {
    if (n == 0) {
        conn_close(c, "empty packet");
        return;
    }
    switch (p[0]) {
    case '0': /* Engine.IO OPEN */
        if (c->state != ST_EIO_OPEN) {
            conn_close(c, "unexpected OPEN");
            return;
        }
        if (g_msgpack) queue_frame(c, 2, "\x82\xa4type\x00\xa3nsp\xa1/", 13);
        else queue_text(c, "40", 2);
        c->state = ST_SIO_CONNECT;
        return;
    case '2': /* Engine.IO PING */
        queue_text(c, "3", 1);
        return;
    case '1': /* Engine.IO CLOSE */
        conn_close(c, "server sent CLOSE");
        return;
    case '6': /* NOOP */
        return;
    case '4':
        break;
    default:
        conn_close(c, "unknown Engine.IO packet");
        return;
    }
    if (n < 2) {
        conn_close(c, "short MESSAGE");
        return;
    }
    switch (p[1]) {
    case '0': /* CONNECT reply */
        if (c->state != ST_SIO_CONNECT) {
            conn_close(c, "unexpected CONNECT");
            return;
        }
        on_ready(c);
        return;
    case '4':
        conn_close(c, "CONNECT_ERROR");
        return;
    case '1':
        conn_close(c, "server DISCONNECT");
        return;
    case '2': /* EVENT: only "tick" is expected */
        if (c->role == R_RECEIVER) {
            c->ticks++;
            if (g_measuring) {
                uint64_t t;
                g_win_deliveries++;
                if (parse_t(p, n, &t)) h_add(&g_lat, g_rx_ns - t);
                /* 42["tick",{...},"<offset>"]: a string after the payload object */
                if (n >= 3 && p[n - 1] == ']' && p[n - 2] == '"') g_win_offsets++;
            }
        } else if (c->role == R_SENDER || c->role == R_STALLED) {
            c->ticks++;
        }
        return;
    case '5': { /* BINARY_EVENT "5<n>-[\"tick\",...]": a delivery once its n attachments came */
        int k = 0;
        size_t i = 2;
        while (i < n && p[i] >= '0' && p[i] <= '9') k = k * 10 + (p[i++] - '0');
        uint64_t t = 0;
        if (!parse_t(p, n, &t)) t = 0;
        c->bin_t = t;
        c->bin_wait = k;
        if (k == 0) on_binary_done(c);
        return;
    }
    case '3': { /* ACK: 43<id>[...] */
        uint64_t id = 0;
        size_t i = 2;
        while (i < n && p[i] >= '0' && p[i] <= '9') id = id * 10 + (uint64_t)(p[i++] - '0');
        on_ack(c, id);
        return;
    }
    default:
        return;
    }
}

/* msgpack reading: an unsigned int at p (fixint or uint8..64); 0 when it is not one */
static int mp_read_uint(const unsigned char *p, const unsigned char *end, uint64_t *out) {
    if (p >= end) return 0;
    if (p[0] < 0x80) {
        *out = p[0];
        return 1;
    }
    if (p[0] < 0xcc || p[0] > 0xcf) return 0;
    int size = 1 << (p[0] - 0xcc);
    if (end - p < 1 + size) return 0;
    uint64_t v = 0;
    for (int i = 0; i < size; i++) v = (v << 8) | p[1 + i];
    *out = v;
    return 1;
}

/* the uint after a key (a fixstr), searched in the packet: the server writes type, nsp, id and
 * data in that order, and the pad (ASCII) cannot contain a 0xa? key byte */
static int mp_find_uint(const char *p, size_t n, const char *key, size_t klen, uint64_t *out) {
    char k[8];
    k[0] = (char)(0xa0 | klen);
    memcpy(k + 1, key, klen);
    const char *m = memmem(p, n, k, klen + 1);
    if (!m) return 0;
    return mp_read_uint((const unsigned char *)m + klen + 1, (const unsigned char *)p + n, out);
}

/* one Socket.IO packet of socket.io-msgpack-parser (a whole binary message) */
static void on_msgpack(conn_t *c, const char *p, size_t n) {
    /* the server's map starts with its "type": 0x8? 0xa4 "type" <fixint> */
    if (n < 7 || ((unsigned char)p[0] & 0xf0) != 0x80 || memcmp(p + 1, "\xa4type", 5) != 0) {
        conn_close(c, "not a msgpack packet");
        return;
    }
    switch (p[6]) {
    case 0:
        if (c->state != ST_SIO_CONNECT) {
            conn_close(c, "unexpected CONNECT");
            return;
        }
        on_ready(c);
        return;
    case 4:
        conn_close(c, "CONNECT_ERROR");
        return;
    case 1:
        conn_close(c, "server DISCONNECT");
        return;
    case 2:
        if (c->role == R_RECEIVER) {
            c->ticks++;
            if (g_measuring) {
                uint64_t t;
                g_win_deliveries++;
                if (mp_find_uint(p, n, "t", 1, &t)) h_add(&g_lat, g_rx_ns - t);
                /* ["tick", {...}, "<offset>"]: a 3-element data array */
                const char *d = memmem(p, n, "\xa4" "data", 5);
                if (d && d + 5 < p + n && (unsigned char)d[5] == 0x93) g_win_offsets++;
            }
        } else if (c->role == R_SENDER || c->role == R_STALLED) {
            c->ticks++;
        }
        return;
    case 3: {
        uint64_t id = 0;
        if (!mp_find_uint(p, n, "id", 2, &id)) {
            conn_close(c, "ACK without an id");
            return;
        }
        on_ack(c, id);
        return;
    }
    default:
        return;
    }
}

/* parse complete WebSocket frames from p[0..n); returns bytes consumed */
static size_t parse_frames(conn_t *c, const char *p, size_t n) {
    size_t off = 0;
    while (c->state != ST_CLOSED && n - off >= 2) {
        const unsigned char *h = (const unsigned char *)p + off;
        int fin = h[0] & 0x80, op = h[0] & 0x0f, masked = h[1] & 0x80;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4) break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (masked) {
            conn_close(c, "masked server frame");
            return n;
        }
        if (len > (64u << 20)) {
            conn_close(c, "frame too large");
            return n;
        }
        if (n - off < hl + len) break;
        const char *pl = p + off + hl;
        off += hl + (size_t)len;
        if (op == 0x8) { /* close */
            conn_close(c, "server closed the WebSocket");
            return n;
        } else if (op == 0x9) { /* ping */
            queue_frame(c, 0xA, pl, (size_t)len);
        } else if (op == 0xA) {
            /* pong: ignore */
        } else if (op == 0x0) { /* continuation */
            buf_reserve(&c->frag, &c->fcap, c->flen + len);
            memcpy(c->frag + c->flen, pl, len);
            c->flen += len;
            if (fin) {
                if (c->fop == 1) on_text(c, c->frag, c->flen);
                else if (g_msgpack) on_msgpack(c, c->frag, c->flen);
                else if (c->bin_wait > 0 && --c->bin_wait == 0) on_binary_done(c);
                c->flen = 0;
            }
        } else if (op == 0x1 || op == 0x2) {
            if (!fin) {
                c->fop = op;
                c->flen = 0;
                buf_reserve(&c->frag, &c->fcap, len);
                memcpy(c->frag, pl, len);
                c->flen = len;
            } else if (op == 1) {
                on_text(c, pl, (size_t)len);
            } else if (g_msgpack) {
                on_msgpack(c, pl, (size_t)len);
            } else if (c->bin_wait > 0 && --c->bin_wait == 0) {
                on_binary_done(c);
            }
        } else {
            conn_close(c, "unknown opcode");
            return n;
        }
    }
    return off;
}

/* HTTP upgrade response: returns bytes consumed (0 = need more) */
static size_t parse_http(conn_t *c, const char *p, size_t n) {
    const char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) {
        if (n > 8192) conn_close(c, "oversized HTTP response");
        return 0;
    }
    if (n < 12 || memcmp(p + 9, "101", 3) != 0) {
        char line[80];
        size_t l = 0;
        while (l < n && l < sizeof line - 1 && p[l] != '\r') {
            line[l] = p[l];
            l++;
        }
        line[l] = 0;
        char why[128];
        snprintf(why, sizeof why, "upgrade refused: %s", line);
        conn_close(c, why);
        return n;
    }
    c->state = ST_EIO_OPEN;
    return (size_t)(e - p) + 4;
}

static size_t consume(conn_t *c, const char *p, size_t n) {
    size_t off = 0;
    if (c->state == ST_HTTP) {
        off = parse_http(c, p, n);
        if (off == 0 || c->state == ST_CLOSED) return c->state == ST_CLOSED ? n : 0;
    }
    if (c->state == ST_CLOSED) return n;
    return off + parse_frames(c, p + off, n - off);
}

static char g_rd[1 << 18];

static void on_readable(conn_t *c) {
    for (int round = 0; round < 4 && c->state != ST_CLOSED && !c->no_read; round++) {
        ssize_t r = recv(c->fd, g_rd, sizeof g_rd, 0);
        if (r > 0) {
            c->rx += (size_t)r;
            if (g_measuring) g_rx_ns = now_ns();
        }
        if (r == 0) {
            conn_close(c, "EOF from server");
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_close(c, "read failed");
            return;
        }
        if (c->rlen == 0) {
            size_t used = consume(c, g_rd, (size_t)r);
            if (c->state == ST_CLOSED) return;
            if (used < (size_t)r) {
                buf_reserve(&c->rbuf, &c->rcap, (size_t)r - used);
                memcpy(c->rbuf, g_rd + used, (size_t)r - used);
                c->rlen = (size_t)r - used;
            }
        } else {
            buf_reserve(&c->rbuf, &c->rcap, c->rlen + (size_t)r);
            memcpy(c->rbuf + c->rlen, g_rd, (size_t)r);
            c->rlen += (size_t)r;
            size_t used = consume(c, c->rbuf, c->rlen);
            if (c->state == ST_CLOSED) return;
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
        }
        if ((size_t)r < sizeof g_rd) break;
    }
    if (c->state != ST_CLOSED && c->wlen > c->woff) conn_flush(c);
}

static void on_connected(conn_t *c) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(err));
        conn_close(c, why);
        return;
    }
    if (now_ns() - c->t_start > 500000000ull) g_slow_connects++;
    struct sockaddr_in la;
    socklen_t lal = sizeof la;
    if (getsockname(c->fd, (struct sockaddr *)&la, &lal) == 0) c->lport = ntohs(la.sin_port);
    unsigned char key[16];
    for (int i = 0; i < 16; i++) key[i] = (unsigned char)rng();
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char k64[25];
    int j = 0;
    for (int i = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];
        k64[j++] = b64[v >> 18 & 63];
        k64[j++] = b64[v >> 12 & 63];
        k64[j++] = b64[v >> 6 & 63];
        k64[j++] = b64[v & 63];
    }
    uint32_t v = (uint32_t)key[15] << 16;
    k64[j++] = b64[v >> 18 & 63];
    k64[j++] = b64[v >> 12 & 63];
    k64[j++] = '=';
    k64[j++] = '=';
    k64[j] = 0;
    char req[768];
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=websocket HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     g_path, g_host, g_port, k64);
    c->state = ST_HTTP;
    queue_raw(c, req, (size_t)n);
    set_events(c, 0);
    conn_flush(c);
}

static void conn_start(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die_json("socket(): %s (raise ulimit -n?)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->role == R_STALLED) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &g_stall_rcvbuf, sizeof g_stall_rcvbuf);
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->t_start = now_ns();
    if (!g_t_first_start) g_t_first_start = c->t_start;
    g_inflight++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
    c->want_out = 1;
    const struct sockaddr_in *to =
        (g_port2 && c->role == R_RECEIVER && (c - g_conns) % 2 == 1) ? &g_addr2 : &g_addr;
    int r = connect(fd, (const struct sockaddr *)to, sizeof *to);
    if (r < 0 && errno != EINPROGRESS) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        conn_close(c, why);
    }
}

static void on_event(conn_t *c, uint32_t ev) {
    if (c->state == ST_CLOSED) return;
    if (c->no_read) { /* stalled: only a reset (or our own pending pong) can show up */
        if (ev & (EPOLLERR | EPOLLHUP)) {
            conn_close(c, "reset by the server while stalled");
            return;
        }
        if (ev & EPOLLOUT) conn_flush(c);
        return;
    }
    if (c->state == ST_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        return;
    }
    if (ev & EPOLLIN) on_readable(c);
    else if (ev & (EPOLLERR | EPOLLHUP)) {
        conn_close(c, "socket error");
        return;
    }
    if (c->state != ST_CLOSED && (ev & EPOLLOUT)) conn_flush(c);
}

/* the server's side of every stalled connection, from /proc/net/tcp: a connection whose server
 * socket is no longer ESTABLISHED (FIN_WAIT1 behind unsent data, or gone) was closed by the server */
static void watch_stalled(uint64_t t) {
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f) return;
    char line[512];
    int est[64] = {0}; /* g_stall_n <= 64 */
    while (fgets(line, sizeof line, f)) {
        unsigned la, lp, ra, rp, st;
        if (sscanf(line, " %*d: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp, &st) != 5) continue;
        if ((int)lp != g_port || st != 1) continue;
        for (int i = 0; i < g_stall_n; i++)
            if (g_conns[g_stall_from + i].lport == (int)rp) est[i] = 1;
    }
    fclose(f);
    for (int i = 0; i < g_stall_n; i++) {
        conn_t *c = &g_conns[g_stall_from + i];
        if (!est[i] && !c->srv_gone_ns) c->srv_gone_ns = t;
    }
}

/* every ~250 ms inside loop_until: blind pongs from the stalled receivers, RSS samples, /proc/net/tcp */
static uint64_t g_next_periodic = 0, g_next_pong = 0, g_next_watch = 0;
static void periodic(uint64_t t) {
    if (t < g_next_periodic) return;
    g_next_periodic = t + 250000000ull;
    if (g_stall_n && g_stall_pong_s > 0 && t >= g_next_pong) {
        g_next_pong = t + (uint64_t)(g_stall_pong_s * 1e9);
        for (int i = 0; i < g_stall_n; i++) {
            conn_t *c = &g_conns[g_stall_from + i];
            if (c->state == ST_READY && c->no_read) {
                queue_text(c, "3", 1);
                conn_flush(c);
            }
        }
    }
    if (g_sample_rss) {
        long r = server_rss_kib();
        if (r > g_rss_max) g_rss_max = r;
        if (g_rss_limit_kib > 0 && r > g_rss_limit_kib && !g_rss_limit_hit) {
            logf_("server RSS %ld KiB over the cap (%ld KiB): the sender stops", r, g_rss_limit_kib);
            g_rss_limit_hit = 1;
            g_sending = 0;
        }
        int k = (int)((t - g_send_start) / 1000000000ull);
        if (k < RSS_TL && k >= g_rss_tl_n) {
            while (g_rss_tl_n <= k) g_rss_tl[g_rss_tl_n++] = r;
        }
    }
    if (g_stall_n && g_send_start && t >= g_next_watch) {
        g_next_watch = t + 1000000000ull;
        watch_stalled(t);
    }
}

/* run the loop until `deadline` (ns) or until stop() says so; returns 1 if stop() fired */
static int loop_until(uint64_t deadline, int (*stop)(void)) {
    struct epoll_event evs[512];
    for (;;) {
        if (stop && stop()) return 1;
        uint64_t t = now_ns();
        periodic(t);
        if (t >= deadline) return 0;
        uint64_t left_ms = (deadline - t) / 1000000 + 1;
        int to = left_ms > 20 ? 20 : (int)left_ms;
        int n = epoll_wait(g_ep, evs, 512, to);
        if (n < 0 && errno != EINTR) die_json("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) on_event((conn_t *)evs[i].data.ptr, evs[i].events);
    }
}

/* open connections [from, to) with at most `conc` handshakes in flight, within `timeout_s` */
static int g_open_from, g_open_to, g_open_next, g_open_conc;
static int open_done(void) {
    while (g_open_next < g_open_to && g_inflight < g_open_conc) conn_start(&g_conns[g_open_next++]);
    return g_open_next >= g_open_to && g_inflight == 0;
}
static void open_conns(int from, int to, int conc, double timeout_s) {
    g_open_from = from;
    g_open_to = to;
    g_open_next = from;
    g_open_conc = conc;
    int fail0 = g_failed;
    if (!loop_until(now_ns() + (uint64_t)(timeout_s * 1e9), open_done))
        die_json("handshakes not done after %.0fs (%d ready, %d in flight, %d failed; last: %s)", timeout_s,
                 g_ready, g_inflight, g_failed, g_last_error);
    if (g_failed > fail0) die_json("%d handshakes failed (last: %s)", g_failed - fail0, g_last_error);
}

static void close_all(void) {
    for (int i = 0; i < g_nconns; i++) conn_close(&g_conns[i], NULL);
}

static void alloc_conns(int n) {
    g_conns = calloc((size_t)n, sizeof(conn_t));
    if (!g_conns) die_json("out of memory");
    g_nconns = n;
    for (int i = 0; i < n; i++) {
        g_conns[i].idx = i;
        g_conns[i].fd = -1;
        g_conns[i].state = ST_CLOSED;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* scenarios                                                                                   */

typedef struct {
    int receivers, window, clients, conns, conc, stalled;
    double duration, warmup, hold, timeout, stall_check;
} opts_t;

typedef struct {
    uint64_t t0, t1;
    double cpu0, cpu1, scpu0, scpu1;
    core_t c0, c1; /* the server core's jiffies */
    core_t l0, l1; /* the load generator core's */
    int core_ok, lcore_ok;
} window_t;

static void window_begin(window_t *w) {
    memset(&g_lat, 0, sizeof g_lat);
    g_win_deliveries = g_win_acks = 0;
    w->cpu0 = self_cpu_s();
    w->scpu0 = server_cpu_s();
    w->core_ok = core_jiffies(g_server_core, &w->c0);
    w->lcore_ok = core_jiffies(g_loadgen_core, &w->l0);
    w->t0 = now_ns();
    g_measuring = 1;
}
static void window_end(window_t *w) {
    g_measuring = 0;
    w->t1 = now_ns();
    w->cpu1 = self_cpu_s();
    w->scpu1 = server_cpu_s();
    w->core_ok = w->core_ok && core_jiffies(g_server_core, &w->c1);
    w->lcore_ok = w->lcore_ok && core_jiffies(g_loadgen_core, &w->l1);
}
static double w_secs(const window_t *w) { return (double)(w->t1 - w->t0) / 1e9; }
static double w_lg_cpu(const window_t *w) { return 100.0 * (w->cpu1 - w->cpu0) / w_secs(w); }
static double w_srv_cpu(const window_t *w) {
    if (w->scpu0 < 0 || w->scpu1 < 0) return -1;
    return 100.0 * (w->scpu1 - w->scpu0) / w_secs(w);
}
/* the server's core: % of the window spent on other tasks (other tenants) and on interrupts */
static double w_other_on_core(const window_t *w) {
    double srv = w_srv_cpu(w);
    if (!w->core_ok || w->c1.total <= w->c0.total || srv < 0) return -1;
    double other = 100.0 * (w->c1.task - w->c0.task) / (w->c1.total - w->c0.total) - srv;
    return other < 0 ? 0 : other;
}
/* the load generator's core: % spent on other tasks (other tenants) */
static double w_other_on_lcore(const window_t *w) {
    if (!w->lcore_ok || w->l1.total <= w->l0.total) return -1;
    double other = 100.0 * (w->l1.task - w->l0.task) / (w->l1.total - w->l0.total) - w_lg_cpu(w);
    return other < 0 ? 0 : other;
}
static double w_irq_on_core(const window_t *w) {
    if (!w->core_ok || w->c1.total <= w->c0.total) return -1;
    return 100.0 * (w->c1.irq - w->c0.irq) / (w->c1.total - w->c0.total);
}

static int drained(void) {
    for (int i = 0; i < g_nconns; i++) {
        conn_t *c = &g_conns[i];
        if (c->role == R_RECEIVER && c->state == ST_READY && c->ticks < g_total_sent) return 0;
    }
    return g_sender->outstanding == 0;
}

/* the stalled receivers, reading again: each has ended or caught up with every tick */
static int stalled_resolved(void) {
    for (int i = 0; i < g_stall_n; i++) {
        conn_t *c = &g_conns[g_stall_from + i];
        if (c->state == ST_READY && c->ticks < g_total_sent) return 0;
    }
    return 1;
}

static double rel_s(uint64_t t) { return t ? (double)(t - g_send_start) / 1e9 : -1; }

static int scenario_fanout(const opts_t *o) {
    int n = o->receivers, k = o->stalled;
    alloc_conns(n + 1 + k);
    for (int i = 0; i < n; i++) g_conns[i].role = R_RECEIVER;
    g_sender = &g_conns[n];
    g_sender->role = R_SENDER;
    g_stall_from = n + 1;
    g_stall_n = k;
    for (int i = 0; i < k; i++) g_conns[n + 1 + i].role = R_STALLED;
    g_window = o->window;
    logf_("fanout: connecting %d receivers + 1 sender + %d stalled", n, k);
    open_conns(0, n + 1 + k, o->conc, o->timeout);
    /* let the server settle after the connection burst */
    loop_until(now_ns() + 200000000ull, NULL);
    long rss_start = server_rss_kib();
    g_rss_max = rss_start;
    g_send_start = now_ns();
    g_sample_rss = 1;
    g_sending = 1;
    fill_window(g_sender);
    conn_flush(g_sender);
    logf_("fanout: warm-up %.1fs, window %d", o->warmup, g_window);
    loop_until(now_ns() + (uint64_t)(o->warmup * 1e9), NULL);
    window_t w;
    window_begin(&w);
    loop_until(w.t0 + (uint64_t)(o->duration * 1e9), NULL);
    window_end(&w);
    long rss_end = server_rss_kib();
    g_sample_rss = 0;
    /* the stalled ones the server had closed by the end of the window */
    int gone_in_window = 0;
    uint64_t first_gone = 0, last_gone = 0;
    if (k) watch_stalled(w.t1);
    for (int i = 0; i < k; i++) {
        conn_t *c = &g_conns[n + 1 + i];
        uint64_t g = c->srv_gone_ns;
        if (c->closed_ns && (!g || c->closed_ns < g)) g = c->closed_ns;
        if (g && g <= w.t1) {
            gone_in_window++;
            if (!first_gone || g < first_gone) first_gone = g;
            if (g > last_gone) last_gone = g;
        }
    }
    /* stop sending; every receiver must get every tick that was sent */
    g_sending = 0;
    uint64_t td = now_ns();
    int ok = loop_until(td + (uint64_t)(o->timeout * 1e9), drained);
    double drain_ms = (double)(now_ns() - td) / 1e6;
    uint64_t missing = 0;
    for (int i = 0; i < n; i++)
        if (g_conns[i].state == ST_READY && g_conns[i].ticks < g_total_sent) missing += g_total_sent - g_conns[i].ticks;
    /* the stalled ones read again (bigger buffer): each ends (dropped by the server) or catches up */
    int stalled_connected = 0, stalled_unresolved = 0;
    double backlog = 0; /* mean bytes a stalled receiver read once it read again */
    if (k) {
        int big = 1 << 20;
        for (int i = 0; i < k; i++) {
            conn_t *c = &g_conns[n + 1 + i];
            if (c->state != ST_READY) continue;
            setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
            c->rx_mark = c->rx;
            c->no_read = 0;
            set_events(c, c->want_out);
        }
        loop_until(now_ns() + (uint64_t)(o->stall_check * 1e9), stalled_resolved);
        for (int i = 0; i < k; i++) {
            conn_t *c = &g_conns[n + 1 + i];
            backlog += (double)(c->rx - c->rx_mark) / k;
            if (c->state != ST_READY) continue;
            if (c->ticks >= g_total_sent) stalled_connected++;
            else stalled_unresolved++;
        }
    }
    double secs = w_secs(&w);
    printf("{\"scenario\":\"fanout\",\"receivers\":%d,\"window\":%d,\"duration_s\":%.3f,"
           "\"pad\":%zu,\"event\":\"%s\",\"ticks_with_offset_pct\":%.1f,"
           "\"rss_start_kib\":%ld,\"rss_max_kib\":%ld,\"rss_end_kib\":%ld,\"rss_limit_hit\":%s,",
           n, g_window, secs, strlen(g_pad), g_event, g_win_deliveries ? 100.0 * g_win_offsets / g_win_deliveries : 0.0,
           rss_start, g_rss_max, rss_end, g_rss_limit_hit ? "true" : "false");
    if (k) {
        printf("\"stalled\":%d,\"stalled_rcvbuf\":%d,\"stalled_pong_s\":%.1f,\"stalled_gone_in_window\":%d,"
               "\"stalled_first_gone_s\":%.2f,\"stalled_last_gone_s\":%.2f,\"stalled_disconnected\":%d,"
               "\"stalled_still_connected\":%d,\"stalled_unresolved\":%d,\"stalled_last_close\":\"%s\","
               "\"stalled_backlog_kib\":%.1f,",
               k, g_stall_rcvbuf, g_stall_pong_s, gone_in_window, rel_s(first_gone), rel_s(last_gone),
               g_stalled_closed, stalled_connected, stalled_unresolved, g_stalled_why, backlog / 1024);
        printf("\"rss_timeline_kib\":[");
        for (int i = 0; i < g_rss_tl_n; i++) printf("%s%ld", i ? "," : "", g_rss_tl[i]);
        printf("],");
    }
    printf("\"warmup_s\":%.1f,"
           "\"deliveries\":%llu,\"deliveries_per_s\":%.1f,\"bcasts_per_s\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"latency_samples\":%llu,"
           "\"loadgen_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,\"other_on_server_core_pct\":%.1f,\"other_on_loadgen_core_pct\":%.1f,\"irq_on_server_core_pct\":%.1f,\"slow_tcp_connects\":%d,"
           "\"bcasts_sent\":%llu,\"drained\":%s,\"drain_ms\":%.1f,\"missing_deliveries\":%llu,"
           "\"closed_unexpectedly\":%d,\"last_error\":\"%s\"}\n",
           o->warmup, (unsigned long long)g_win_deliveries, g_win_deliveries / secs, g_win_acks / secs,
           h_pct_us(&g_lat, 0.50), h_pct_us(&g_lat, 0.99), g_lat.max / 1000.0, (unsigned long long)g_lat.n,
           w_lg_cpu(&w), w_srv_cpu(&w), w_other_on_core(&w), w_other_on_lcore(&w), w_irq_on_core(&w), g_slow_connects, (unsigned long long)g_total_sent,
           ok ? "true" : "false", drain_ms,
           (unsigned long long)missing, g_closed_unexpectedly, g_last_error);
    close_all();
    return (ok && g_closed_unexpectedly == 0 && !g_rss_limit_hit) ? 0 : 1;
}

static int scenario_echo(const opts_t *o) {
    int n = o->clients;
    alloc_conns(n);
    for (int i = 0; i < n; i++) g_conns[i].role = R_ECHO;
    logf_("echo: connecting %d clients", n);
    open_conns(0, n, o->conc, o->timeout);
    loop_until(now_ns() + 200000000ull, NULL);
    g_sending = 1;
    for (int i = 0; i < n; i++) {
        send_echo(&g_conns[i]);
        conn_flush(&g_conns[i]);
    }
    logf_("echo: warm-up %.1fs", o->warmup);
    loop_until(now_ns() + (uint64_t)(o->warmup * 1e9), NULL);
    window_t w;
    window_begin(&w);
    loop_until(w.t0 + (uint64_t)(o->duration * 1e9), NULL);
    window_end(&w);
    double secs = w_secs(&w);
    printf("{\"scenario\":\"echo\",\"clients\":%d,\"duration_s\":%.3f,\"acks\":%llu,\"acks_per_s\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
           "\"loadgen_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,\"other_on_server_core_pct\":%.1f,\"other_on_loadgen_core_pct\":%.1f,\"irq_on_server_core_pct\":%.1f,\"slow_tcp_connects\":%d,"
           "\"closed_unexpectedly\":%d,\"last_error\":\"%s\"}\n",
           n, secs, (unsigned long long)g_win_acks, g_win_acks / secs, h_pct_us(&g_lat, 0.50),
           h_pct_us(&g_lat, 0.99), g_lat.max / 1000.0, w_lg_cpu(&w), w_srv_cpu(&w), w_other_on_core(&w), w_other_on_lcore(&w), w_irq_on_core(&w), g_slow_connects,
           g_closed_unexpectedly,
           g_last_error);
    g_sending = 0;
    close_all();
    return g_closed_unexpectedly == 0 ? 0 : 1;
}

static int scenario_connect(const opts_t *o) {
    int warm = 200, n = o->conns;
    alloc_conns(warm + n);
    for (int i = 0; i < warm + n; i++) g_conns[i].role = R_IDLE;
    /* warm-up: a few handshakes (first-call costs, JITs), then closed */
    logf_("connect: warm-up %d handshakes", warm);
    open_conns(0, warm, o->conc, o->timeout);
    for (int i = 0; i < warm; i++) conn_close(&g_conns[i], NULL);
    loop_until(now_ns() + 1000000000ull, NULL);
    long rss0 = server_rss_kib();
    memset(&g_hs, 0, sizeof g_hs);
    g_ready = 0;
    g_slow_connects = 0;
    g_t_first_start = 0;
    window_t w;
    window_begin(&w);
    logf_("connect: %d handshakes, %d in flight", n, o->conc);
    open_conns(warm, warm + n, o->conc, o->timeout);
    w.t0 = g_t_first_start;
    window_end(&w);
    double lg_cpu = 100.0 * (w.cpu1 - w.cpu0) / ((double)(now_ns() - w.t0) / 1e9);
    w.t1 = g_t_last_ready;
    double secs = w_secs(&w);
    /* hold them idle (answering pings), then read the server's memory */
    loop_until(now_ns() + (uint64_t)(o->hold * 1e9), NULL);
    long rss1 = server_rss_kib();
    int alive = 0;
    for (int i = warm; i < warm + n; i++) alive += g_conns[i].state == ST_READY;
    double per = (rss0 >= 0 && rss1 >= 0) ? (double)(rss1 - rss0) / n : -1;
    printf("{\"scenario\":\"connect\",\"conns\":%d,\"warmup_conns\":%d,\"concurrency\":%d,\"duration_s\":%.3f,\"handshakes_per_s\":%.1f,"
           "\"hs_p50_us\":%.1f,\"hs_p99_us\":%.1f,\"loadgen_cpu_pct\":%.1f,\"server_cpu_pct\":%.1f,"
           "\"other_on_server_core_pct\":%.1f,\"other_on_loadgen_core_pct\":%.1f,\"irq_on_server_core_pct\":%.1f,\"slow_tcp_connects\":%d,"
           "\"rss_before_kib\":%ld,\"rss_idle_kib\":%ld,\"rss_per_conn_kib\":%.2f,\"alive_after_hold\":%d,"
           "\"closed_unexpectedly\":%d,\"last_error\":\"%s\"}\n",
           n, warm, o->conc, secs, n / secs, h_pct_us(&g_hs, 0.5), h_pct_us(&g_hs, 0.99),
           lg_cpu, w_srv_cpu(&w), w_other_on_core(&w), w_other_on_lcore(&w), w_irq_on_core(&w), g_slow_connects, rss0, rss1, per,
           alive, g_closed_unexpectedly, g_last_error);
    close_all();
    return (alive == n) ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen fanout|echo|connect --port P [--host H] [--path /socket.io/] [--server-pid PID]\n"
            "       [--server-core CPU] [--loadgen-core CPU]  (pinned cores: reports what else ran there)\n"
            "  fanout:  --receivers N --window W --duration S --warmup S [--pad BYTES (<= 16383)]\n"
            "           [--stalled K (<= 64) --stalled-rcvbuf BYTES --stalled-pong S --stalled-check S]\n"
            "           [--max-server-rss-mib M]  (the sender stops if the server's RSS passes M)\n"
            "           [--event bcast|bcastbin]  (bcastbin: the server sends the pad as a binary attachment)\n"
            "  echo:    --clients C --duration S --warmup S\n"
            "  connect: --conns K --concurrency Q --hold S\n"
            "  --timeout S  deadline for each connection phase / drain (default 60)\n"
            "  --msgpack    socket.io-msgpack-parser's packets (a server with parser=\"msgpack\")\n");
    exit(64);
}

static void alarm_handler(int sig) {
    (void)sig;
    static const char m[] = "{\"error\":\"hard deadline reached\"}\n";
    ssize_t r = write(1, m, sizeof m - 1);
    (void)r;
    _exit(3);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    g_scenario = argv[1];
    opts_t o = {.receivers = 1000, .window = 16, .clients = 50, .conns = 5000, .conc = 200,
                .duration = 5, .warmup = 2, .hold = 2, .timeout = 60, .stalled = 0, .stall_check = 15};
    int pad = 50;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--msgpack")) { /* the one option without a value */
            g_msgpack = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--port2")) g_port2 = atoi(v);
        else if (!strcmp(a, "--host")) snprintf(g_host, sizeof g_host, "%s", v);
        else if (!strcmp(a, "--path")) snprintf(g_path, sizeof g_path, "%s", v);
        else if (!strcmp(a, "--server-pid")) g_server_pid = atoi(v);
        else if (!strcmp(a, "--server-core")) g_server_core = atoi(v);
        else if (!strcmp(a, "--loadgen-core")) g_loadgen_core = atoi(v);
        else if (!strcmp(a, "--receivers")) o.receivers = atoi(v);
        else if (!strcmp(a, "--window")) o.window = atoi(v);
        else if (!strcmp(a, "--clients")) o.clients = atoi(v);
        else if (!strcmp(a, "--conns")) o.conns = atoi(v);
        else if (!strcmp(a, "--concurrency")) o.conc = atoi(v);
        else if (!strcmp(a, "--duration")) o.duration = atof(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atof(v);
        else if (!strcmp(a, "--hold")) o.hold = atof(v);
        else if (!strcmp(a, "--timeout")) o.timeout = atof(v);
        else if (!strcmp(a, "--pad")) pad = atoi(v);
        else if (!strcmp(a, "--event")) snprintf(g_event, sizeof g_event, "%s", v);
        else if (!strcmp(a, "--stalled")) o.stalled = atoi(v);
        else if (!strcmp(a, "--stalled-rcvbuf")) g_stall_rcvbuf = atoi(v);
        else if (!strcmp(a, "--stalled-pong")) g_stall_pong_s = atof(v);
        else if (!strcmp(a, "--stalled-check")) o.stall_check = atof(v);
        else if (!strcmp(a, "--max-server-rss-mib")) g_rss_limit_kib = atol(v) * 1024;
        else usage();
    }
    if (g_port <= 0 || o.window < 1 || o.receivers < 1 || o.clients < 1 || o.conns < 1 || o.conc < 1 || o.stalled < 0 ||
        o.stalled > 64)
        usage();
    if (pad < 0) pad = 0;
    if (pad > (int)sizeof g_pad - 1) pad = sizeof g_pad - 1;
    for (int i = 0; i < pad; i++) g_pad[i] = (char)('a' + i % 26);
    g_pad[pad] = 0;
    g_msg = malloc(sizeof g_pad + 128);
    if (!g_msg) die_json("out of memory");
    g_rng ^= now_ns() ^ ((uint64_t)getpid() << 32);

    /* the whole run is bounded: phases have their own deadlines, this is the backstop */
    signal(SIGALRM, alarm_handler);
    alarm((unsigned)(o.warmup + o.duration + o.hold + 3 * o.timeout + o.stall_check + 30));
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &g_addr.sin_addr) != 1) die_json("bad --host %s (an IPv4 address)", g_host);
    g_addr2 = g_addr;
    g_addr2.sin_port = htons((uint16_t)g_port2);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0) die_json("epoll_create1: %s", strerror(errno));

    int rc;
    if (!strcmp(argv[1], "fanout")) rc = scenario_fanout(&o);
    else if (!strcmp(argv[1], "echo")) rc = scenario_echo(&o);
    else if (!strcmp(argv[1], "connect")) rc = scenario_connect(&o);
    else usage();
    fflush(stdout);
    return rc;
}
