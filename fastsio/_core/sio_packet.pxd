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
# An encoded packet owns its parts list (callers must not mutate it) and the frame and packet
# list it builds from them on first use; all three are shared by every recipient of a broadcast.
cdef class Encoded:
    cdef readonly list parts       # [text packet with its "4" digit, *raw attachments]
    cdef readonly Py_ssize_t size  # bytes in parts
    cdef readonly bint binary_only  # every part is a binary Engine.IO message (msgpack parser)
    cdef bytes _frame              # every part framed for a WebSocket, concatenated (lazy)
    cdef list _packets             # [(part, is_binary)] for polling payloads (lazy)
    cdef bytes get_frame(self)
    cdef list get_packets(self)

cdef bint valid_payload(int ptype, object payload)
cdef Encoded new_encoded(list parts, bint binary_only)
cpdef Encoded encode(int type, str nsp=*, object data=*, object id=*)
cpdef bytes stamp_offset(bytes packet, bytes offset)
# stamp_offset for an offset the caller has checked ([A-Za-z0-9._-]), from a C buffer.
cdef bytes stamp_offset_raw(bytes packet, const char* offset, Py_ssize_t olen)
