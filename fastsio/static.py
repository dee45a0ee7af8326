"""What the server answers on its port besides Socket.IO: the official client bundle under the
Engine.IO path (``/socket.io/socket.io.js`` and friends) and the user's ``static_files``.

Both go through one responder: a strong ETag (a ``W/`` prefix in ``If-None-Match`` matches too,
as with the official server) and ``304``, and compression chosen by the one ``Accept-Encoding``
negotiation of the project (:func:`fastsio.engine.options.negotiate_encoding`), each encoding
made once per file version. The bundle comes with the wheel (``fastsio/client_dist/``, fetched
from npm at build time by ``client_bundle.py``); a development checkout falls back to an
installed ``socket.io-client`` npm package.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import zlib
from collections.abc import Callable
from pathlib import Path

from fastsio.engine.http import Headers, Request
from fastsio.engine.options import negotiate_encoding

Response = tuple[int, Headers, bytes]

# What the server serves under its path (the same set as the official server's client-dist).
CLIENT_FILES = (
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
)
MSGPACK_FILES = ("socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map")
BUNDLED = Path(__file__).resolve().with_name("client_dist")

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, 6, mtime=0),
    "deflate": lambda data: zlib.compress(data, 6),
}
try:  # brotli is optional (the ``brotli`` extra)
    import brotli

    _ENCODERS = {"br": brotli.compress, **_ENCODERS}
except ImportError:  # pragma: no cover - depends on the environment
    pass
# The official server's preference on a tie: br, gzip, deflate.
ENCODINGS = tuple(_ENCODERS)

# Static files worth compressing; images, archives and fonts are compressed already.
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml",
                 "application/xml", "application/wasm")
_MIN_COMPRESS = 1024


def find_client_dist() -> Path | None:
    """The folder the client bundle is served from, if any.

    ``FASTSIO_CLIENT_DIST`` first; then the bundle the wheel carries; then (a development
    checkout) the ``dist`` folder of an installed ``socket.io-client`` npm package, looked for
    in ``node_modules`` of the working directory and its parents, then next to this package.
    """
    env = os.environ.get("FASTSIO_CLIENT_DIST")
    if env:
        p = Path(env)
        return p if (p / "socket.io.js").is_file() else None
    if (BUNDLED / "socket.io.js").is_file():
        return BUNDLED
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for base in (start, *start.parents):
            dist = base / "node_modules" / "socket.io-client" / "dist"
            if (dist / "socket.io.js").is_file():
                return dist
    return None


class _File:
    __slots__ = ("compress", "ctype", "encoded", "etag", "raw", "version")

    def __init__(self, raw: bytes, ctype: str, compress: bool, version: object) -> None:
        self.raw = raw
        self.ctype = ctype
        self.compress = compress
        self.version = version
        self.etag = '"' + hashlib.sha1(raw).hexdigest()[:20] + '"'
        self.encoded: dict[str, bytes] = {}


def respond(req: Request, f: _File, headers: Headers) -> Response:
    """``f`` for ``req``: 304 on a matching ``If-None-Match``, else the body in the negotiated
    encoding. ``headers`` (CORS, caching) go on both."""
    match = req.headers.get("if-none-match")
    if match and f.etag in (t.strip().removeprefix("W/") for t in match.split(",")):
        return 304, [*headers, ("ETag", f.etag)], b""
    out: Headers = [*headers, ("Content-Type", f.ctype), ("ETag", f.etag)]
    if not f.compress:
        return 200, out, f.raw
    out.append(("Vary", "Accept-Encoding"))
    coding = negotiate_encoding(req.headers.get("accept-encoding"), ENCODINGS)
    if coding is None:
        return 200, out, f.raw
    body = f.encoded.get(coding)
    if body is None:
        body = f.encoded[coding] = _ENCODERS[coding](f.raw)
    out.append(("Content-Encoding", coding))
    return 200, out, body


class FileServer:
    """The ``http_handler`` of a :class:`fastsio.Server` (see the module docstring)."""

    __slots__ = ("_bundle", "_cache", "_cors", "client_dist", "client_files", "engine_path",
                 "routes", "static")

    def __init__(
        self,
        engine_path: str,
        client_dist: Path | None,
        static: dict[str, Path],
        cors: Callable[[Request], Headers],
        msgpack: bool = False,
    ) -> None:
        self.engine_path = engine_path.rstrip("/") + "/"
        self.client_dist = client_dist
        # The bundle files served: the msgpack build only with the msgpack parser.
        self.client_files = frozenset(
            name for name in CLIENT_FILES if msgpack or name not in MSGPACK_FILES
        )
        self.static = static
        self._cors = cors
        # The bundle never changes while the server runs: read once, on first request.
        self._bundle: dict[str, _File] = {}
        self._cache: dict[str, _File] = {}
        # Other GET/HEAD endpoints on the server's port (fastsio.metrics' /metrics).
        self.routes: dict[str, Callable[[Request], Response]] = {}

    def __call__(self, req: Request) -> Response | None:
        path = req.path
        if self.routes:
            route = self.routes.get(path)
            if route is not None and req.method in ("GET", "HEAD"):
                return route(req)
        if self.client_dist is not None and path.startswith(self.engine_path):
            name = path[len(self.engine_path):]
            if name in self.client_files:
                return self._client_file(req, name)
        target = self.static.get(path)
        if target is not None and req.method in ("GET", "HEAD"):
            return self._static_file(req, path, target)
        return None

    def _client_file(self, req: Request, name: str) -> Response:
        f = self._bundle.get(name)
        if f is None:
            assert self.client_dist is not None
            raw = (self.client_dist / name).read_bytes()
            ctype = "application/json" if name.endswith(".map") else "application/javascript"
            f = self._bundle[name] = _File(raw, ctype + "; charset=utf-8", True, None)
        return respond(req, f, [*self._cors(req), ("Cache-Control", "public, max-age=0")])

    def _static_file(self, req: Request, path: str, target: Path) -> Response | None:
        try:
            st = target.stat()
            version = (st.st_mtime_ns, st.st_size)
            f = self._cache.get(path)
            if f is None or f.version != version:
                raw = target.read_bytes()
                ctype = mimetypes.guess_type(str(target))[0] or "application/octet-stream"
                compress = len(raw) >= _MIN_COMPRESS and ctype.startswith(_COMPRESSIBLE)
                if ctype.startswith("text/") or ctype == "application/javascript":
                    ctype += "; charset=utf-8"
                f = self._cache[path] = _File(raw, ctype, compress, version)
        except OSError:
            return None
        return respond(req, f, [("Cache-Control", "no-cache")])
