cpdef tuple parse_get(bytes data, Py_ssize_t max_url, Py_ssize_t max_header_bytes,
                      Py_ssize_t max_headers)
