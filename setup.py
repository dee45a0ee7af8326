"""Builds the Cython core. FASTSIO_BUILD=debug selects the debug/trace build."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTSIO_BUILD", "release") == "debug"

MODULES = ["errors", "eio_packet", "sio_packet", "rooms", "packetlog"]

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "linetrace": DEBUG,
    "profile": False,
    "embedsignature": True,
}
macros = [("FASTSIO_DEBUG", "1" if DEBUG else "0")]
if DEBUG:
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]

extensions = [
    Extension(
        f"fastsio._core.{name}",
        [f"fastsio/_core/{name}.pyx"],
        include_dirs=["fastsio/_core"],
        define_macros=macros,
        extra_compile_args=["-O0", "-g"] if DEBUG and os.name != "nt" else [],
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
