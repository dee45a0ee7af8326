# Compile-time switch shared by every core module (see debug.h): `if FASTSIO_DEBUG:` guards
# invariant checks that cost nothing in the release build.
cdef extern from "debug.h":
    const int FASTSIO_DEBUG
