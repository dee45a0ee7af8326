"""``docs_app``'s server mounted inside a FastAPI application (``app.mount``), the other
recipe of python-socketio's documentation; the client connects to ``/ws/socket.io/``."""

from fastapi import FastAPI

from tests.compat.apps.docs_app import sio, socketio

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"hello": "mounted"}


app.mount("/ws", socketio.ASGIApp(sio))
