/*
 * ceiling — the fastest server this machine can run for the bench's app, as a yardstick.
 *
 * One thread, epoll, non-blocking sockets, no dependencies beyond libc. It speaks just enough of
 * the protocols for bench/loadgen/loadgen.c: the HTTP/1.1 upgrade (a real Sec-WebSocket-Accept),
 * Engine.IO v4 OPEN, Socket.IO CONNECT, and the bench app's two events:
 *   42<id>["bcast",<payload>]    -> 42["tick",<payload>] to every connected socket, then 43<id>[true]
 *   42<id>["bcastbin",{"t":T,"pad":"P"}] -> 451-["tick",{"t":T,"pad":{"_placeholder":true,"num":0}}]
 *                                   and a binary frame with P, to everyone, then 43<id>[true]
 *   42<id>["echo",<args...>]     -> 43<id>[<args...>]
 * What makes it a ceiling: a broadcast is framed once and copied into each connection's output
 * buffer, and each connection gets one write() per batch of epoll events (the coalescing every
 * fast server does); nothing else is done per delivery. No heartbeat, no rooms, no JSON parsing.
 * The writes of a batch go out in the order the connections got their first output, except that
 * a connection that sent two or more events in the batch (a pipelining client) is written
 * first: the same order as fastsio's (fastsio/_core/outbox.pyx, "Who is written first").
 *
 *   gcc -O2 -o ceiling ceiling.c
 *   ceiling PORT [HOST]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    int upgraded;   /* the 101 went out: frames from here on */
    int connected;  /* Socket.IO CONNECT answered: a broadcast target */
    int dirty;      /* in the dirty list */
    int first;      /* in the list of those written first */
    unsigned long long batch; /* the batch of its last event */
    int want_out;   /* EPOLLOUT registered */
    int closing;    /* close after the output is written */
    size_t slot;    /* index in g_targets while connected */
    char *rbuf, *wbuf;
    size_t rlen, rcap, wlen, woff, wcap;
} conn_t;

static int g_ep;
static conn_t **g_targets;
static size_t g_ntargets, g_targets_cap;
static conn_t **g_dirty;
static size_t g_ndirty, g_dirty_cap;
static conn_t **g_first;
static size_t g_nfirst, g_first_cap;
static unsigned long long g_batch = 1;
static unsigned long long g_next_sid;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) {
        perror("realloc");
        exit(1);
    }
    return q;
}

static void reserve(char **b, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 512;
    while (c < need) c *= 2;
    *b = xrealloc(*b, c);
    *cap = c;
}

/* -- SHA-1 and base64, for Sec-WebSocket-Accept (RFC 6455 4.2.2) ------------------------------ */
#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    if (!m) exit(1);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = ROL(a, 5) + f + e + k + w[i];
            e = d, d = c, c = ROL(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static size_t base64(const unsigned char *in, size_t n, char *out) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = T[v >> 18 & 63];
        out[o++] = T[v >> 12 & 63];
        out[o++] = i + 1 < n ? T[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? T[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

/* -- output ---------------------------------------------------------------------------------- */
/* Appends c to a growable list of connections. */
static void append(conn_t ***list, size_t *n, size_t *cap, conn_t *c) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *list = xrealloc(*list, *cap * sizeof **list);
    }
    (*list)[(*n)++] = c;
}

static void mark_dirty(conn_t *c) {
    if (c->dirty) return;
    c->dirty = 1;
    append(&g_dirty, &g_ndirty, &g_dirty_cap, c);
}

static void mark_first(conn_t *c) {
    mark_dirty(c);
    if (c->first) return;
    c->first = 1;
    append(&g_first, &g_nfirst, &g_first_cap, c);
}

static void queue_raw(conn_t *c, const void *p, size_t n) {
    reserve(&c->wbuf, &c->wcap, c->wlen + n);
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    mark_dirty(c);
}

/* an unmasked server frame header for a payload of n bytes; returns its length */
static size_t frame_head(unsigned char *h, int opcode, size_t n) {
    h[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[1] = (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        h[1] = 126, h[2] = (unsigned char)(n >> 8), h[3] = (unsigned char)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (8 * (7 - i)));
    return 10;
}

static void queue_frame(conn_t *c, int opcode, const char *p, size_t n) {
    unsigned char h[10];
    size_t hl = frame_head(h, opcode, n);
    queue_raw(c, h, hl);
    queue_raw(c, p, n);
}

static void set_out(conn_t *c, int out) {
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void conn_free(conn_t *c) {
    if (c->connected) {
        conn_t *last = g_targets[--g_ntargets];
        g_targets[c->slot] = last;
        last->slot = c->slot;
    }
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1; /* freed after the batch: it may still sit in the dirty list */
}

static void flush(conn_t *c) {
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) set_out(c, 1);
            return;
        } else {
            conn_free(c);
            return;
        }
    }
    c->woff = c->wlen = 0;
    if (c->want_out) set_out(c, 0);
    if (c->closing) conn_free(c);
}

