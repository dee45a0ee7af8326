"""Serving a fastsio server from an aiohttp application: ``attach(io, app)``.

aiohttp's requests and WebSockets are presented to the engine the way an ASGI server presents
them (:mod:`fastsio.asgi`), so both paths share one bridge to the engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from fastsio.asgi import Message, _native, serve_http, serve_websocket

__all__ = ["attach", "handle_request"]

_CHUNK = 64 * 1024
# aiohttp does not cancel a handler whose client went away (its default since 3.9): a pending
# long-polling GET looks at its connection this often (seconds).
_LOST_POLL = 0.5


def attach(io: Any, app: web.Application, socketio_path: str = "socket.io",
           shutdown_timeout: float | None = 5.0) -> None:
    """Serve ``io`` (a ``fastsio.Server`` or ``fastsio.compat.AsyncServer``) from ``app`` under
    ``/socketio_path/``; the server closes gracefully (``shutdown_timeout`` seconds) when the
    application shuts down."""
    server = _native(io)
    base = "/" + socketio_path.strip("/")

    async def handler(request: web.Request) -> web.StreamResponse:
        return await handle_request(server, request, socketio_path)

    app.router.add_route("*", base + "/", handler)
    app.router.add_route("*", base + "/{tail:.+}", handler)

    async def on_shutdown(_app: web.Application) -> None:
        await server.close(shutdown_timeout)

    app.on_shutdown.append(on_shutdown)


def _scope(request: web.Request, kind: str) -> dict[str, Any]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return {
        "type": kind,
        "method": request.method,
        "path": request.path,
        "root_path": "",
        "query_string": request.query_string.encode("latin-1"),
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "http_version": f"{request.version.major}.{request.version.minor}",
        "scheme": ("wss" if request.secure else "ws") if kind == "websocket"
        else ("https" if request.secure else "http"),
        "client": (peer[0], peer[1]) if isinstance(peer, tuple) and len(peer) >= 2
        else ((request.remote, 0) if request.remote else None),
        "fastsio.environ": {"aiohttp.request": request},
    }


def _engine_url(server: Any, path: str, socketio_path: str, query: str) -> str:
    base = "/" + socketio_path.strip("/")
    rest = path[len(base):] if path.startswith(base) else "/"
    url: str = server.engine.path + (rest or "/")
    return url + "?" + query if query else url


async def handle_request(server: Any, request: web.Request,
                         socketio_path: str = "socket.io") -> web.StreamResponse:
    """Answer one aiohttp request to the Socket.IO path."""
    server = _native(server)
    url = _engine_url(server, request.path, socketio_path, request.query_string)
    if request.headers.get("upgrade", "").lower() == "websocket":
        return await _websocket(server, request, url)
    return await _http(server, request, url)


async def _http(server: Any, request: web.Request, url: str) -> web.StreamResponse:
    chunks = request.content.iter_chunked(_CHUNK)
    body_done = False
    answer: dict[str, Any] = {}

    async def receive() -> Message:
        nonlocal body_done
        if not body_done:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": chunk, "more_body": True}
        # Polled: aiohttp tells a handler nothing when its client goes (see _LOST_POLL).
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(_LOST_POLL)
        return {"type": "http.disconnect"}

    async def send(msg: Message) -> None:
        if msg["type"] == "http.response.start":
            answer["status"] = msg["status"]
            answer["headers"] = [(k.decode("latin-1"), v.decode("latin-1"))
                                 for k, v in msg.get("headers", [])
                                 if k.lower() != b"content-length"]
        elif msg["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + msg.get("body", b"")

    await serve_http(server.engine, _scope(request, "http"), receive, send, url)
    if "status" not in answer:
        return web.Response(status=400)
    resp = web.Response(status=answer["status"], body=answer.get("body", b""))
    for k, v in answer["headers"]:
        if k.lower() == "content-type":
            resp.headers["Content-Type"] = v
        else:
            resp.headers.add(k, v)
    return resp


async def _websocket(server: Any, request: web.Request, url: str) -> web.StreamResponse:
    # The engine checks message sizes itself (max_http_buffer_size) and closes with 1009.
    ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
    refusal: dict[str, Any] = {}
    connected = False

    async def receive() -> Message:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.TEXT:
                return {"type": "websocket.receive", "text": msg.data}
            if msg.type == WSMsgType.BINARY:
                return {"type": "websocket.receive", "bytes": msg.data}
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                return {"type": "websocket.disconnect", "code": ws.close_code or 1006}

    async def send(msg: Message) -> None:
        kind = msg["type"]
        if kind == "websocket.accept":
            for k, v in msg.get("headers", []):
                ws.headers.add(k.decode("latin-1"), v.decode("latin-1"))
            await ws.prepare(request)
        elif kind == "websocket.send":
            if msg.get("text") is not None:
                await ws.send_str(msg["text"])
            else:
                await ws.send_bytes(msg.get("bytes") or b"")
        elif kind == "websocket.close":
            if ws.prepared:
                await ws.close(code=msg.get("code", 1000))
            else:
                refusal.setdefault("status", 403)
        elif kind == "websocket.http.response.start":
            refusal["status"] = msg["status"]
        elif kind == "websocket.http.response.body":
            refusal["body"] = refusal.get("body", b"") + msg.get("body", b"")

    scope = _scope(request, "websocket")
    scope["extensions"] = {"websocket.http.response": {}}
    await serve_websocket(server.engine, scope, receive, send, url)
    if ws.prepared:
        if not ws.closed:
            await ws.close()
        return ws
    return web.Response(status=refusal.get("status", 400), body=refusal.get("body", b""),
                        content_type="text/html")

