"""Catch-all namespaces, as python-socketio's documentation shows them (``namespaces="*"`` and
handlers registered for ``namespace="*"``). Same switch as ``docs_app``."""

import os

if os.environ.get("COMPAT_IMPL") == "python-socketio":
    import socketio
else:
    from fastsio import compat as socketio

sio = socketio.AsyncServer(async_mode="asgi", namespaces="*")
app = socketio.ASGIApp(sio)


@sio.on("connect", namespace="*")
async def any_connect(namespace, sid, environ, auth):
    if namespace == "/forbidden":
        return False


@sio.on("*", namespace="*")
async def any_event(event, namespace, sid, *args):
    return [namespace, event, list(args)]


@sio.on("ping", namespace="*")
async def any_ping(namespace, sid):
    return ["pong", namespace]


@sio.on("ping", namespace="/special")
async def special_ping(sid):
    return "special pong"
