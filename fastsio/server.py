"""``fastsio.Server``: the Socket.IO server users create."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import logging
import re
import signal
import sys
import types
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterable
from pathlib import Path
from ssl import SSLContext
from typing import Any, overload

from fastsio import trace
from fastsio._core import msgpack_packet, sio_packet
from fastsio._core.coro import step as _step
from fastsio.adapter import Adapter
from fastsio.broadcast import BroadcastOperator, check_event
from fastsio.client import Client
from fastsio.encoding import Encoder, JsonDefault
from fastsio.engine.http import Headers, Request
from fastsio.engine.server import AllowRequest, CorsOrigins, EngineServer
from fastsio.engine.socket import EngineSocket
from fastsio.namespace import _NEVER_AWAITABLE, _PENDING, H, Namespace, ParentNamespace, _Emitting
from fastsio.static import FileServer, find_client_dist
from fastsio.stats import Stats

log = logging.getLogger("fastsio")


class _Resumed:
    """A coroutine that ``Server._call`` stepped once and that suspended on ``first``: awaiting
    this (in a task) hands ``first`` to the task, then drives the coroutine on, each step in
    its context ``ctx``, with what the task sends or throws (cancellation) in. Works on every
    Python the project supports (``asyncio.eager_task_factory`` is 3.12+ and per loop)."""

    __slots__ = ("_coro", "_ctx", "_first")

    def __init__(self, coro: types.CoroutineType[Any, Any, Any], first: Any,
                 ctx: contextvars.Context) -> None:
        self._coro = coro
        self._first = first
        self._ctx = ctx

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, run = self._coro, self._ctx.run
        yielded, self._first = self._first, None
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                step: Callable[[Any], Any] = coro.throw
                arg: Any = exc
            else:
                step, arg = coro.send, sent
            try:
                yielded = run(step, arg)
            except StopIteration as stop:
                return stop.value

# Looked up once per handler call (Server._call).
_Coroutine = types.CoroutineType
_copy_context = contextvars.copy_context

Room = Hashable
Handler = Callable[..., Any]
AdapterFactory = Callable[[Namespace, "dict[str, Any] | None"], Adapter]

RECOVERY_DEFAULTS: dict[str, Any] = {
    "max_disconnection_duration": 120.0,
    "skip_middlewares": True,
    # Bounds of each namespace's packet log (the oldest packets go first).
    "max_packets": 10_000,
    "max_bytes": 8 * 1024 * 1024,
}

class Server(_Emitting):
    """A Socket.IO v4 server.

    Engine.IO options (``path``, ``transports``, ``ping_interval``, ``ping_timeout``,
    ``max_http_buffer_size``, ``cors_allowed_origins``, ``trusted_proxies``, ...) are passed
    through; times are in seconds. Calls such as ``emit``/``to``/``on`` without a namespace act
    on ``/``. ``json_default``: ``fn(value)`` for values orjson cannot encode
    (:mod:`fastsio.encoding`); ``packet_stats``: count packets and bytes in :meth:`stats`.

    ``parser``: the Socket.IO wire format, ``"json"`` (the default parser of every client) or
    ``"msgpack"`` (``socket.io-msgpack-parser``: one msgpack map per packet, binary values
    anywhere without attachments; every client of the server must use it, and the client bundle
    then includes ``socket.io.msgpack.min.js``).

    ``other_asgi_app``: an ASGI application (FastAPI, Starlette, ...) that gets every HTTP
    request and WebSocket outside the Socket.IO path, on the same port and in this process,
    with its lifespan run by :meth:`start`/:meth:`close` (see :class:`fastsio.asgi.OtherApp`
    for what this bridge does not do: request bodies over ``max_http_buffer_size``, HTTP/2).
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io",
        serve_client: bool = True,
        connect_timeout: float = 45.0,
        cleanup_empty_child_namespaces: bool = False,
        adapter: AdapterFactory = Adapter,
        connection_state_recovery: bool | dict[str, Any] | None = None,
        max_attachments: int = 10,
        max_attachment_bytes: int | None = None,
        attachment_timeout: float = 10.0,
        max_json_depth: int = 64,
        max_event_args: int = 256,
        max_namespace_length: int = 256,
        static_files: dict[str, str | Path] | None = None,
        transports: Iterable[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        upgrade_timeout: float = 10.0,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        cors_allowed_origins: CorsOrigins = None,
        cors_credentials: bool = False,
        allow_request: AllowRequest | None = None,
        shutdown_timeout: float | None = None,
        json_default: JsonDefault | None = None,
        packet_stats: bool = False,
        other_asgi_app: Any = None,
        parser: str = "json",
        **engine_options: Any,
    ) -> None:
        if parser not in ("json", "msgpack"):
            raise ValueError(f"parser must be 'json' or 'msgpack', not {parser!r}")
        if parser == "msgpack" and engine_options.get("allow_eio3"):
            # Socket.IO v2's msgpack parser is another format, and untested here.
            raise ValueError("parser='msgpack' speaks Socket.IO v5 only (no allow_eio3)")
        self.parser = parser
        # Every packet of this server is encoded by this one function (the parser's).
        self.encode: Encoder = msgpack_packet.encode if parser == "msgpack" else sio_packet.encode
        self.connect_timeout = connect_timeout
        # Called for each value orjson cannot encode (a pydantic model, a Decimal, ...): it
        # returns something that can be (fastsio/encoding.py). Off the fast path.
        if json_default is not None and not callable(json_default):
            raise TypeError("json_default must be a function (value -> JSON-able value)")
        self.json_default = json_default
        # Counters for stats() and fastsio.metrics; the per-packet ones only when asked for.
        self._stats = Stats(packet_stats)
        self._packets = self._stats.packets
        trace.enable_from_environment()
        # close()'s default timeout (run() closes with it on Ctrl-C / SIGTERM): None closes at
        # once, a number of seconds closes gracefully (see close()).
        if shutdown_timeout is not None and shutdown_timeout < 0:
            raise ValueError("shutdown_timeout must be >= 0 seconds, or None")
        self.shutdown_timeout = shutdown_timeout
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        # Limits on client input: each refusal closes only the offending connection.
        self.max_attachments = max_attachments
        self.max_attachment_bytes = (
            max_http_buffer_size if max_attachment_bytes is None else max_attachment_bytes
        )
        self.attachment_timeout = attachment_timeout
        self.max_json_depth = max_json_depth
        self.max_event_args = max_event_args
        self.max_namespace_length = max_namespace_length
        self._adapter_factory = adapter
        self.recovery: dict[str, Any] | None = None
        if connection_state_recovery:
            extra = connection_state_recovery if isinstance(connection_state_recovery, dict) else {}
            unknown = set(extra) - set(RECOVERY_DEFAULTS)
            if unknown:
                raise ValueError(f"unknown connection_state_recovery options: {sorted(unknown)}")
            self.recovery = {**RECOVERY_DEFAULTS, **extra}
        self._nsps: dict[str, Namespace] = {}
        self._parents: list[ParentNamespace] = []
        self._server_handlers: dict[str, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        client_dist = find_client_dist() if serve_client else None
        if serve_client and client_dist is None:
            log.info("serve_client: no client bundle found; not serving it")
        self.engine = EngineServer(
            path=path,
            transports=transports,
            allow_upgrades=allow_upgrades,
            upgrade_timeout=upgrade_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=max_http_buffer_size,
            cors_allowed_origins=cors_allowed_origins,
            cors_credentials=cors_credentials,
            allow_request=allow_request,
            on_connection=self._on_engine_connection,
            **engine_options,
        )
        # The client bundle and static files (fastsio/static.py).
        self.engine.http_handler = self._files = FileServer(
            self.engine.path,
            client_dist,
            {k: Path(v) for k, v in (static_files or {}).items()},
            self.engine.responses.cors_headers,
            msgpack=parser == "msgpack",
        )
        # An ASGI application (FastAPI, Starlette, ...) served on the same port for every HTTP
        # request and WebSocket outside the Socket.IO path (fastsio.asgi.OtherApp).
        self.other_asgi_app = other_asgi_app
        if other_asgi_app is not None:
            from fastsio.asgi import OtherApp

            self.engine.other_app = OtherApp(other_asgi_app, self)
        self.sockets: Namespace = self.of("/")
        self._handlers = self.sockets._handlers
        self._middlewares = self.sockets._middlewares

    # -- namespaces --------------------------------------------------------------------------
    def of(
        self, name: str | re.Pattern[str] | Callable[[str, dict[str, Any]], Any]
    ) -> Any:
        """A namespace by name, or a dynamic namespace from a regex or a ``fn(name, auth)``."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            nsp = self._nsps.get(name)
            if nsp is None:
                # A name a regex parent matches becomes its child, as if a client had asked.
                parent = next(
                    (p for p in self._parents
                     if isinstance(p.matcher, re.Pattern) and p.matcher.search(name)),
                    None,
                )
                nsp = parent._create_child(name) if parent is not None else Namespace(self, name)
                self._nsps[name] = nsp
                self._emit_server("new_namespace", nsp)
            return nsp
        parent = ParentNamespace(self, name)
        self._parents.append(parent)
        return parent

    def _operator(self) -> BroadcastOperator:
        return self.sockets._operator()

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of ``/``."""
        nsp = self.sockets
        op = nsp._everyone  # (Namespace._operator, inlined: every io.emit's path)
        if op is None or op._adapter is not nsp.adapter:
            op = nsp._operator()
        # BroadcastOperator.emit, inlined: one Python frame less on every io.emit (with the
        # outbox's cheaper checks, a broadcast's fixed part went 29.7k -> 27.5k instructions,
        # bench/fanout_instructions.py).
        if type(event) is not str or event in sio_packet.RESERVED_EVENTS:
            check_event(event)  # raises
        self._stats.broadcasts += 1
        op._adapter.broadcast([event, *args], op._opts)

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...
    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`Namespace.on` for ``/``; ``new_namespace`` gets each namespace created."""
        if event == "new_namespace":

            def register(fn: Handler) -> Handler:
                self._server_handlers.setdefault(event, []).append(fn)
                return fn

            return register(handler) if handler is not None else register
        if handler is None:
            return super().on(event)
        return super().on(event, handler)

    def _emit_server(self, event: str, *args: Any) -> None:
        for fn in list(self._server_handlers.get(event, ())):
            self._call(fn, args)

    def set_adapter(self, adapter: AdapterFactory) -> None:
        """Use ``adapter`` (the same kind of factory as ``Server(adapter=...)``) from now on:
        the namespaces that exist get a new adapter made by it (the official ``io.adapter()``).
        Call it before the server has clients; ``fastsio run --redis`` does it in each worker."""
        if any(nsp.sockets for nsp in self._nsps.values()):
            raise RuntimeError("set_adapter() after clients connected")
        self._adapter_factory = adapter
        for nsp in self._nsps.values():
            nsp.adapter.close()
            nsp.adapter = adapter(nsp, self.recovery)

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to the other nodes of the cluster (none with the in-memory adapter)."""
        await self.sockets.server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Like :meth:`server_side_emit`, collecting one answer per other node (see
        :meth:`Namespace.server_side_emit_with_ack`)."""
        return await self.sockets.server_side_emit_with_ack(event, *args)

    def on_server_side(self, event: str, handler: Handler | None = None) -> Any:
        """Like :meth:`Namespace.on_server_side` for ``/``."""
        return self.sockets.on_server_side(event, handler)

    def _connect(self, client: Client, name: str, auth: dict[str, Any]) -> None:
        if name == "":
            name = "/"
        nsp = self._nsps.get(name)
        if nsp is not None:
            nsp._add(client, auth)
        elif self._parents:
            self._spawn(self._connect_dynamic(client, name, auth))
        else:
            client.connect_error(name, "Invalid namespace", None)

    async def _connect_dynamic(self, client: Client, name: str, auth: dict[str, Any]) -> None:
        for parent in list(self._parents):
            try:
                ok = await parent.matches(name, auth)
            except Exception:
                log.exception("error in a dynamic namespace matcher")
                ok = False
            if ok:
                nsp = self._nsps.get(name)
                if nsp is None:
                    nsp = parent._create_child(name)
                    self._nsps[name] = nsp
                    self._emit_server("new_namespace", nsp)
                if not client.conn.closed:
                    nsp._add(client, auth)
                return
        client.connect_error(name, "Invalid namespace", None)

    # -- engine glue -------------------------------------------------------------------------
    def _on_engine_connection(self, conn: EngineSocket) -> None:
        Client(self, conn)

    # -- user code ---------------------------------------------------------------------------
    def _call(
        self,
        fn: Handler,
        args: tuple[Any, ...],
        on_result: Callable[[Any], None] | None = None,
    ) -> None:
        """Run a user handler, sync or async; errors are logged, never propagated.

        A coroutine is stepped here, in the caller, up to its first suspension: most handlers
        (``await sio.emit(...)``, ``return data``) never suspend, and a task per event was most
        of their cost. Only one that does suspend gets a task, which goes on with the same
        coroutine. So the part before the first ``await`` that suspends runs inside the
        packet's dispatch (``asyncio.current_task()`` there is the caller's task or ``None``),
        and events of one connection start their handlers in arrival order."""
        try:
            result = fn(*args)
        except Exception:
            self._handler_failed(fn)
            return
        if type(result) not in _NEVER_AWAITABLE:
            result = self._settle(fn, result, on_result)
            if result is _PENDING:
                return
        if on_result is not None:
            # (_send_result, inlined: this is every acked event's path)
            try:
                on_result(result)
            except TypeError:
                self._handler_failed(fn)

    def _settle(
        self, fn: Handler, result: Any, on_result: Callable[[Any], None] | None
    ) -> Any:
        """The value of what handler ``fn`` returned, when it is one now: a coroutine stepped
        to its end gives its return value. ``_PENDING`` when it is not: a task now awaits it
        (and then calls ``on_result``), or it failed (logged)."""
        if type(result) is _Coroutine:
            # Its own context, as a task would give it: what it sets does not leak into the
            # dispatch's context (sync handlers share that one, as before).
            coro, ctx = result, _copy_context()
            try:
                done, result = _step(coro, ctx)
            except asyncio.CancelledError:
                return _PENDING  # it cancelled itself, as a task it would have ended cancelled
            except Exception:
                self._handler_failed(fn)
                return _PENDING
            if not done:
                self._spawn(self._await_handler(fn, _Resumed(coro, result, ctx), on_result))
                return _PENDING
            return result
        if inspect.isawaitable(result):
            self._spawn(self._await_handler(fn, result, on_result))
            return _PENDING
        return result

    @staticmethod
    def _handler_failed(fn: Handler) -> None:
        """Log what handler ``fn`` raised (called in the ``except`` that caught it)."""
        log.exception("error in handler %s", getattr(fn, "__name__", fn))

    async def _await_handler(
        self, fn: Handler, aw: Awaitable[Any], on_result: Callable[[Any], None] | None
    ) -> None:
        try:
            result = await aw
        except asyncio.CancelledError:
            raise
        except Exception:
            self._handler_failed(fn)
            return
        if on_result is not None:
            self._send_result(fn, on_result, result)

    @staticmethod
    def _send_result(fn: Handler, on_result: Callable[[Any], None], result: Any) -> None:
        """The ack of a handler's return value; one that cannot be encoded is logged."""
        try:
            on_result(result)
        except TypeError:
            Server._handler_failed(fn)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- observability -----------------------------------------------------------------------
    @property
    def engine_routes(self) -> dict[str, Callable[[Request], tuple[int, Headers, bytes]]]:
        """Extra GET/HEAD endpoints on the server's port: path -> ``fn(request)`` returning
        ``(status, headers, body)`` (``fastsio.metrics.export`` adds ``/metrics`` here)."""
        return self._files.routes

    def stats(self) -> dict[str, Any]:
        """The server's counters: ``clients`` (Engine.IO sessions), ``sockets`` (per
        namespace), ``packets_in``/``bytes_in``/``packets_out``/``bytes_out`` (Socket.IO
        packets; ``None`` unless ``Server(packet_stats=True)``), ``broadcasts``, ``recoveries``
        (``ok``/``failed``) and ``disconnects`` (count per reason). See :mod:`fastsio.stats`;
        :mod:`fastsio.metrics` exports them to Prometheus."""
        return self._stats.snapshot(
            len(self.engine.clients),
            {name: len(nsp.sockets) for name, nsp in self._nsps.items()},
        )

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int | None:
        """The port the server listens on (after :meth:`start`), else ``None``."""
        return self.engine.port

    async def start(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the bound port."""
        # asyncio's default backlog (100) drops SYNs under a reconnect storm and clients then
        # wait for TCP's 1 s / 3 s retransmits; Node listens with 511.
        kwargs.setdefault("backlog", 1024)
        trace.refresh()  # the trace loggers' levels, read once here (fastsio/trace.py)
        for nsp in list(self._nsps.values()):
            await nsp.adapter.init()
        if self.engine.other_app is not None:
            await self.engine.other_app.startup()  # the ASGI app's lifespan, before listening
        return await self.engine.start(host, port, **kwargs)

    async def close(self, timeout: float | None = None, *, reconnect: bool = True) -> None:
        """Disconnect every client (``server shutting down``) and stop listening.

        Every socket sees ``disconnecting``/``disconnect`` with ``server shutting down`` and,
        with connection state recovery on, its session is persisted through the adapter. The
        clients see their connection close and try to reconnect, as with the official server
        (with recovery, to this server once restarted or to another node); ``reconnect=False``
        sends each socket a DISCONNECT packet first, so that clients do not try again (they
        see ``io server disconnect``).

        Without ``timeout`` (``shutdown_timeout`` by default, ``None``) it is done at once: what
        the shutdown started (async disconnect handlers, session writes of a networked adapter)
        is cancelled, and packets a polling client has not fetched yet are dropped. With
        ``timeout`` (seconds) it is graceful: new connections are refused, what the shutdown
        started may finish, and everything queued for a client (a burst emitted just before
        ``close``, the DISCONNECT packet) is delivered before its connection closes; what is
        still pending after ``timeout`` is cut off, and ``close`` returns.
        """
        if timeout is None:
            timeout = self.shutdown_timeout
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        engine = self.engine
        engine.stop_accepting()
        before = set(self._tasks)
        for nsp in list(self._nsps.values()):
            for sock in list(nsp.sockets.values()):
                if not reconnect and sock.connected:
                    sock._send_packet(sio_packet.DISCONNECT)
                sock._on_close("server shutting down")
        for conn in list(engine.clients.values()):
            conn.close("forced server close")
        if deadline is not None:
            # Sessions persisted through the adapter, async disconnect handlers.
            started = self._tasks - before
            remaining = deadline - loop.time()
            if started and remaining > 0:
                await asyncio.wait(started, timeout=remaining)
        await engine.close(None if deadline is None else max(0.0, deadline - loop.time()))
        if engine.other_app is not None:
            await engine.other_app.shutdown(
                None if deadline is None else max(0.0, deadline - loop.time()))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for nsp in self._nsps.values():
            nsp.adapter.close()
        for nsp in list(self._nsps.values()):
            await nsp.adapter.aclose()

    def run(
        self,
        host: str = "0.0.0.0",
        port: int = 3000,
        tune_gc: bool = True,
        *,
        ssl: SSLContext | None = None,
        quiet: bool = False,
    ) -> None:
        """Serve until interrupted (Ctrl-C / SIGTERM), on uvloop where available.

        Prints where it listens (``https://`` with ``ssl``, an ``ssl.SSLContext``) on stdout,
        whatever the logging configuration; ``quiet=True`` does not.

        ``tune_gc`` (this process is the server's alone): everything loaded at startup is moved
        out of the cyclic collector's reach (``gc.freeze``) and young collections run less
        often, because a server with thousands of long-lived connections otherwise spends a
        large share of each handshake re-scanning them. ``start()`` never touches the GC.
        """

        async def main() -> None:
            if tune_gc:
                tune_garbage_collector()
            bound = await self.start(host, port, ssl=ssl)
            url = listening_url(host, bound, ssl is not None)
            log.info("fastsio listening on %s", url)
            if not quiet:
                print(f"fastsio listening on {url}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, stop.set)
                except (NotImplementedError, RuntimeError):
                    pass
            try:
                await stop.wait()
            finally:
                await self.close()

        run_loop(main())


def listening_url(host: str, port: int, secure: bool) -> str:
    """Where a server bound to ``host:port`` listens, as a URL; for a wildcard host, with the
    loopback URL a browser on this machine opens."""
    scheme = "https" if secure else "http"
    shown = f"[{host}]" if ":" in host else (host or "0.0.0.0")
    url = f"{scheme}://{shown}:{port}/"
    if host in ("", "0.0.0.0", "::"):
        local = "[::1]" if host == "::" else "127.0.0.1"
        url += f" (on this machine: {scheme}://{local}:{port}/)"
    return url


def tune_garbage_collector() -> None:
    """Freeze what exists now and make young collections rarer (see :meth:`Server.run`)."""
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


# Python's default (700) runs a young collection every few handshakes under load.
GC_GEN0_THRESHOLD = 20_000


def run_loop(main: Awaitable[None]) -> None:
    """Run ``main`` on uvloop (the default loop on Windows, where uvloop does not exist)."""
    if sys.platform != "win32":
        try:
            import uvloop

            uvloop.run(main)  # type: ignore[arg-type]
            return
        except ImportError:
            pass
    asyncio.run(main)  # type: ignore[arg-type]




