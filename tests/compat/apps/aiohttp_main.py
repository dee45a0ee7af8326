"""``docs_app`` served by aiohttp, as python-socketio's documentation attaches a server:
``sio.attach(app)`` then ``web.run_app(app)``. Run with ``COMPAT_MODE=aiohttp``."""

import sys

from aiohttp import web

from tests.compat.apps.docs_app import sio

app = web.Application()
sio.attach(app)


async def index(request):
    return web.Response(text="aiohttp index")


app.router.add_get("/", index)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
