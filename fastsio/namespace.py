"""Namespaces: handlers, middlewares, the sockets connected to them, broadcasting."""

from __future__ import annotations

import contextvars
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, overload

from fastsio._core import ids, sio_packet
from fastsio.adapter import Adapter, BroadcastOptions, Session
from fastsio.broadcast import BroadcastOperator, RemoteSocket
from fastsio.exceptions import ConnectionRefused
from fastsio.socket import Socket

if TYPE_CHECKING:
    from fastsio.client import Client
    from fastsio.server import Server

log = logging.getLogger("fastsio.namespace")

Room = Hashable
Handler = Callable[..., Any]
H = TypeVar("H", bound=Callable[..., Any])
_EVENT_ALIASES = {"connect": "connection"}
# The namespace's own events (``io.on("connection")`` ...), never a client's: a client may emit
# an event named "connection" or "error", which reaches the socket's listeners only, as with the
# official server (whose namespace and socket are separate emitters).
_NSP_EVENTS = frozenset(("connection", "disconnecting", "disconnect", "error"))
# What sync handlers return: no need to ask inspect.isawaitable (an ABC check, a few
# microseconds) whether such a value is awaitable (Server._call, Namespace._deliver_event).
_NEVER_AWAITABLE = frozenset(
    (type(None), bool, int, float, str, bytes, tuple, list, dict)
)
# Server._settle: the handler's value is not there (a task awaits it, or it failed).
_PENDING: Any = object()


class HandlerTable(dict[str, list[Handler]]):
    """A namespace's handler table that also finds handlers it does not hold: ``fastsio.compat``
    resolves a client event by python-socketio's rules the first time it is seen, then keeps
    the answer in the table itself, so the next event costs one dict lookup as natively.

    ``by_sid``: its client-event handlers take the socket's id where native ones take the
    socket (python-socketio's calling convention), so no wrapper runs per event."""

    by_sid = False

    def resolve(self, event: str) -> list[Handler] | None:
        """The handlers of the client event ``event`` the table does not hold yet."""
        return None

    def lifecycle(self, event: str) -> list[Handler] | None:
        """The handlers of one of the namespace's own events (``connection``, ``disconnecting``,
        ``disconnect``, ``error``): these take the socket, whatever ``by_sid`` says."""
        return self.get(event)


