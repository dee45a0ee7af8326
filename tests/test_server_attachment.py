"""What the server answers on its listening port besides Socket.IO: the client bundle at
``/socket.io/socket.io.js`` (and the minified, msgpack and ESM builds, with source maps), its
ETag and 304, compression, CORS, ``serve_client=False``, a custom ``path``, ``static_files``,
404 elsewhere, and listening on port 0. After the official server's test/server-attachment.ts."""

from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path

import orjson
import pytest
import socketio

import fastsio
import fastsio.static
from tests.clients.http import fetch
from tests.clients.sio import sio_clients

CLIENT_DIST = Path(__file__).resolve().parent.parent / "node_modules" / "socket.io-client" / "dist"
# The msgpack build is served with parser="msgpack" only (tests/test_msgpack_parser.py).
BUNDLES = ["socket.io.js", "socket.io.min.js", "socket.io.esm.min.js"]
JS = "application/javascript; charset=utf-8"
JSON = "application/json; charset=utf-8"
STRONG_ETAG = re.compile(r'"[^"]*"')


def _dist(name: str) -> bytes:
    return (CLIENT_DIST / name).read_bytes()


# -- the client bundle --------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUNDLES)
async def test_serves_the_client_bundle(make_server, name):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/{name}")
    assert r.status == 200
    assert r.headers["Content-Type"] == JS
    assert STRONG_ETAG.fullmatch(r.headers["ETag"]), r.headers["ETag"]
    assert r.headers["Cache-Control"] == "public, max-age=0"
    assert "X-SourceMap" not in r.headers
    assert "Content-Encoding" not in r.headers
    assert b"engine.io" in r.body
    assert r.body == _dist(name)


