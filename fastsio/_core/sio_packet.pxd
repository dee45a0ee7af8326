# Socket.IO packets. Inputs are immutable ``bytes`` the caller owns; decoded packets own their
# data. A Decoder owns the attachments it has collected until it hands the rebuilt packet out.

cdef class Packet:
    cdef public int type          # CONNECT .. BINARY_ACK
    cdef public str nsp           # always starts with "/"
    cdef public object data       # decoded JSON (with attachments put back), or None
    cdef public object id         # ack id (int) or None
    cdef public int attachments   # > 0 only while a binary packet waits for its buffers

cdef class Decoder:
    cdef public int max_attachments
    cdef public Py_ssize_t max_namespace_length
    cdef public int max_depth             # JSON nesting bound (checked before parsing)
    cdef public Py_ssize_t max_args       # elements of a top-level array (event arguments)
    cdef public Py_ssize_t max_attachment_bytes  # total size of one packet's attachments
    cdef Py_ssize_t _buffered             # bytes of attachments received for _pending
    cdef Packet _pending          # binary packet waiting for attachments, or None
    cdef list _buffers            # attachments received so far for _pending
    cpdef Packet add_text(self, bytes data, Py_ssize_t start=*)
    cpdef Packet add_binary(self, bytes data)
    cpdef void reset(self)

cpdef Packet decode(bytes data, Py_ssize_t start=*, int max_attachments=*,
                    Py_ssize_t max_namespace_length=*, int max_depth=*, Py_ssize_t max_args=*)
cpdef list encode(int type, str nsp=*, object data=*, object id=*)
cpdef bytes stamp_offset(bytes packet, bytes offset)
