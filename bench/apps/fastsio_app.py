"""The bench app on fastsio: `bcast` broadcasts `tick` then acks; `echo` acks its arguments;
`bcastbin` broadcasts `tick` with its pad as bytes (a binary event) then acks.

python bench/apps/fastsio_app.py PORT [HOST] [--recovery] [--count-disconnects]

--recovery (or FASTSIO_BENCH_RECOVERY=1): ``connection_state_recovery=True``, so every broadcast
is logged in the namespace's packet log and stamped with an offset (``tick`` then carries one
more element: ``42["tick",{...},"<offset>"]``). Everything else: the server's defaults.

--redis URL: the Redis streams adapter (``fastsio.cluster``) on that Redis (the cluster bench,
``bench/cluster.py``).

--msgpack: ``parser="msgpack"`` (socket.io-msgpack-parser's format; the load generator then
needs ``--msgpack`` too).

--count-disconnects: count the reasons given to ``disconnect`` handlers and print them as one JSON
line (``{"disconnect_reasons": {...}}``) when the server stops.
"""

import json
import os
import sys

import fastsio

argv = sys.argv[1:]
redis_url = None
if "--redis" in argv:
    i = argv.index("--redis")
    redis_url = argv[i + 1]
    del argv[i : i + 2]
args = [a for a in argv if not a.startswith("--")]
recovery = "--recovery" in argv or os.environ.get("FASTSIO_BENCH_RECOVERY") == "1"
parser = "msgpack" if "--msgpack" in argv else "json"

if redis_url is not None:
    from fastsio.cluster import redis_streams_adapter

    io = fastsio.Server(connection_state_recovery=True if recovery else None,
                        adapter=redis_streams_adapter(redis_url), parser=parser)
else:
    io = fastsio.Server(connection_state_recovery=True if recovery else None, parser=parser)


@io.on("bcast")
def b(socket, payload):
    io.emit("tick", payload)
    return True


@io.on("bcastbin")
def bb(socket, payload):
    # The same tick with its pad as bytes: a binary event (one text packet + one attachment).
    io.emit("tick", {"t": payload["t"], "pad": payload["pad"].encode()})
    return True


@io.on("echo")
def e(socket, *args):
    return args


reasons: dict[str, int] = {}
if "--count-disconnects" in sys.argv[1:]:

    @io.on("disconnect")
    def d(socket, reason):
        reasons[reason] = reasons.get(reason, 0) + 1


if __name__ == "__main__":
    port = int(args[0]) if args else 3000
    host = args[1] if len(args) > 1 else "127.0.0.1"
    print(f"fastsio bench app on {host}:{port}, connection_state_recovery={recovery}, "
          f"parser={parser}", flush=True)
    io.run(host, port)
    if "--count-disconnects" in sys.argv[1:]:
        print(json.dumps({"disconnect_reasons": reasons}), flush=True)