/* -- the bench app ---------------------------------------------------------------------------- */
static char *g_bc;
static size_t g_bc_cap;

/* one frame (or two, for a binary event) built once, copied to every target */
static void broadcast(const char *text, size_t tn, const char *bin, size_t bn) {
    size_t need = tn + bn + 20;
    reserve(&g_bc, &g_bc_cap, need);
    size_t len = frame_head((unsigned char *)g_bc, 1, tn);
    memcpy(g_bc + len, text, tn);
    len += tn;
    if (bin) {
        len += frame_head((unsigned char *)g_bc + len, 2, bn);
        memcpy(g_bc + len, bin, bn);
        len += bn;
    }
    for (size_t i = 0; i < g_ntargets; i++) queue_raw(g_targets[i], g_bc, len);
}

static char *g_msg;
static size_t g_msg_cap;

static void on_text(conn_t *c, const char *p, size_t n) {
    char head[64];
    if (n >= 2 && p[0] == '4' && p[1] == '0') { /* Socket.IO CONNECT */
        int k = snprintf(head, sizeof head, "40{\"sid\":\"c%019llu\"}", g_next_sid++);
        queue_frame(c, 1, head, (size_t)k);
        if (!c->connected) {
            if (g_ntargets == g_targets_cap) {
                g_targets_cap = g_targets_cap ? g_targets_cap * 2 : 1024;
                g_targets = xrealloc(g_targets, g_targets_cap * sizeof *g_targets);
            }
            c->slot = g_ntargets;
            g_targets[g_ntargets++] = c;
            c->connected = 1;
        }
        return;
    }
    if (n < 3 || p[0] != '4' || p[1] != '2') return; /* pongs and the rest: nothing to do */
    if (c->batch == g_batch)
        mark_first(c); /* a second event in this batch: pipelining */
    else
        c->batch = g_batch;
    size_t i = 2;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    const char *id = p + 2;
    size_t idn = i - 2;
    const char *rest = p + i, *end = p + n;
    size_t rn = (size_t)(end - rest);
    int hn;
    if (rn > 9 && !memcmp(rest, "[\"bcast\",", 9)) {
        /* 42["tick",<payload>]: the payload with its closing bracket, as it came */
        reserve(&g_msg, &g_msg_cap, rn + 16);
        memcpy(g_msg, "42[\"tick\",", 10);
        memcpy(g_msg + 10, rest + 9, rn - 9);
        broadcast(g_msg, 10 + rn - 9, NULL, 0);
    } else if (rn > 12 && !memcmp(rest, "[\"bcastbin\",", 12)) {
        const char *pad = memmem(rest, rn, "\"pad\":\"", 7);
        if (!pad) return;
        const char *ps = pad + 7, *pe = memchr(ps, '"', (size_t)(end - ps));
        if (!pe) return;
        /* 451-["tick",{"t":T,"pad":{"_placeholder":true,"num":0}}] + the pad's bytes */
        size_t before = (size_t)(pad - (rest + 12));
        reserve(&g_msg, &g_msg_cap, before + 80);
        size_t k = 0;
        memcpy(g_msg, "451-[\"tick\",", 12);
        k = 12;
        memcpy(g_msg + k, rest + 12, before);
        k += before;
        static const char ph[] = "\"pad\":{\"_placeholder\":true,\"num\":0}}]";
        memcpy(g_msg + k, ph, sizeof ph - 1);
        k += sizeof ph - 1;
        broadcast(g_msg, k, ps, (size_t)(pe - ps));
    } else if (rn > 8 && !memcmp(rest, "[\"echo\",", 8)) {
        reserve(&g_msg, &g_msg_cap, rn + idn + 8);
        hn = snprintf(g_msg, g_msg_cap, "43%.*s[", (int)idn, id);
        memcpy(g_msg + hn, rest + 8, rn - 8);
        queue_frame(c, 1, g_msg, (size_t)hn + rn - 8);
        return;
    } else {
        return;
    }
    if (idn) {
        hn = snprintf(head, sizeof head, "43%.*s[true]", (int)idn, id);
        queue_frame(c, 1, head, (size_t)hn);
    }
}

static const char OPEN[] =
    "0{\"sid\":\"ceiling\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,"
    "\"maxPayload\":1000000}";

