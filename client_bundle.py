"""The official Socket.IO client bundle that the wheels carry (``fastsio/client_dist/``).

Fetched at build time from npm (``npm pack`` of one pinned ``socket.io-client`` version, checked
against the registry's integrity hash), never committed: ``setup.py`` calls :func:`ensure` before
building the sdist or a wheel, so the sdist already holds the files and a wheel built from it
needs neither npm nor the network. A pip-installed server then serves ``/socket.io/socket.io.js``
with no Node on the machine.

    python client_bundle.py          # fetch into fastsio/client_dist/ (what setup.py does)
    python client_bundle.py --check  # exit 1 unless the pinned bundle is there

``FASTSIO_CLIENT_BUNDLE=skip`` builds without it (the server then serves no bundle unless one is
found at run time, see ``fastsio/static.py``). Standard library only: it runs inside the build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "socket.io-client"
# Bump both together (`npm view socket.io-client@X dist.integrity`).
VERSION = "4.8.4"
INTEGRITY = (
    "sha512-7wjKAvVXYOJsbmUgkWbnhPD4bFpkqrUR0++XOjpGFmqDqsqV1CI93VTraeExLxpjxEqrWgFoSRZu1ihjLWfkAA=="
)

# Served by fastsio/static.py under the Engine.IO path; the msgpack build is carried for the
# msgpack parser.
BUNDLE_FILES = (
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
)
LICENSE = "LICENSE"
# Written last: the bundle counts as present only once this says the pinned version.
STAMP = "VERSION"

ROOT = Path(__file__).resolve().parent
DEST = ROOT / "fastsio" / "client_dist"


def stamp_text() -> str:
    return f"{PACKAGE}@{VERSION} {INTEGRITY}\n"


def present(dest: Path = DEST) -> bool:
    """The pinned bundle is complete in ``dest``."""
    stamp = dest / STAMP
    if not stamp.is_file() or stamp.read_text() != stamp_text():
        return False
    return all((dest / name).is_file() for name in (*BUNDLE_FILES, LICENSE))


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(dest: Path = DEST) -> None:
    """``npm pack`` the pinned version, check its integrity, extract the bundle into ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            f"building fastsio needs npm to fetch the {PACKAGE}@{VERSION} client bundle that "
            "the wheel carries (install Node.js/npm), or set FASTSIO_CLIENT_BUNDLE=skip to "
            "build without it"
        )
    with tempfile.TemporaryDirectory(prefix="fastsio-client-") as tmp:
        out = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{VERSION}", "--json", "--pack-destination", tmp],
            cwd=tmp, check=True, stdout=subprocess.PIPE,
        ).stdout
        filename = json.loads(out)[0]["filename"]
        tarball = Path(tmp) / filename
        data = tarball.read_bytes()
        got = _integrity(data)
        if got != INTEGRITY:
            raise SystemExit(f"{filename}: integrity {got} is not the pinned {INTEGRITY}")
        wanted = {f"package/dist/{n}": n for n in BUNDLE_FILES}
        wanted[f"package/{LICENSE}"] = LICENSE
        staging = Path(tmp) / "dist"
        staging.mkdir()
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                name = wanted.pop(member.name, None)
                if name is None or not member.isfile():
                    continue
                src = tar.extractfile(member)
                assert src is not None
                (staging / name).write_bytes(src.read())
        if wanted:
            raise SystemExit(f"{filename} lacks {sorted(wanted)}")
        (staging / STAMP).write_text(stamp_text())
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, dest)
    print(f"client_bundle: {PACKAGE}@{VERSION} -> {dest}", file=sys.stderr)


def ensure(required: bool = True, dest: Path = DEST) -> bool:
    """Fetch the bundle unless it is there. ``required=False`` (editable installs) only warns
    when it cannot be fetched. Returns whether the bundle is there."""
    if os.environ.get("FASTSIO_CLIENT_BUNDLE") == "skip" or present(dest):
        return present(dest)
    try:
        fetch(dest)
    except (SystemExit, OSError, subprocess.CalledProcessError) as exc:
        if required:
            raise
        print(f"client_bundle: WARNING: not fetched ({exc})", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if present() else 1)
    ensure(required=True)