class _Emitting:
    """What namespaces and parent namespaces share: handler registry and broadcast shortcuts."""

    server: Server
    _handlers: dict[str, list[Handler]]
    _middlewares: list[Handler]

    def _operator(self) -> BroadcastOperator:
        raise NotImplementedError

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...
    @overload
    def on(self, event: str, handler: H) -> H: ...
    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler`` for ``event`` (usable as a decorator).

        ``connection`` (alias ``connect``) gets ``(socket)``; ``disconnecting`` and ``disconnect``
        get ``(socket, reason)``; a client event gets ``(socket, *args)`` and the handler's
        return value is the ack (a tuple for several arguments). Sync or async.
        """
        event = _EVENT_ALIASES.get(event, event)

        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def event(self, fn: H) -> H:
        """Decorator: register ``fn`` for the event named like the function."""
        return self.on(fn.__name__, fn)

    def use(self, middleware: H) -> H:
        """Connection middleware ``fn(socket)``: raise :class:`ConnectionRefused` to refuse."""
        self._middlewares.append(middleware)
        return middleware

    # -- broadcasting ------------------------------------------------------------------------
    def to(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Target the sockets in ``rooms`` (chain with ``except_``, ``volatile``, ...)."""
        return self._operator().to(rooms)

    in_ = to

    def except_(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Every socket of the namespace but those in ``rooms``."""
        return self._operator().except_(rooms)

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace."""
        self._operator().emit(event, *args)

    def send(self, *args: Any) -> None:
        """Emit a ``message`` event to every socket of the namespace."""
        self._operator().send(*args)

    write = send

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Emit to every socket and collect one answer each (see
        :meth:`BroadcastOperator.emit_with_ack`)."""
        return await self._operator().emit_with_ack(event, *args)

    @property
    def volatile(self) -> BroadcastOperator:
        """Broadcast that skips the clients not ready to receive it right now."""
        return self._operator().volatile

    @property
    def local(self) -> BroadcastOperator:
        """Broadcast to the sockets of this node only."""
        return self._operator().local

    def compress(self, compress: bool) -> BroadcastOperator:
        """Per-message compression flag (accepted for compatibility: frames are not compressed)."""
        return self._operator().compress(compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Broadcast with an ack deadline, for :meth:`emit_with_ack`."""
        return self._operator().timeout(seconds)

    async def fetch_sockets(self) -> list[RemoteSocket]:
        """The sockets of the namespace, as :class:`RemoteSocket` handles."""
        return await self._operator().fetch_sockets()

    async def sockets_join(self, rooms: Room | Iterable[Room]) -> None:
        """Make every socket of the namespace join ``rooms``."""
        await self._operator().sockets_join(rooms)

    async def sockets_leave(self, rooms: Room | Iterable[Room]) -> None:
        """Make every socket of the namespace leave ``rooms``."""
        await self._operator().sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace (``close``: their connections too)."""
        await self._operator().disconnect_sockets(close)


class Namespace(_Emitting):
    """One namespace (``/`` by default): its sockets, adapter, handlers and middlewares."""

    def __init__(self, server: Server, name: str, parent: ParentNamespace | None = None) -> None:
        self.server = server
        self.name = name
        self.parent = parent
        self.sockets: dict[str, Socket] = {}
        if parent is not None:
            # Children share the parent's registries: later registrations reach them too.
            self._handlers = parent._handlers
            self._middlewares = parent._middlewares
        else:
            self._handlers = {}
            self._middlewares = []
        self._ack_id = -1
        self._pids: dict[str, Socket] = {}  # connected sockets by private session id
        self._server_side_handlers: dict[str, list[Handler]] = {}
        self.adapter = server._adapter_factory(self, server.recovery)
        self._everyone: BroadcastOperator | None = None

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    def _operator(self) -> BroadcastOperator:
        # Operators are immutable: every emit to the whole namespace shares one, made again
        # only when the namespace gets another adapter (Server(adapter=...) after creation).
        op = self._everyone
        if op is None or op._adapter is not self.adapter:
            op = self._everyone = BroadcastOperator(self.adapter)
        return op

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to every socket of the namespace."""
        op = self._everyone  # (_operator, inlined: every nsp.emit's path)
        if op is None or op._adapter is not self.adapter:
            op = self._operator()
        op.emit(event, *args)

    def _next_ack_id(self) -> int:
        self._ack_id += 1
        return self._ack_id

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to the other nodes of the cluster (none with the in-memory adapter):
        their :meth:`on_server_side` handlers get ``args``."""
        await self._operator().server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Like :meth:`server_side_emit`, collecting one answer per other node (the return
        value of its handler); ``io.timeout(seconds).server_side_emit_with_ack(...)`` sets the
        deadline, after which :class:`AckTimeout` carries the answers that came."""
        return await self._operator().server_side_emit_with_ack(event, *args)

    def on_server_side(self, event: str, handler: Handler | None = None) -> Any:
        """Register ``handler(*args)`` for ``event`` sent by another node with
        :meth:`server_side_emit` (the official ``io.on(event)`` for server-side events). Its
        return value (sync or async) answers a ``server_side_emit_with_ack``."""

        def register(fn: Handler) -> Handler:
            self._server_side_handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def _on_server_side_emit(
        self, data: list[Any], reply: Callable[[Any], None] | None = None
    ) -> None:
        """An event from another node; ``reply`` (once) answers its ack."""
        if not data or not isinstance(data[0], str):
            return
        handlers = list(self._server_side_handlers.get(data[0], ()))
        for i, fn in enumerate(handlers):
            self.server._call(fn, tuple(data[1:]), reply if i == 0 else None)

    # -- connecting --------------------------------------------------------------------------
    def _add(self, client: Client, auth: dict[str, Any]) -> None:
        if client.conn.protocol == 3:
            self._add_v3(client, auth)
            return
        recovery = self.server.recovery
        if recovery is not None and isinstance(auth.get("pid"), str):
            self._add_recovering(client, auth)
            return
        sock = Socket(self, client, ids.token(15), client.handshake(auth))
        if recovery is not None:
            sock.pid = ids.token(16)  # 128 bits, only ever sent to its own client
        self._connect_fresh(client, sock)

    def _add_v3(self, client: Client, auth: dict[str, Any]) -> None:
        """A Socket.IO v2 client: its socket id is the Engine.IO session id (prefixed with
        ``<nsp>#`` outside ``/``), as v2 servers did; no connection state recovery (a v2 client
        has no way to resume)."""
        sid = client.conn.sid if self.name == "/" else f"{self.name}#{client.conn.sid}"
        self._connect_fresh(client, Socket(self, client, sid, client.handshake(auth)))

    def _connect_fresh(
        self, client: Client, sock: Socket, session: Session | None = None
    ) -> None:
        if not self._middlewares:
            self._do_connect(client, sock, session)
            return
        # Run at once, as the official server's synchronous next() does: middlewares that
        # never suspend (sync ones, async ones that only check) connect the socket here, with
        # no task. In a context of their own, as a task would give them, which the socket's
        # connection handlers share.
        contextvars.copy_context().run(self._step_middlewares, client, sock, session)

    def _step_middlewares(self, client: Client, sock: Socket, session: Session | None) -> None:
        middlewares = list(self._middlewares)
        for i, fn in enumerate(middlewares):
            try:
                result = fn(sock)
            except Exception as exc:
                self._refuse(client, sock, exc)
                return
            if result is not None and inspect.isawaitable(result):
                # Stepped like a handler (Server._call): on in a task only if it suspends,
                # with the middlewares after it.
                self.server._call(self._run_middlewares,
                                  (client, sock, session, result, middlewares[i + 1:]))
                return
        self._do_connect(client, sock, session)

    def _add_recovering(self, client: Client, auth: dict[str, Any]) -> None:
        pid = auth["pid"]
        offset = auth.get("offset")
        previous = self._pids.get(pid)
        if previous is not None and previous.client is not client:
            # The same client is back while its old connection looks alive: end the old one
            # first (its session is persisted), so the state moves over whole.
            previous.client.conn.close("transport close")
        if offset is not None and not isinstance(offset, str):
            self._recovered(client, auth, None)
            return
        adapter = self.adapter
        if type(adapter).restore_session is not Adapter.restore_session:
            # A cluster adapter asks the network: the rest waits for its answer in a task.
            self.server._spawn(self._restore_then(client, auth, pid, offset))
            return
        # In memory: restored at once, in this packet's dispatch, as a fresh connect is.
        try:
            session = adapter.restore_session_now(pid, offset)
        except Exception:
            log.exception("error while restoring a session")
            session = None
        self._recovered(client, auth, session)

    async def _restore_then(
        self, client: Client, auth: dict[str, Any], pid: str, offset: str | None
    ) -> None:
        try:
            session = await self.adapter.restore_session(pid, offset)
        except Exception:
            log.exception("error while restoring a session")
            session = None
        self._recovered(client, auth, session)

    def _recovered(self, client: Client, auth: dict[str, Any], session: Session | None) -> None:
        """Connect the client whose session ``session`` was restored (``None``: it could not
        be, and the client gets a fresh one)."""
        if client.conn.closed:
            return
        stats = self.server._stats
        if session is None:
            stats.recoveries_failed += 1
            sock = Socket(self, client, ids.token(15), client.handshake(auth))
            sock.pid = ids.token(16)
            self._connect_fresh(client, sock)
            return
        stats.recoveries_ok += 1
        sock = Socket(self, client, session.sid, client.handshake(auth))
        sock.pid = session.pid
        sock.data = session.data
        sock.recovered = True
        sock._log_position = session.log_position
        if self.server.recovery is not None and self.server.recovery["skip_middlewares"]:
            self._do_connect(client, sock, session)
        else:
            self._connect_fresh(client, sock, session)

    async def _run_middlewares(
        self, client: Client, sock: Socket, session: Session | None,
        pending: Awaitable[Any], rest: list[Handler],
    ) -> None:
        try:
            await pending
            for fn in rest:
                result = fn(sock)
                if result is not None and inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._refuse(client, sock, exc)
            return
        self._do_connect(client, sock, session)

    def _refuse(self, client: Client, sock: Socket, exc: Exception) -> None:
        """A middleware refused ``sock`` (raising): the client gets a CONNECT_ERROR."""
        sock._cleanup()
        if isinstance(exc, ConnectionRefused):
            client.connect_error(self.name, exc.message, exc.data)
        else:
            client.connect_error(self.name, str(exc) or type(exc).__name__, None)

    def _do_connect(self, client: Client, sock: Socket, session: Session | None = None) -> None:
        """Connect ``sock``; ``session``: the one being restored (connection state recovery),
        whose rooms it rejoins and whose missed packets go out before the CONNECT reply."""
        client.connecting_done(self.name)
        if client.conn.closed:
            sock._cleanup()
            return
        sock.connected = True
        self.sockets[sock.id] = sock
        client._add(sock)
        self.adapter.add_all(sock.id, (sock.id,))
        if client.conn.protocol == 3:
            sock._send_packet(sio_packet.CONNECT)  # Socket.IO v2 clients: no payload
        elif sock.pid is None:
            sock._send_packet(sio_packet.CONNECT, {"sid": sock.id})
        else:
            self._pids[sock.pid] = sock
            if session is None:
                sock._log_position = self.adapter.log_position()
            else:
                self.adapter.add_all(sock.id, session.rooms)
                # Missed packets go out before the CONNECT reply, as the official server does;
                # the client delivers them once connected.
                for parts in session.missed_packets:
                    client.write(sio_packet.Encoded(parts, self.server.parser == "msgpack"))
            sock._send_packet(sio_packet.CONNECT, {"sid": sock.id, "pid": sock.pid})
        for fn in list(self._lookup("connection")):
            self.server._call(fn, (sock,))

    def _remove(self, sock: Socket) -> None:
        if self.sockets.get(sock.id) is sock:
            del self.sockets[sock.id]
        if sock.pid is not None and self._pids.get(sock.pid) is sock:
            del self._pids[sock.pid]
        parent = self.parent
        if parent is not None and not self.sockets and self.server.cleanup_empty_child_namespaces:
            parent._drop_child(self)

    # -- dispatch ----------------------------------------------------------------------------
    def _lookup(self, event: str) -> list[Handler]:
        """The handlers of one of the namespace's own events (not a client's)."""
        table = self._handlers
        if isinstance(table, HandlerTable):
            return table.lifecycle(event) or []
        return table.get(event) or []

    def _dispatch_event(self, sock: Socket, data: list[Any], ack_id: int | None) -> None:
        if sock._any is not None:
            # As the official server: catch-all listeners see the packet as it arrives, before
            # (and whatever) the socket middlewares decide.
            args = (data[0], *data[1:])
            for fn in list(sock._any):
                self.server._call(fn, args)
        if sock._middlewares:
            self.server._spawn(self._run_packet_middlewares(sock, data, ack_id))
            return
        self._deliver_event(sock, data, ack_id)

    async def _run_packet_middlewares(
        self, sock: Socket, data: list[Any], ack_id: int | None
    ) -> None:
        try:
            for fn in list(sock._middlewares or ()):
                result = fn(sock, data)
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._emit_error(sock, exc)
            return
        if sock.connected:
            self._deliver_event(sock, data, ack_id)

    def _emit_error(self, sock: Socket, exc: BaseException) -> None:
        handlers = list((sock._handlers or {}).get("error", ()))
        for fn in handlers:
            self.server._call(fn, (exc,))
        nsp_handlers = list(self._lookup("error"))
        for fn in nsp_handlers:
            self.server._call(fn, (sock, exc))
        if not handlers and not nsp_handlers:
            # The official server ignores an unheard "error". A client can trigger this at
            # will, so not above DEBUG (and ids stay out of logs at INFO and above).
            log.debug("socket %s: unhandled error: %s", sock.id, exc)

    def _deliver_event(self, sock: Socket, data: list[Any], ack_id: int | None) -> None:
        # The hot path of every client event: one handler, its return value the ack, no
        # per-event closure (the ack is a partial of Socket._reply, made only when asked for).
        event = data[0]
        table = self._handlers
        first: Any = sock
        if isinstance(table, HandlerTable):
            handlers = table.get(event)
            if handlers is None:
                handlers = table.resolve(event)
            if table.by_sid:
                first = sock.id
        elif event in _NSP_EVENTS:
            handlers = None
        else:
            handlers = table.get(event)
        server = self.server
        own = sock._handlers
        if own is None and handlers and len(handlers) == 1:
            # Server._call, inlined for the one handler of most events; the ack's partial is
            # made only for a handler that does not return at once.
            fn = handlers[0]
            try:
                # One argument, the common event, as a plain call: no slice, no argument tuple.
                result = fn(first, data[1]) if len(data) == 2 else fn(first, *data[1:])
            except Exception:
                server._handler_failed(fn)
                return
            if type(result) not in _NEVER_AWAITABLE:
                result = server._settle(
                    fn, result, None if ack_id is None else partial(sock._reply, ack_id, event))
                if result is _PENDING:
                    return
            if ack_id is not None:
                try:
                    sock._reply(ack_id, event, result)
                except TypeError:
                    server._handler_failed(fn)
            return
        on_result = None if ack_id is None else partial(sock._reply, ack_id, event)
        if handlers:
            if len(handlers) == 1:
                server._call(handlers[0], (first, *data[1:]), on_result)
            else:
                for fn in list(handlers):
                    server._call(fn, (first, *data[1:]), on_result)
                    on_result = None
            if own is None:
                return
            on_result = None
        if own is not None:
            args = tuple(data[1:])
            for fn in list(own.get(event, ())):
                server._call(fn, args, on_result)
                on_result = None

    def _dispatch_disconnect(
        self, sock: Socket, event: str, reason: str, description: Any
    ) -> None:
        server = self.server
        for fn in list(self._lookup(event)):
            server._call(fn, (sock, reason))
        if sock._handlers is not None:
            for fn in list(sock._handlers.get(event, ())):
                server._call(fn, (reason,))


class ParentNamespace(_Emitting):
    """A dynamic namespace: a regex or a function that decides which names it creates.

    Children share its handlers and middlewares; emitting on it reaches every child.
    """

    def __init__(
        self,
        server: Server,
        matcher: re.Pattern[str] | Callable[[str, dict[str, Any]], Any],
    ) -> None:
        self.server = server
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}
        self._handlers = {}
        self._middlewares = []

    def _operator(self) -> BroadcastOperator:
        return _ParentOperator(self)

    async def matches(self, name: str, auth: dict[str, Any]) -> bool:
        """Whether this dynamic namespace accepts ``name`` (regex search, or the function's
        answer)."""
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.search(name) is not None
        result = self.matcher(name, auth)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    def _create_child(self, name: str) -> Namespace:
        nsp = Namespace(self.server, name, parent=self)
        self.children[name] = nsp
        return nsp

    def _drop_child(self, nsp: Namespace) -> None:
        if self.children.get(nsp.name) is nsp:
            del self.children[nsp.name]
        if self.server._nsps.get(nsp.name) is nsp:
            del self.server._nsps[nsp.name]
        nsp.adapter.close()


