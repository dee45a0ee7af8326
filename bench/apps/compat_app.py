"""The bench app (same events as fastsio_app.py) written for python-socketio and served as an
ASGI app; ``COMPAT_IMPL=python-socketio`` runs it on python-socketio, otherwise the same code
runs on ``fastsio.compat`` (the one-line migration). Served by ``bench/compat.py`` under uvicorn,
and on fastsio's own front with ``fastsio run bench.apps.compat_app:app``."""

import os

if os.environ.get("COMPAT_IMPL") == "python-socketio":
    import socketio
else:
    from fastsio import compat as socketio

sio = socketio.AsyncServer(async_mode="asgi")


async def other_app(scope, receive, send):
    """Stands for the FastAPI app beside Socket.IO (not used by the load generator)."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


app = socketio.ASGIApp(sio, other_asgi_app=other_app)


@sio.on("bcast")
async def b(sid, payload):
    await sio.emit("tick", payload)
    return True


@sio.on("echo")
async def e(sid, *args):
    return args
