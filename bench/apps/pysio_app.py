"""The bench app on python-socketio 5 (aiohttp, uvloop): same events as fastsio_app.py.

python bench/apps/pysio_app.py PORT [HOST]
"""

import sys

import socketio
import uvloop
from aiohttp import web

sio = socketio.AsyncServer(async_mode="aiohttp")
app = web.Application()
sio.attach(app)


@sio.on("bcast")
async def b(sid, payload):
    await sio.emit("tick", payload)
    return True


@sio.on("echo")
async def e(sid, *args):
    return args


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    # backlog: aiohttp's default (128) is below the bench's 200 handshakes in flight
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=None,
        backlog=1024,
        loop=uvloop.new_event_loop(),
    )
