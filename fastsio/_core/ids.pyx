# cython: language_level=3
"""Random ids (Engine.IO session ids, Socket.IO socket ids, recovery private ids), as
``secrets.token_urlsafe(n)`` makes them: ``n`` bytes from the OS CSPRNG in unpadded URL-safe
base64. The bytes are read from the OS a few KiB at a time instead of once per id: a
handshake made two or three ``getrandom`` system calls for its ids. A forked child starts
with an empty pool (``os.register_at_fork``), so two processes never hand out the same
bytes, and no process can predict another's ids.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

import os

cdef Py_ssize_t POOL_SIZE = 4096

cdef const char* _ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
cdef bytes _pool = b""
cdef Py_ssize_t _pos = 0


cdef void _forget() noexcept:
    global _pool, _pos
    _pool = b""
    _pos = 0


def _after_fork_in_child():
    _forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


cpdef str token(Py_ssize_t nbytes):
    """``nbytes`` (1-256) random bytes as unpadded URL-safe base64 (``secrets.token_urlsafe``)."""
    global _pool, _pos
    if nbytes < 1 or nbytes > 256:
        raise ValueError("nbytes must be between 1 and 256")
    if _pos + nbytes > PyBytes_GET_SIZE(_pool):
        _pool = os.urandom(POOL_SIZE)
        _pos = 0
    cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(_pool) + _pos
    cdef char out[344]  # 4 * ceil(256 / 3)
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int v
    while i + 3 <= nbytes:
        v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
        out[o] = _ALPHABET[(v >> 18) & 63]
        out[o + 1] = _ALPHABET[(v >> 12) & 63]
        out[o + 2] = _ALPHABET[(v >> 6) & 63]
        out[o + 3] = _ALPHABET[v & 63]
        i += 3
        o += 4
    if nbytes - i == 1:
        v = src[i] << 16
        out[o] = _ALPHABET[(v >> 18) & 63]
        out[o + 1] = _ALPHABET[(v >> 12) & 63]
        o += 2
    elif nbytes - i == 2:
        v = (src[i] << 16) | (src[i + 1] << 8)
        out[o] = _ALPHABET[(v >> 18) & 63]
        out[o + 1] = _ALPHABET[(v >> 12) & 63]
        out[o + 2] = _ALPHABET[(v >> 6) & 63]
        o += 3
    _pos += nbytes
    return PyBytes_FromStringAndSize(out, o).decode("ascii")
