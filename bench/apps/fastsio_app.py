"""The bench app on fastsio: `bcast` broadcasts `tick` then acks; `echo` acks its arguments.

python bench/apps/fastsio_app.py PORT [HOST]
"""

import sys

import fastsio

io = fastsio.Server()


@io.on("bcast")
def b(socket, payload):
    io.emit("tick", payload)
    return True


@io.on("echo")
def e(socket, *args):
    return args


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    io.run(host, port)
