# cython: language_level=3
"""The common HTTP/1.1 request, read without the general parser.

Nearly every request the front gets is one bodiless ``GET`` that arrives whole in one read: a
WebSocket upgrade or a long-polling ``GET``. httptools reads it through Python callbacks (the
URL, each header, the end of the headers, the end of the message) and reports an upgrade by
raising: together a sizeable part of a handshake. :func:`parse_get` reads exactly that
request, under a grammar stricter than httptools's (RFC 9112's, without its obsolete forms);
for anything else it returns ``None`` and the front hands the bytes to httptools, which then
accepts or refuses them as it always did. What it accepts, httptools reads the same way
(``tests/test_httphead.py`` checks both against each other).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE


cdef extern from "string.h" nogil:
    void* memmem(const void* haystack, size_t hlen, const void* needle, size_t nlen)


cdef inline bint _tchar(unsigned char c) noexcept nogil:
    # RFC 9110 token characters
    if c >= b'a' and c <= b'z':
        return True
    if c >= b'A' and c <= b'Z':
        return True
    if c >= b'0' and c <= b'9':
        return True
    return c in b"!#$%&'*+-.^_`|~"


cdef inline unsigned char _lower(unsigned char c) noexcept nogil:
    return c + 32 if c >= b'A' and c <= b'Z' else c


cdef bint _is(const unsigned char* p, Py_ssize_t n, const char* lname) noexcept nogil:
    """``p[:n]`` equals the lower-case ``lname``, ignoring case."""
    cdef Py_ssize_t i = 0
    while i < n:
        if lname[i] == 0 or _lower(p[i]) != <unsigned char>lname[i]:
            return False
        i += 1
    return lname[n] == 0


# What the Connection header's tokens say: bit flags.
cdef enum:
    CONN_UPGRADE = 1
    CONN_CLOSE = 2
    CONN_OTHER = 4


cdef int _connection_tokens(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef int flags = 0
    cdef Py_ssize_t i = 0, start, end
    while i <= n:
        start = i
        while i < n and p[i] != b',':
            i += 1
        end = i
        while start < end and (p[start] == b' ' or p[start] == b'\t'):
            start += 1
        while end > start and (p[end - 1] == b' ' or p[end - 1] == b'\t'):
            end -= 1
        if end > start:
            if _is(p + start, end - start, "upgrade"):
                flags |= CONN_UPGRADE
            elif _is(p + start, end - start, "close"):
                flags |= CONN_CLOSE
            else:
                flags |= CONN_OTHER
        i += 1
    return flags


cpdef tuple parse_get(bytes data, Py_ssize_t max_url, Py_ssize_t max_header_bytes,
                      Py_ssize_t max_headers):
    """``(url, headers, end, upgrade, keep_alive)`` when ``data`` starts with a whole bodiless
    ``GET <origin-form> HTTP/1.1`` request within the limits, else ``None``. ``headers`` are
    ``(name, value)`` bytes as sent (values without leading whitespace), ``end`` is where the
    request ends in ``data``, ``upgrade`` what httptools's ``should_upgrade`` would say.

    ``None`` also for what only httptools should decide: a body or an ``Expect`` (a
    ``Content-Length`` or ``Transfer-Encoding`` header), several ``Connection`` headers, an
    ``Upgrade`` header without the ``upgrade`` token or the other way round, folded lines,
    bare ``LF``, control characters and bytes over 0x7E, limits passed (httptools's callbacks
    refuse those)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char* stop = <const unsigned char*>memmem(p, <size_t>n, b"\r\n\r\n", 4)
    if stop == NULL or n < 18 or p[0] != b'G' or p[1] != b'E' or p[2] != b'T' or p[3] != b' ':
        return None
    cdef Py_ssize_t head_end = (stop - p) + 4
    cdef Py_ssize_t i = 4, url_start = 4, url_end
    cdef unsigned char c
    if p[i] != b'/':
        return None
    while i < head_end and p[i] > 0x20 and p[i] < 0x7f:
        i += 1
    url_end = i
    if url_end - url_start > max_url:
        return None
    # " HTTP/1.1\r\n"
    if i + 11 > head_end or memmem(p + i, 11, b" HTTP/1.1\r\n", 11) != <void*>(p + i):
        return None
    i += 11
    cdef list headers = []
    cdef Py_ssize_t name_start, name_end, value_start, value_end, line_end
    cdef Py_ssize_t header_bytes = 0
    cdef int conn_flags = 0
    cdef int connection_headers = 0
    cdef bint upgrade_header = False
    while i < head_end - 2:
        name_start = i
        while i < head_end and _tchar(p[i]):
            i += 1
        name_end = i
        if name_end == name_start or p[i] != b':':
            return None  # (a line starting with whitespace is a folded one: refused too)
        i += 1
        while p[i] == b' ' or p[i] == b'\t':
            i += 1
        value_start = i
        while True:
            c = p[i]
            if c == b'\r':
                break
            if c < 0x20 and c != b'\t' or c >= 0x7f:
                return None
            i += 1
        line_end = i
        if p[i + 1] != b'\n':
            return None
        value_end = line_end  # (trailing whitespace stays, as httptools gives it)
        i = line_end + 2
        header_bytes += (name_end - name_start) + (value_end - value_start)
        if header_bytes > max_header_bytes or len(headers) >= max_headers:
            return None
        if _is(p + name_start, name_end - name_start, "content-length") or _is(
                p + name_start, name_end - name_start, "transfer-encoding") or _is(
                p + name_start, name_end - name_start, "expect"):
            return None
        if _is(p + name_start, name_end - name_start, "connection"):
            connection_headers += 1
            conn_flags = _connection_tokens(p + value_start, value_end - value_start)
        elif _is(p + name_start, name_end - name_start, "upgrade"):
            if upgrade_header or value_end == value_start:
                return None  # (httptools does not count an empty one)
            upgrade_header = True
        headers.append((
            PyBytes_FromStringAndSize(<const char*>p + name_start, name_end - name_start),
            PyBytes_FromStringAndSize(<const char*>p + value_start, value_end - value_start),
        ))
    if i != head_end - 2 or connection_headers > 1:
        return None
    cdef bint upgrade = upgrade_header and (conn_flags & CONN_UPGRADE) != 0
    if upgrade_header != ((conn_flags & CONN_UPGRADE) != 0):
        return None
    return (
        PyBytes_FromStringAndSize(<const char*>p + url_start, url_end - url_start),
        headers,
        head_end,
        upgrade,
        (conn_flags & CONN_CLOSE) == 0,
    )
