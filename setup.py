"""Builds the Cython core (FASTSIO_BUILD=debug selects the debug/trace build) and puts the
official client bundle into the package (client_bundle.py: fetched with npm at build time)."""

import os
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

# The build backend does not put the project on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import client_bundle

DEBUG = os.environ.get("FASTSIO_BUILD", "release") == "debug"

MODULES = ["errors", "eio_packet", "sio_packet", "msgpack_packet", "outbox", "inbox", "rooms",
           "packetlog", "coro", "ids", "httphead", "websocket"]

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


class BuildPy(build_py):
    """The bundle is package data: fetched first (an editable install only warns without it)."""

    def run(self) -> None:
        client_bundle.ensure(required=not getattr(self, "editable_mode", False))
        super().run()


class Sdist(sdist):
    """The sdist carries the bundle, so that building from it needs no npm."""

    def run(self) -> None:
        client_bundle.ensure(required=True)
        super().run()


setup(
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy, "sdist": Sdist},
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        build_dir="build/cython-debug" if DEBUG else "build/cython",
    ),
)
