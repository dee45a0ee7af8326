# The server side of one WebSocket connection from its 101 on: the read buffer and frame parser
# (RFC 6455, section 5), in front of a picows listener and a picows WSTransport (whose sending
# side is used as it is). The HTTP front has parsed and checked the upgrade request already.
from picows.picows cimport WSListener, WSTransport

cpdef bytes accept_key(str key)

cdef class WebSocketProtocol:
    cdef readonly WSTransport transport
    cdef readonly WSListener listener
    cdef object _loop
    cdef object _logger                   # engine.clientlog.PicowsLog
    cdef Py_ssize_t _max_frame_size       # a data frame's payload over it: close 1009
    cdef char* _buf                       # what a read left of a frame, from its start
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _len
    cdef Py_ssize_t _need                 # the next frame's size, once its header was read
    cdef bint _in_shared                  # get_buffer gave the shared buffer
    cdef bint _open                       # the 101 went out and the listener was told
    cdef bint _failed                     # a protocol error closed it: the rest is not read
    cdef int _grow(self, Py_ssize_t need) except -1
    cdef int _parse(self) except -1
    cdef Py_ssize_t _frames(self, char* buf, Py_ssize_t length) except -1
    cdef int _fail(self, int code, str reason) except -1
    cdef int _close_soon(self, int code, object reason) except -1
    cdef int _frame(self, int opcode, bint fin, int rsv, char* payload, Py_ssize_t size,
                    Py_ssize_t tail) except -1
