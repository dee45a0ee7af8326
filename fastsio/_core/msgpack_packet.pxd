# Socket.IO packets as socket.io-msgpack-parser sends them: one msgpack map per packet, one
# binary Engine.IO message, no attachments. Inputs are immutable ``bytes`` the caller owns;
# decoded packets own their data (bin values are copied out of the message).
from fastsio._core.sio_packet cimport Encoded, Packet

cdef class Decoder:
    cdef public Py_ssize_t max_namespace_length
    cdef public int max_depth             # nesting bound inside the packet map
    cdef public Py_ssize_t max_args       # elements of the data array (event arguments)
    cpdef Packet add_text(self, bytes data, Py_ssize_t start=*)
    cpdef Packet add_binary(self, bytes data)
    cpdef void reset(self)

cpdef Packet decode(bytes data, Py_ssize_t max_namespace_length=*, int max_depth=*,
                    Py_ssize_t max_args=*)
# The one part of an encoded packet is a binary message (``Encoded.binary_only``); ``data`` is the
# map's last value, which stamp_offset relies on.
cpdef Encoded encode(int type, str nsp=*, object data=*, object id=*)
cpdef bytes stamp_offset(bytes packet, bytes offset)
cdef bytes stamp_offset_raw(bytes packet, const char* offset, Py_ssize_t olen)  # from a C buffer