static size_t on_http(conn_t *c, char *p, size_t n) {
    char *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) {
        if (n > 16384) c->closing = 1, mark_dirty(c);
        return 0;
    }
    char key[128] = {0};
    for (char *line = p; line < e;) {
        char *nl = memmem(line, (size_t)(e + 2 - line), "\r\n", 2);
        if (!nl) break;
        if (nl - line > 18 && !strncasecmp(line, "sec-websocket-key:", 18)) {
            char *v = line + 18;
            while (*v == ' ') v++;
            size_t kl = (size_t)(nl - v);
            if (kl < 64) memcpy(key, v, kl);
        }
        line = nl + 2;
    }
    if (!key[0]) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        queue_raw(c, bad, sizeof bad - 1);
        c->closing = 1;
        return n;
    }
    char cat[200], acc[40], resp[256];
    unsigned char dig[20];
    int kn = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    sha1((unsigned char *)cat, (size_t)kn, dig);
    base64(dig, 20, acc);
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    queue_raw(c, resp, (size_t)rn);
    queue_frame(c, 1, OPEN, sizeof OPEN - 1);
    c->upgraded = 1;
    return (size_t)(e - p) + 4;
}

/* client frames are masked; unmask in place */
static size_t on_frames(conn_t *c, char *p, size_t n) {
    size_t off = 0;
    while (n - off >= 2 && !c->closing) {
        unsigned char *h = (unsigned char *)p + off;
        int op = h[0] & 0x0f;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (n - off < 4) break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (n - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (!(h[1] & 0x80) || len > (16u << 20)) {
            c->closing = 1, mark_dirty(c);
            return n;
        }
        if (n - off < hl + 4 + len) break;
        unsigned char *mk = h + hl;
        char *pl = (char *)mk + 4;
        for (size_t i = 0; i < len; i++) pl[i] ^= mk[i & 3];
        off += hl + 4 + (size_t)len;
        if (op == 1) {
            on_text(c, pl, (size_t)len);
        } else if (op == 8) {
            queue_frame(c, 8, pl, len >= 2 ? 2 : 0);
            c->closing = 1;
        } else if (op == 9) {
            queue_frame(c, 10, pl, (size_t)len);
        }
    }
    return off;
}

static char g_rd[1 << 18];

static void on_readable(conn_t *c) {
    for (int round = 0; round < 4 && c->fd >= 0 && !c->closing; round++) {
        ssize_t r = recv(c->fd, g_rd, sizeof g_rd, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_free(c);
            return;
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            return;
        }
        reserve(&c->rbuf, &c->rcap, c->rlen + (size_t)r);
        memcpy(c->rbuf + c->rlen, g_rd, (size_t)r);
        c->rlen += (size_t)r;
        size_t used = 0;
        if (!c->upgraded) used = on_http(c, c->rbuf, c->rlen);
        if (c->upgraded) used += on_frames(c, c->rbuf + used, c->rlen - used);
        if (used) {
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
            c->rlen -= used;
        }
        if ((size_t)r < sizeof g_rd) return;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: ceiling PORT [HOST]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &a.sin_addr);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024)) {
        perror("listen");
        return 1;
    }
    printf("ceiling server on %s:%s\n", argc > 2 ? argv[2] : "127.0.0.1", argv[1]);
    fflush(stdout);
    g_ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[512];
    conn_t **dead = NULL;
    size_t ndead = 0, dead_cap = 0;
    for (;;) {
        int k = epoll_wait(g_ep, evs, 512, -1);
        if (k < 0 && errno == EINTR) continue;
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e2);
                }
                continue;
            }
            if (c->fd < 0) continue;
            if (evs[i].events & EPOLLOUT) flush(c);
            if (c->fd >= 0 && evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            if (c->fd < 0 && !c->dirty) {
                append(&dead, &ndead, &dead_cap, c);
                c->dirty = 1; /* once */
            }
        }
        /* the batch is done: one write per connection that has output, pipelining ones first
         * (they are in the dirty list too, where a dead one is collected) */
        for (size_t i = 0; i < g_nfirst; i++) {
            conn_t *c = g_first[i];
            c->first = 0;
            if (c->fd >= 0) flush(c);
        }
        g_nfirst = 0;
        g_batch++;
        for (size_t i = 0; i < g_ndirty; i++) {
            conn_t *c = g_dirty[i];
            if (c->fd >= 0) {
                c->dirty = 0;
                flush(c);
            }
            if (c->fd < 0) append(&dead, &ndead, &dead_cap, c);
        }
        g_ndirty = 0;
        for (size_t i = 0; i < ndead; i++) {
            free(dead[i]->rbuf);
            free(dead[i]->wbuf);
            free(dead[i]);
        }
        ndead = 0;
    }
}
