"""The server side of the official Socket.IO Admin UI (``@socket.io/admin-ui``).

``instrument(io, auth=...)`` opens an admin namespace (``/admin``) that the UI connects to with
the official client. It speaks the UI's protocol: ``config`` (the features on offer), a
``server_stats`` message every two seconds (clients, namespaces, aggregated connection and
traffic counts), and in development mode the socket list (``all_sockets``) followed by live
events: sockets connecting, disconnecting, joining and leaving rooms, events received and sent.
Unless ``read_only``, the UI can emit, make sockets join or leave rooms, and disconnect them.

Everything here sits on the public server API plus three general hooks: the engine's
``on_connection`` and ``on_upgrade`` callbacks and the adapter's ``join-room``/``leave-room``
listeners. A server that is not instrumented pays nothing for them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import secrets
import socket as _socket
import time
import weakref
from collections.abc import Hashable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import orjson

from fastsio.broadcast import RemoteSocket, check_event
from fastsio.exceptions import ConnectionRefused

if TYPE_CHECKING:
    from fastsio.engine.socket import EngineSocket
    from fastsio.namespace import Namespace, ParentNamespace
    from fastsio.server import Server
    from fastsio.socket import Socket

log = logging.getLogger("fastsio.admin")

Mode = Literal["development", "production"]

STATS_INTERVAL = 2.0  # seconds between two server_stats messages, as the official server

# The UI's feature flags: what its buttons may ask for.
ACTIONS = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")

# A bcrypt hash as bcrypt and bcryptjs write it: $2a$/$2b$/$2y$, two-digit cost, 53 characters
# of salt and digest in bcrypt's base64 alphabet.
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")

# bcrypt reads at most 72 bytes of a password; bcryptjs (the official server's) ignores the
# rest, while the Python package refuses longer ones: cut them the same way.
_BCRYPT_MAX = 72


def instrument(
    io: Server,
    *,
    auth: Mapping[str, str] | Literal[False] | None,
    mode: Mode = "development",
    read_only: bool = False,
    namespace_name: str = "/admin",
    server_id: str | None = None,
) -> Namespace:
    """Serve the Socket.IO Admin UI's protocol on ``namespace_name``; returns that namespace.

    ``auth`` must be given: ``False`` (or ``None``) lets anyone who can reach the server in,
    ``{"username": ..., "password": <bcrypt hash>}`` asks the UI for those credentials (the
    hash as ``bcrypt.hashpw(b"...", bcrypt.gensalt())`` or bcryptjs makes it; the ``bcrypt``
    package, ``pip install fastsio-server[admin]``, checks it). A successful login gets a session id
    that the UI reuses to reconnect without asking again, for the life of this process.

    ``mode="production"`` sends only the aggregated figures (no socket list, no per-event
    messages), which cost little however busy the server is. ``read_only`` offers no action.
    ``server_id`` tells the servers of a cluster apart in the UI (default: the host name).

    The UI runs in a browser on another origin (https://admin.socket.io, or the
    ``ui/dist`` folder of the npm package served anywhere): give the server
    ``cors_allowed_origins=[that origin]`` and ``cors_credentials=True``.
    """
    if mode not in ("development", "production"):
        raise ValueError(f'mode must be "development" or "production", not {mode!r}')
    if not namespace_name.startswith("/"):
        namespace_name = "/" + namespace_name
    return _Instrumentation(io, auth, mode, read_only, namespace_name, server_id).admin


def _timestamp() -> str:
    """Now as JavaScript's ``new Date()`` reaches the UI (``toJSON``: ISO 8601, UTC, ms)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _jsonable(value: Any) -> Any:
    """``value`` reduced to what JSON carries (``repr`` for anything else), so that user data
    that the encoder would refuse never stops an admin message."""
    try:
        return orjson.loads(orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def _room(room: Hashable) -> Any:
    return room if isinstance(room, (str, int)) else str(room)


class _EventBuffer:
    """Counts by (second, type, subtype) between two ``server_stats`` messages."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[tuple[int, str, str | None], int] = {}

    def push(self, type_: str, sub_type: str | None = None, count: int = 1) -> None:
        key = (int(time.time()) * 1000, type_, sub_type)
        self.counts[key] = self.counts.get(key, 0) + count

    def take(self) -> list[dict[str, Any]]:
        out = []
        for (timestamp, type_, sub_type), count in self.counts.items():
            item: dict[str, Any] = {"timestamp": timestamp, "type": type_, "count": count}
            if sub_type is not None:
                item["subType"] = sub_type
            out.append(item)
        self.counts = {}
        return out


class _Instrumentation:
    def __init__(
        self,
        io: Server,
        auth: Mapping[str, str] | Literal[False] | None,
        mode: Mode,
        read_only: bool,
        namespace_name: str,
        server_id: str | None,
    ) -> None:
        self.io = io
        self.development = mode == "development"
        hostname = _socket.gethostname()
        self.base_stats = {
            "serverId": server_id or hostname,
            "hostname": hostname,
            "pid": os.getpid(),
        }
        self.started = time.monotonic()
        self.features = [] if read_only else list(ACTIONS)
        self.features.append("AGGREGATED_EVENTS")
        if self.development:
            self.features.append("ALL_EVENTS")
        self.events = _EventBuffer()
        self.ticking = False
        self.admin: Namespace = io.of(namespace_name)
        self._watched: set[object] = set()  # the handler owners already listened to
        # Sessions handed out by the login (the UI sends one back to reconnect), and those
        # that a socket still has to be told once connected.
        self.sessions: set[str] = set()
        self.new_session: weakref.WeakKeyDictionary[Socket, str] = weakref.WeakKeyDictionary()
        self._init_auth(auth)

        admin = self.admin
        admin.on("connection", self._on_admin_connection)
        if not read_only:
            admin.on("emit", self._on_emit)
            admin.on("join", self._on_join)
            admin.on("leave", self._on_leave)
            admin.on("_disconnect", self._on_disconnect)

        engine = io.engine
        previous_connection = engine.on_connection
        previous_upgrade = engine.on_upgrade

        def on_connection(conn: EngineSocket) -> None:
            if previous_connection is not None:
                previous_connection(conn)
            self._on_engine_connection(conn)

        def on_upgrade(conn: EngineSocket) -> None:
            if previous_upgrade is not None:
                previous_upgrade(conn)
            self._on_engine_upgrade(conn)

        engine.on_connection = on_connection
        engine.on_upgrade = on_upgrade

        if self.development:
            for nsp in list(io._nsps.values()):
                self._watch(nsp)
            io.on("new_namespace", self._watch)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started with the first connection (no admin can connect before)
        self._start_ticking()

    # -- authentication ----------------------------------------------------------------------
    def _init_auth(self, auth: Mapping[str, str] | Literal[False] | None) -> None:
        if auth is False or auth is None:
            log.warning("admin UI: authentication is disabled, please use with caution")
            return
        if not isinstance(auth, Mapping):
            raise TypeError("auth must be False or {'username': ..., 'password': <bcrypt hash>}")
        kind = auth.get("type", "basic")
        if kind != "basic":
            raise ValueError(f'unknown auth type {kind!r} (only "basic")')
        username = auth.get("username")
        password = auth.get("password")
        if not isinstance(username, str):
            raise ValueError("auth: the username must be a string")
        if not isinstance(password, str) or not _BCRYPT_HASH.match(password):
            raise ValueError("auth: the password must be a bcrypt hash (bcrypt.hashpw(...))")
        try:
            import bcrypt
        except ImportError:
            raise ImportError(
                "the admin UI's password check needs the bcrypt package: "
                "pip install 'fastsio-server[admin]'"
            ) from None
        expected_user = username.encode()
        hashed = password.encode()

        def check(given: bytes) -> bool:
            return bool(bcrypt.checkpw(given, hashed))

        async def authenticate(socket: Socket) -> None:
            creds = socket.handshake.auth
            session = creds.get("sessionId")
            if isinstance(session, str) and session in self.sessions:
                return
            user = creds.get("username")
            given = creds.get("password")
            if isinstance(user, str) and isinstance(given, str):
                same_user = hmac.compare_digest(user.encode(), expected_user)
                # bcrypt takes tens of milliseconds: off the event loop.
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, check, given.encode()[:_BCRYPT_MAX]
                )
                if same_user and ok:
                    session = secrets.token_hex(8)
                    self.sessions.add(session)
                    self.new_session[socket] = session
                    return
            raise ConnectionRefused("invalid credentials")

        self.admin.use(authenticate)

    # -- the admin namespace -----------------------------------------------------------------
    async def _on_admin_connection(self, socket: Socket) -> None:
        session = self.new_session.pop(socket, None)
        if session is not None:
            socket.emit("session", session)
        socket.emit("config", {"supportedFeatures": self.features})
        # The figures at once rather than at the next tick (the counts stay for everyone).
        socket.emit("server_stats", self.stats(take_events=False))
        if self.development:
            sockets = await self._all_sockets()
            if socket.connected:
                socket.emit("all_sockets", sockets)

    async def _all_sockets(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for nsp in list(self.io._nsps.values()):
            for remote in await nsp.fetch_sockets():
                out.append(self._serialize(nsp, remote))
        return out

    def _namespace(self, name: Any) -> Namespace | None:
        # Only namespaces that exist: the UI never creates one.
        return self.io._nsps.get(name) if isinstance(name, str) else None

    def _on_emit(self, admin: Socket, nsp_name: Any = None, room: Any = None,
                 event: Any = None, *args: Any) -> None:
        nsp = self._namespace(nsp_name)
        if nsp is None:
            return
        try:
            check_event(event)
        except (TypeError, ValueError) as exc:
            log.debug("admin UI: emit refused: %s", exc)
            return
        self._select(nsp, room).emit(event, *args)

    async def _on_join(self, admin: Socket, nsp_name: Any = None, room: Any = None,
                       selector: Any = None) -> None:
        nsp = self._namespace(nsp_name)
        if nsp is not None and isinstance(room, (str, int)):
            await self._select(nsp, selector).sockets_join(room)

    async def _on_leave(self, admin: Socket, nsp_name: Any = None, room: Any = None,
                        selector: Any = None) -> None:
        nsp = self._namespace(nsp_name)
        if nsp is not None and isinstance(room, (str, int)):
            await self._select(nsp, selector).sockets_leave(room)

    async def _on_disconnect(self, admin: Socket, nsp_name: Any = None, close: Any = False,
                             selector: Any = None) -> None:
        nsp = self._namespace(nsp_name)
        if nsp is not None:
            await self._select(nsp, selector).disconnect_sockets(bool(close))

    @staticmethod
    def _select(nsp: Namespace, selector: Any) -> Any:
        """The sockets an action is for: those in room ``selector`` (a socket's id names its
        own room), or the whole namespace when there is none."""
        if isinstance(selector, (str, int)) and selector != "":
            return nsp.in_(selector)
        return nsp

    # -- what the UI shows of a socket -------------------------------------------------------
    def _serialize(self, nsp: Namespace, sock: Socket | RemoteSocket) -> dict[str, Any]:
        local = nsp.sockets.get(sock.id)
        client_id = transport = None
        if local is not None:
            # A prefix only: the whole Engine.IO id would let a viewer act as that client.
            client_id = local.client.conn.sid[:12]
            transport = local.transport
        hs = sock.handshake
        headers = hs.headers
        return {
            "id": sock.id,
            "clientId": client_id,
            "transport": transport,
            "nsp": nsp.name,
            "data": _jsonable(sock.data),
            "handshake": {
                "address": headers.get("cf-connecting-ip")
                or headers.get("x-forwarded-for")
                or hs.address,
                "headers": headers,
                "query": hs.query,
                "issued": hs.issued,
                "secure": hs.secure,
                "time": hs.time,
                "url": hs.url,
                "xdomain": hs.xdomain,
            },
            "rooms": [_room(r) for r in sock.rooms],
        }

    # -- development mode: live events of every namespace ------------------------------------
    def _watch(self, nsp: Namespace) -> None:
        admin = self.admin
        name = nsp.name
        owner: Namespace | ParentNamespace = nsp.parent if nsp.parent is not None else nsp
        # Children of a dynamic namespace share its handlers: listen there once.
        if owner not in self._watched:
            self._watched.add(owner)
            owner.on("connection", self._on_socket_connected)
            owner.on("disconnect", self._on_socket_disconnected)

        def joined(room: Hashable, sid: str) -> None:
            admin.emit("room_joined", name, _room(room), sid, _timestamp())

        def left(room: Hashable, sid: str) -> None:
            # After the disconnect message when a socket leaves, as the official server.
            asyncio.get_running_loop().call_soon(
                admin.emit, "room_left", name, _room(room), sid, _timestamp()
            )

        nsp.adapter.on("join-room", joined)
        nsp.adapter.on("leave-room", left)

    def _on_socket_connected(self, sock: Socket) -> None:
        if not sock.connected:
            return  # a connection handler before this one disconnected it
        admin = self.admin
        nsp = sock.nsp
        # Announced once every connection handler has run, so that what they put in
        # socket.data and the rooms they joined are in it.
        asyncio.get_running_loop().call_soon(self._announce, sock, _timestamp())
        if nsp is admin:
            return
        name = nsp.name
        sid = sock.id

        def received(event: str, *args: Any) -> None:
            admin.emit("event_received", name, sid, [event, *args], _timestamp())

        def sent(event: str, *args: Any) -> None:
            admin.emit("event_sent", name, sid, [event, *args], _timestamp())

        sock.on_any(received)
        sock.on_any_outgoing(sent)

    def _announce(self, sock: Socket, when: str) -> None:
        if sock.connected:
            self.admin.emit("socket_connected", self._serialize(sock.nsp, sock), when)

    def _on_socket_disconnected(self, sock: Socket, reason: str) -> None:
        self.admin.emit("socket_disconnected", sock.nsp.name, sock.id, reason, _timestamp())

    # -- the engine: connections, traffic, upgrades ------------------------------------------
    def _on_engine_connection(self, conn: EngineSocket) -> None:
        events = self.events
        events.push("rawConnection")
        if not self.ticking:
            self._start_ticking()
        on_message = conn.on_message
        on_close = conn.on_close

        def counting_message(data: bytes, binary: bool) -> None:
            events.push("packetsIn")
            # Text packets arrive with their Engine.IO type digit, which the official count
            # leaves out.
            events.push("bytesIn", None, len(data) if binary else len(data) - 1)
            if on_message is not None:
                on_message(data, binary)

        def counting_close(reason: str, description: str | None) -> None:
            events.push("rawDisconnection", reason)
            if on_close is not None:
                on_close(reason, description)

        conn.on_message = counting_message
        conn.clear_sink()  # every packet through counting_message
        conn.on_close = counting_close

    def _on_engine_upgrade(self, conn: EngineSocket) -> None:
        if not self.development:
            return
        client = conn.data
        for sock in list(getattr(client, "nsps", {}).values()):
            self.admin.emit("socket_updated", {
                "id": sock.id, "nsp": sock.nsp.name, "transport": conn.transport_name,
            })

    # -- server_stats ------------------------------------------------------------------------
    def _start_ticking(self) -> None:
        self.ticking = True
        self.io._spawn(self._tick())

    async def _tick(self) -> None:
        try:
            while True:
                try:
                    self._emit_stats()
                except Exception:
                    log.exception("admin UI: could not send the server's figures")
                await asyncio.sleep(STATS_INTERVAL)
        finally:
            # Cancelled by io.close(): the next connection after a restart starts it again.
            self.ticking = False

    def stats(self, take_events: bool = True) -> dict[str, Any]:
        io = self.io
        clients = io.engine.clients
        return {
            **self.base_stats,
            "uptime": time.monotonic() - self.started,
            "clientsCount": len(clients),
            "pollingClientsCount": sum(
                1 for c in clients.values() if c.transport_name == "polling"
            ),
            "aggregatedEvents": self.events.take() if take_events else [],
            "namespaces": [
                {"name": nsp.name, "socketsCount": len(nsp.sockets)}
                for nsp in list(io._nsps.values())
            ],
        }

    def _emit_stats(self) -> None:
        stats = self.stats()
        if self.admin.sockets:
            self.admin.emit("server_stats", stats)


__all__ = ["instrument"]
