cpdef str token(Py_ssize_t nbytes)