class _ParentOperator(BroadcastOperator):
    """Broadcasts of a parent namespace go to every child with the same options."""

    __slots__ = ("_parent",)

    def __init__(self, parent: ParentNamespace, opts: Any = None) -> None:
        self._parent = parent
        super().__init__(None, opts if opts is not None else BroadcastOptions())  # type: ignore[arg-type]

    def _with(self, **changes: Any) -> BroadcastOperator:
        return _ParentOperator(self._parent, replace(self._opts, **changes))

    def emit(self, event: str, *args: Any) -> None:
        for child in list(self._parent.children.values()):
            BroadcastOperator(child.adapter, self._opts).emit(event, *args)

    async def fetch_sockets(self) -> list[RemoteSocket]:
        out: list[RemoteSocket] = []
        for child in list(self._parent.children.values()):
            out.extend(await BroadcastOperator(child.adapter, self._opts).fetch_sockets())
        return out

    async def sockets_join(self, rooms: Room | Iterable[Room]) -> None:
        for child in list(self._parent.children.values()):
            await BroadcastOperator(child.adapter, self._opts).sockets_join(rooms)

    async def sockets_leave(self, rooms: Room | Iterable[Room]) -> None:
        for child in list(self._parent.children.values()):
            await BroadcastOperator(child.adapter, self._opts).sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        for child in list(self._parent.children.values()):
            await BroadcastOperator(child.adapter, self._opts).disconnect_sockets(close)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        out: list[Any] = []
        for child in list(self._parent.children.values()):
            out.extend(await BroadcastOperator(child.adapter, self._opts).emit_with_ack(
                event, *args))
        return out