async def test_serves_the_client_with_a_query_string(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/socket.io.js?buster=1732550000000")
    assert r.status == 200
    assert r.headers["Content-Type"] == JS
    assert STRONG_ETAG.fullmatch(r.headers["ETag"])
    assert "X-SourceMap" not in r.headers
    assert r.body == _dist("socket.io.js")


@pytest.mark.parametrize("name", [b + ".map" for b in BUNDLES])
async def test_serves_the_source_maps(make_server, name):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/{name}")
    assert r.status == 200
    assert r.headers["Content-Type"] == JSON
    assert STRONG_ETAG.fullmatch(r.headers["ETag"])
    assert b"engine.io" in r.body
    assert r.body == _dist(name)
    orjson.loads(r.body)


async def test_serves_the_client_gzipped(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/socket.io.js", headers={"Accept-Encoding": "gzip,br,deflate"})
    assert r.status == 200
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.body) == _dist("socket.io.js")


async def test_serves_the_client_with_brotli(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/socket.io.js", headers={"Accept-Encoding": "br"})
    assert r.status == 200
    assert r.headers["Content-Encoding"] == "br"


async def test_no_gzip_when_the_client_refuses_it(make_server):
    _, url = await make_server()
    r = await fetch(
        f"{url}/socket.io/socket.io.js", headers={"Accept-Encoding": "gzip;q=0, identity"}
    )
    assert r.status == 200
    assert r.headers.get("Content-Encoding", "identity") == "identity"
    assert r.body == _dist("socket.io.js")


async def test_serves_the_client_with_cors_headers(make_server):
    _, url = await make_server(cors_allowed_origins="https://good-origin.com")
    r = await fetch(f"{url}/socket.io/socket.io.js", headers={"Origin": "https://good-origin.com"})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://good-origin.com"


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
async def test_answers_304_to_a_matching_etag(make_server, weak):
    _, url = await make_server()
    first = await fetch(f"{url}/socket.io/socket.io.js")
    etag = first.headers["ETag"]
    r = await fetch(
        f"{url}/socket.io/socket.io.js", headers={"If-None-Match": ("W/" if weak else "") + etag}
    )
    assert r.status == 304
    assert r.body == b""


async def test_answers_200_to_a_stale_etag(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/socket.io.js", headers={"If-None-Match": '"0.0.0"'})
    assert r.status == 200
    assert r.body == _dist("socket.io.js")


async def test_serve_client_false_serves_nothing(make_server):
    _, url = await make_server(serve_client=False)
    r = await fetch(f"{url}/socket.io/socket.io.js")
    # Handled by Engine.IO as a request without a transport.
    assert r.status == 400
    assert orjson.loads(r.body) == {"code": 0, "message": "Transport unknown"}


async def test_unknown_files_under_the_path_are_not_served(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/socket.io/socket.io.esm.js")
    assert r.status == 400


async def test_other_paths_get_404(make_server):
    _, url = await make_server()
    r = await fetch(f"{url}/abcdefghij/socket.io.js")
    assert r.status == 404


# -- a custom path ------------------------------------------------------------------------------
async def test_custom_path_serves_the_client_and_socket_io(make_server):
    io, url = await make_server(path="/my-path")
    r = await fetch(f"{url}/my-path/socket.io.js")
    assert r.status == 200
    assert r.headers["Content-Type"] == JS
    assert r.body == _dist("socket.io.js")
    assert (await fetch(f"{url}/socket.io/socket.io.js")).status == 404
    assert (await fetch(f"{url}/socket.io/?EIO=4&transport=polling")).status == 404
    io.on("echo", lambda sock, v: v)
    async with sio_clients() as connect:
        client = await connect(url, socketio_path="my-path")
        assert await client.call("echo", "hi", timeout=5) == "hi"
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(url, transports=["polling"])


# -- static files -------------------------------------------------------------------------------
@pytest.fixture
def site(tmp_path):
    (tmp_path / "index.html").write_bytes(b"<!doctype html><title>fastsio</title>\n")
    (tmp_path / "app.js").write_bytes(b"console.log('hi');\n")
    return tmp_path


async def test_static_files(make_server, site):
    _, url = await make_server(
        static_files={
            "/": site / "index.html",
            "/app.js": str(site / "app.js"),
            "/missing.txt": site / "missing.txt",
        }
    )
    r = await fetch(url + "/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.body == (site / "index.html").read_bytes()
    r = await fetch(url + "/app.js?v=2")
    assert r.status == 200
    assert "javascript" in r.headers["Content-Type"]
    assert r.body == (site / "app.js").read_bytes()
    assert (await fetch(url + "/missing.txt")).status == 404
    assert (await fetch(url + "/other.html")).status == 404
    # The bundle and Socket.IO itself are still there.
    assert (await fetch(url + "/socket.io/socket.io.js")).status == 200
    assert (await fetch(url + "/socket.io/?EIO=4&transport=polling")).status == 200


async def test_static_file_head_has_no_body(make_server, site):
    _, url = await make_server(static_files={"/": site / "index.html"})
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    size = len((site / "index.html").read_bytes())
    assert f"content-length: {size}".encode() in head.lower()
    assert rest == b""


# -- attaching and listening --------------------------------------------------------------------
async def test_start_on_port_zero_returns_the_bound_port():
    io = fastsio.Server()
    try:
        port = await io.start("127.0.0.1", 0)
        assert isinstance(port, int) and port > 0
        assert io.port == port
        r = await fetch(f"http://127.0.0.1:{port}/socket.io/socket.io.js")
        assert r.status == 200
    finally:
        await io.close()


async def test_options_reach_the_engine():
    """The official ``attach(srv, opts)`` merges engine options; here every option is given to
    the constructor and the Engine.IO handshake carries them once the server listens."""
    io = fastsio.Server(ping_timeout=6, ping_interval=24)
    try:
        port = await io.start("127.0.0.1", 0)
        r = await fetch(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling")
        opened = orjson.loads(r.body[1:])
        assert opened["pingTimeout"] == 6000
        assert opened["pingInterval"] == 24000
    finally:
        await io.close()


# -- the bundle the wheel carries ------------------------------------------------------------
def test_the_served_bundle_is_the_pinned_one():
    """What a checkout serves is what the wheel carries: the pinned socket.io-client fetched by
    client_bundle.py (the editable install fetches it too), the same version as the client the
    interop tests drive from node_modules."""
    import client_bundle
    from fastsio.static import BUNDLED, find_client_dist

    assert client_bundle.present(), "run `python client_bundle.py` (scripts/dev does)"
    assert find_client_dist() == BUNDLED
    package = orjson.loads((CLIENT_DIST.parent / "package.json").read_bytes())
    assert package["version"] == client_bundle.VERSION
    for name in fastsio.static.CLIENT_FILES:
        assert (BUNDLED / name).read_bytes() == _dist(name), name
    assert (BUNDLED / "LICENSE").read_bytes().startswith(b"The MIT License")


# -- static files: the same ETags and compression as the bundle --------------------------------
async def test_static_files_have_etags_and_compression(make_server, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<!doctype html>" + "<p>fastsio</p>" * 200)
    _, url = await make_server(static_files={"/": page})
    r = await fetch(url + "/", headers={"Accept-Encoding": "gzip;q=0.5, deflate;q=0.4"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(r.body) == page.read_bytes()
    etag = r.headers["ETag"]
    assert STRONG_ETAG.fullmatch(etag)
    r = await fetch(url + "/", headers={"If-None-Match": etag})
    assert (r.status, r.body) == (304, b"")
    # A changed file is a new version: new ETag, new body.
    page.write_text("<!doctype html><p>changed</p>")
    r = await fetch(url + "/", headers={"If-None-Match": etag})
    assert r.status == 200
    assert r.headers["ETag"] != etag
    assert r.body == page.read_bytes()
    assert "Content-Encoding" not in r.headers  # under 1 KiB: not worth compressing


async def test_static_binary_files_are_not_compressed(make_server, tmp_path):
    blob = tmp_path / "a.png"
    blob.write_bytes(b"\x89PNG" + bytes(4096))
    _, url = await make_server(static_files={"/a.png": blob})
    r = await fetch(url + "/a.png", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.headers["Content-Type"] == "image/png"
    assert "Content-Encoding" not in r.headers
    assert r.body == blob.read_bytes()
