/* One gathering, non-blocking send on a stream socket, for the outbox's direct writes
 * (outbox.pyx). Returns the bytes the kernel took (possibly fewer than asked), or -1 when it
 * took none: the socket's buffer is full, the call was interrupted, the connection failed, or
 * the platform has no such call (Windows). On -1 the caller hands everything to the transport,
 * which writes it later or meets the error itself and reports it the usual way. */
#ifndef FASTSIO_SENDV_H
#define FASTSIO_SENDV_H

#include <stddef.h>

#define FASTSIO_SENDV_MAX 64
/* Up to this many bytes in all, several buffers are copied into one and sent with send(): the
 * kernel's cost for a gathered send grows with the number of pieces, and for the small frames
 * of a broadcast (a hundred bytes each, sixteen to a connection) that was more than the copy.
 * Measured (bench/README.md, "One contiguous send"): fan-out N=100 W=16 +8 %, with the
 * server's system time per broadcast down from ~31.5 to ~26.5 us; with 1 KiB frames (beyond
 * this size: gathered) joining made no difference. On the stack: no allocation, and no state
 * shared between threads. */
#define FASTSIO_SENDV_JOIN 8192

#ifdef _WIN32

static inline long long fastsio_sendv(int fd, const char **bufs, const size_t *lens, int n) {
    (void)fd, (void)bufs, (void)lens, (void)n;
    return -1;
}

#else

#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SIGPIPE is ignored by the Python runtime anyway */
#endif

static inline long long fastsio_sendv(int fd, const char **bufs, const size_t *lens, int n) {
    struct iovec iov[FASTSIO_SENDV_MAX];
    struct msghdr msg;
    char joined[FASTSIO_SENDV_JOIN];
    size_t total = 0;
    ssize_t sent;
    int i;
    if (n <= 0 || n > FASTSIO_SENDV_MAX) return -1;
    if (n > 1) {
        for (i = 0; i < n; i++) total += lens[i];
    }
    if (n == 1) {
        sent = send(fd, bufs[0], lens[0], MSG_NOSIGNAL | MSG_DONTWAIT);
    } else if (total <= FASTSIO_SENDV_JOIN) {
        total = 0;
        for (i = 0; i < n; i++) {
            memcpy(joined + total, bufs[i], lens[i]);
            total += lens[i];
        }
        sent = send(fd, joined, total, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
        for (i = 0; i < n; i++) {
            iov[i].iov_base = (void *)bufs[i];
            iov[i].iov_len = lens[i];
        }
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)n;
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    return sent < 0 ? -1 : (long long)sent;
}

#endif
#endif
