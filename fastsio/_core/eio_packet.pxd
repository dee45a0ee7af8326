# Engine.IO packets. Everything here works on immutable ``bytes`` owned by the caller; nothing
# keeps a reference to its input, and every returned ``bytes`` is a new object the caller owns.
cpdef int packet_type(bytes packet) except -1
cpdef bytes encode_packet(int ptype, bytes data=*)
cpdef list decode_payload(bytes body, Py_ssize_t max_packets=*)
cpdef bytes encode_payload(list packets)
cpdef bytes ws_frame(bytes payload, bint binary=*)
