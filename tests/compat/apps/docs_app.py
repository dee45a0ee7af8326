"""A python-socketio application written the way python-socketio's documentation writes one.

The first lines are the only ones that differ between the two servers it runs on: with
``COMPAT_IMPL=python-socketio`` it is a python-socketio app, otherwise the very same code runs on
``fastsio.compat`` (the one-line migration). The tests start it under uvicorn, hypercorn and
aiohttp and drive it with python-socketio's client and the official JS client.
"""

import os

if os.environ.get("COMPAT_IMPL") == "python-socketio":
    import socketio
else:
    from fastsio import compat as socketio

from fastapi import FastAPI

DISCONNECTS = []

sio = socketio.AsyncServer(async_mode=os.environ.get("COMPAT_MODE", "asgi"),
                           cors_allowed_origins="*")
fastapi_app = FastAPI()


@fastapi_app.get("/hello")
async def hello():
    return {"hello": "world"}


# the python-socketio docs' FastAPI recipe: Socket.IO in front, everything else to FastAPI
app = socketio.ASGIApp(sio, other_asgi_app=fastapi_app)


@sio.event
async def connect(sid, environ, auth):
    token = (auth or {}).get("token")
    if token == "refuse":
        raise socketio.exceptions.ConnectionRefusedError("authentication failed", {"code": 7})
    if token == "false":
        return False
    async with sio.session(sid) as session:
        session["user"] = (auth or {}).get("user", "anonymous")
        session["query"] = environ.get("QUERY_STRING", "")
    await sio.enter_room(sid, "lobby")


@sio.event
async def disconnect(sid, reason):
    DISCONNECTS.append([sid, reason])


@sio.event
async def disconnects(sid):
    return DISCONNECTS


@sio.event
async def whoami(sid):
    session = await sio.get_session(sid)
    return session["user"]


@sio.event
async def has_query(sid, key):
    session = await sio.get_session(sid)
    return key in session["query"]


@sio.event
async def rename(sid, name):
    session = await sio.get_session(sid)
    session["user"] = name
    await sio.save_session(sid, session)


@sio.event
async def join(sid, room):
    await sio.enter_room(sid, room)
    return sorted(r for r in sio.rooms(sid) if r != sid)


@sio.event
async def leave(sid, room):
    await sio.leave_room(sid, room)
    return sorted(r for r in sio.rooms(sid) if r != sid)


@sio.event
async def members(sid, room):
    return sorted(s for s, _ in sio.manager.get_participants("/", room))


@sio.event
async def close(sid, room):
    await sio.close_room(room)


@sio.event
async def say(sid, room, text):
    await sio.emit("said", {"room": room, "text": text}, room=room, skip_sid=sid)


@sio.event
async def shout(sid, text):
    await sio.emit("shouted", text)


@sio.event
async def ask(sid, question):
    return await sio.call("question", question, to=sid, timeout=5)


@sio.event
async def ask_silent(sid):
    try:
        await sio.call("silent", to=sid, timeout=0.3)
    except socketio.exceptions.TimeoutError:
        return "timed out"
    return "answered"


@sio.event
async def callback(sid, text):
    got = []

    def done(*args):
        got.extend(args)

    await sio.emit("with_ack", text, to=sid, callback=done)
    for _ in range(100):
        if got:
            return got
        await sio.sleep(0.02)
    return "no ack"


@sio.event
def multi(sid):
    return 1, "two", {"three": 3}


@sio.event
def nothing(sid):
    return None


@sio.event
def binary(sid, data):
    return data + b"!"


@sio.event
async def transport(sid):
    return sio.transport(sid)


@sio.event
async def kick(sid):
    await sio.disconnect(sid)


@sio.event
async def message(sid, data):
    await sio.send("echo: " + data, to=sid)


@sio.on("*")
async def any_event(event, sid, *args):
    return ["caught", event, list(args)]


class Chat(socketio.AsyncNamespace):
    async def on_connect(self, sid, environ):
        await self.enter_room(sid, "chatters")

    def on_disconnect(self, sid, reason):
        DISCONNECTS.append([sid, "chat:" + reason])

    async def on_echo(self, sid, data):
        return data

    async def on_post(self, sid, text):
        await self.emit("posted", text, room="chatters", skip_sid=sid)

    async def on_nick(self, sid, nick):
        async with self.session(sid) as session:
            session["nick"] = nick
        return (await self.get_session(sid))["nick"]


sio.register_namespace(Chat("/chat"))
