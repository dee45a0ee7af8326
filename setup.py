"""Builds the Cython core. FASTSIO_BUILD=debug selects the debug/trace build."""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTSIO_BUILD", "release") == "debug"

MODULES = ["errors", "eio_packet", "sio_packet", "outbox", "rooms", "packetlog"]

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

VARIANT = "debug" if DEBUG else "release"
MARKER = Path("build") / ".fastsio-variant"


class BuildExt(build_ext):
    """Rebuilds everything when the variant changes: both variants write the same module
    files, and timestamps alone would keep the other variant's modules in place."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not MARKER.exists() or MARKER.read_text() != VARIANT:
            self.force = True

    def run(self) -> None:
        super().run()
        MARKER.parent.mkdir(exist_ok=True)
        MARKER.write_text(VARIANT)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
