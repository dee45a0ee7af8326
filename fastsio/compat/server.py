"""``AsyncServer``: python-socketio 5's server API as a facade over the native ``fastsio.Server``.

Handlers are keyed by ``sid`` as in python-socketio. Underneath, every namespace is a native
namespace: the wire protocol, rooms, fan-out (encoded once), backpressure and connection state
recovery are the native server's. The differences from python-socketio are listed in
``docs/migrating.md``.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable
from functools import partial
from typing import Any

from fastsio.adapter import Adapter
from fastsio.compat import exceptions
from fastsio.compat._calls import _OPTIONAL_LAST, call_handler
from fastsio.compat.manager import AsyncManager
from fastsio.compat.namespace import AsyncNamespace
from fastsio.exceptions import AckTimeout, ConnectionRefused
from fastsio.namespace import HandlerTable, Namespace
from fastsio.server import Server
from fastsio.socket import Socket

__all__ = ["AsyncServer"]

default_logger = logging.getLogger("socketio.server")

_RESERVED = ("connect", "disconnect")
# How many client events one namespace's table keeps resolved (_Handlers): beyond, they are
# resolved per event (a catch-all handler answers any name a client sends).
_MAX_RUNNERS = 1024
# The native namespace's own events: never cached (what they run depends on always_connect).
_LIFECYCLE = frozenset(("connection", "disconnecting", "disconnect", "error"))

# Native disconnect reasons -> python-socketio's (``engineio.Server.reason``).
_REASONS = {
    "server namespace disconnect": "server disconnect",
    "client namespace disconnect": "client disconnect",
    "forced close": "server disconnect",
    "forced server close": "server disconnect",
    "server shutting down": "server disconnect",
    "ping timeout": "ping timeout",
    "transport close": "transport close",
    "transport error": "transport error",
    "parse error": "transport error",
}

# Native Server keywords that compat passes through as they are.
_NATIVE_OPTIONS = frozenset(inspect.signature(Server.__init__).parameters) - {"self",
                                                                              "engine_options"}
_ENGINE_OPTIONS = frozenset((
    "write_buffer_high_water", "max_queued_bytes", "cors_methods", "cors_allowed_headers",
    "cors_exposed_headers", "cors_max_age", "allow_eio3", "sid_generator", "initial_headers",
    "headers", "websocket_handshake_timeout", "max_request_line", "max_header_size",
    "max_header_count", "http_request_timeout", "http_keep_alive_timeout",
))
# python-socketio / python-engineio options accepted with no effect here (see the guide).
_IGNORED_OPTIONS = frozenset(("monitor_clients", "async_handlers_engineio", "websocket_ping",
                              "ping_interval_grace_period"))


class _Reason:
    """``sio.reason``: python-socketio's disconnect reasons."""

    SERVER_DISCONNECT = "server disconnect"
    CLIENT_DISCONNECT = "client disconnect"
    PING_TIMEOUT = "ping timeout"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"


def _as_args(data: Any) -> tuple[Any, ...]:
    """python-socketio's ``data``: a tuple spreads to several arguments, ``None`` is none."""
    if data is None:
        return ()
    if isinstance(data, tuple):
        return data
    return (data,)


def _ack_value(args: tuple[Any, ...]) -> Any:
    if not args:
        return None
    return args[0] if len(args) == 1 else args


def _rooms_of(target: Any) -> list[Hashable]:
    if isinstance(target, (list, tuple, set, frozenset)):
        return list(target)
    return [target]


def build_environ(sock: Socket) -> dict[str, Any]:
    """A WSGI-style environ for the connection of ``sock``, as python-socketio hands to
    ``connect`` handlers (``REMOTE_ADDR``, ``QUERY_STRING``, ``HTTP_*`` headers, ...); under
    ASGI it also has ``asgi.scope``, under aiohttp ``aiohttp.request``."""
    req = sock.client.conn.request
    qs = req.url.partition("?")[2]
    host = req.headers.get("host", "")
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "PATH_INFO": req.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": qs,
        "RAW_URI": req.url,
        "SERVER_PROTOCOL": "HTTP/" + (req.http_version or "1.1"),
        "REMOTE_ADDR": req.remote_address,
        "SERVER_NAME": name or "localhost",
        "SERVER_PORT": port or ("443" if req.secure else "80"),
        "wsgi.url_scheme": "https" if req.secure else "http",
    }
    names = _ENVIRON_NAMES
    for key, value in req.headers.items():
        env_key = names.get(key)
        if env_key is None:
            env_key = _environ_name(key)
        environ[env_key] = value
    extra = getattr(req, "environ_extra", None)
    if extra:
        environ.update(extra)
    return environ


# Header name -> its environ key, for the header names seen (bounded: clients choose them).
_ENVIRON_NAMES: dict[str, str] = {}


def _environ_name(header: str) -> str:
    cgi = header.upper().replace("-", "_")
    name = cgi if cgi == "CONTENT_TYPE" or cgi == "CONTENT_LENGTH" else "HTTP_" + cgi
    if len(_ENVIRON_NAMES) < 512:
        _ENVIRON_NAMES[header] = name
    return name


class _Watched(dict):  # type: ignore[type-arg]
    """One of the registries python-socketio apps may change at any time (``sio.handlers``,
    its per-namespace dicts, ``sio.namespace_handlers``): every change drops what the
    namespaces' tables resolved, so a handler added, replaced or removed (through ``sio.on``
    or by writing to the dicts directly) counts from the next event. Reads stay plain dict
    reads."""

    __slots__ = ("_changed",)

    def __init__(self, changed: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changed = changed

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._changed()

    def __ior__(self, other: Any) -> _Watched:  # type: ignore[misc]
        super().update(other)
        self._changed()
        return self

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._changed()
        return value

    def popitem(self) -> Any:
        item = super().popitem()
        self._changed()
        return item

    def setdefault(self, key: Any, default: Any = None) -> Any:
        value = super().setdefault(key, default)
        self._changed()
        return value

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()


class _Handlers(HandlerTable):
    """The handler table of one native namespace, filled by python-socketio's rules.

    A client event is resolved the first time it arrives (handlers of the namespace, catch-all
    ``"*"`` events and namespaces, class-based namespaces) and the answer is kept in the table
    itself, where the native dispatch finds it with one dict lookup; any change to the
    registries (:class:`_Watched`, ``async_handlers``, ``handlers``/``namespace_handlers``
    replaced) empties every table. The handlers it holds take the sid (``by_sid``): a plain
    handler is called as is, others (catch-all, class-based, ``async_handlers=False``) through
    a runner. An event nobody handles gets no handler, so its ack request stays unanswered,
    as in python-socketio.

    Handlers registered natively on the same namespace (``sio.io.on(...)``) are kept apart
    (``native``) and run after compat's, with the socket as their first argument."""

    by_sid = True

    def __init__(self, server: AsyncServer, nsp: Namespace) -> None:
        super().__init__()
        self._server = server
        self._nsp = nsp
        self.native: dict[str, list[Callable[..., Any]]] = {}

    def setdefault(self, key: str, default: Any = None) -> Any:
        # Namespace.on's registration: a native handler.
        dict.clear(self)
        return self.native.setdefault(key, [] if default is None else default)

    def forget(self) -> None:
        """Drop what was resolved (a registry changed)."""
        dict.clear(self)

    def lifecycle(self, event: str) -> list[Callable[..., Any]] | None:
        srv = self._server
        found: list[Any] = []
        if event == "connection":
            # Only always_connect has work once connected (the connect handler).
            if srv.always_connect:
                found.append(srv._on_connection)
        elif event == "disconnecting":
            found.append(srv._on_disconnecting)
        found.extend(self.native.get(event, ()))
        return found

    def resolve(self, event: str) -> list[Callable[..., Any]] | None:
        srv = self._server
        ns = self._nsp.name
        found: list[Callable[..., Any]] = []
        resolved = srv._resolve(event, ns)
        if resolved is not None:
            fn, lead = resolved
            if lead or event in _OPTIONAL_LAST or not srv.async_handlers:
                found.append(srv._runner(event, fn, lead))
            else:
                found.append(fn)
        if event not in _LIFECYCLE:
            found.extend(_socket_first(self._nsp, fn) for fn in self.native.get(event, ()))
        if srv._cacheable(ns) and len(self) < _MAX_RUNNERS:
            dict.__setitem__(self, event, found)
        return found


def _socket_first(nsp: Namespace, fn: Callable[..., Any]) -> Callable[..., Any]:
    """A native handler in a table whose handlers take the sid: called with the socket."""
    def run(sid: str, *args: Any) -> Any:
        return fn(nsp.sockets[sid], *args)

    run.__name__ = run.__qualname__ = getattr(fn, "__name__", None) or repr(fn)
    return run


class AsyncServer:
    """A Socket.IO server with python-socketio's ``AsyncServer`` API.

    Every documented python-socketio/python-engineio option is accepted; what each does here is
    in ``docs/migrating.md``. Native ``fastsio.Server`` options (``connection_state_recovery``,
    ``max_queued_bytes``, ...) may be passed too. ``self.io`` is the native server.
    """

    reason = _Reason

    def __init__(
        self,
        client_manager: Any = None,
        logger: bool | logging.Logger = False,
        json: Any = None,
        async_handlers: bool = True,
        namespaces: str | Iterable[str] | None = None,
        always_connect: bool = False,
        serializer: Any = "default",
        **kwargs: Any,
    ) -> None:
        if serializer not in ("default", None, "msgpack"):
            raise ValueError(
                "fastsio.compat speaks Socket.IO's JSON serializer ('default') and "
                f"'msgpack' (socket.io-msgpack-parser) only (serializer={serializer!r} "
                "is not supported)"
            )
        if serializer == "msgpack":
            kwargs.setdefault("parser", "msgpack")
        self.logger = self._make_logger(logger)
        engineio_logger = kwargs.pop("engineio_logger", None)
        if engineio_logger is not None and engineio_logger is not False:
            eng = logging.getLogger("fastsio.engine")
            if isinstance(engineio_logger, logging.Logger):
                eng.parent = engineio_logger  # fastsio's engine records go through it
            elif eng.level == logging.NOTSET:
                eng.setLevel(logging.INFO)
        self.json = json  # accepted; the native core encodes with orjson (see the guide)
        # Every namespace's table (_Handlers), emptied when a registry changes.
        self._tables: weakref.WeakValueDictionary[str, _Handlers] = (
            weakref.WeakValueDictionary())
        self._registry: dict[str, dict[str, Callable[..., Any]]] = _Watched(
            self._handlers_changed)
        self._namespace_registry: dict[str, AsyncNamespace] = _Watched(self._handlers_changed)
        self._async_handlers = async_handlers
        self.always_connect = always_connect
        self.namespaces: str | list[str] = (
            "*" if namespaces == "*" else list(namespaces or ["/"])
        )
        self.async_mode = kwargs.pop("async_mode", None) or "asgi"
        # By sid (python-socketio: by eio sid), made on first use (_environ_of).
        self.environ: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, Socket] = {}  # connect handler running
        # Disconnect handler running: the socket and its rooms from before it left them.
        self._leaving: dict[str, tuple[Socket, set[Hashable]]] = {}
        self._refused: set[str] = set()  # always_connect: refused after the CONNECT reply
        self._order: dict[str, asyncio.Future[None]] = {}  # async_handlers=False: per sid
        self._tasks: set[asyncio.Task[Any]] = set()

        adapter, manager = self._adapter_and_manager(client_manager)
        self.manager = manager
        manager.set_server(self)
        self.io = Server(adapter=adapter, **self._native_options(kwargs))
        self._attached: set[str] = set()
        self._attach(self.io.sockets)
        if self.namespaces == "*":
            self.io.on("new_namespace", self._on_new_namespace)
            parent = self.io.of(lambda name, auth: True)
            parent.use(self._connect_middleware)
        else:
            for ns in self.namespaces:
                self._ensure_namespace(ns)

    # -- options -----------------------------------------------------------------------------
    @staticmethod
    def _make_logger(logger: bool | logging.Logger) -> logging.Logger:
        if isinstance(logger, logging.Logger):
            return logger
        log = default_logger
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO if logger else logging.ERROR)
        return log

    def _adapter_and_manager(self, client_manager: Any) -> tuple[Any, AsyncManager]:
        if client_manager is None:
            return Adapter, AsyncManager()
        factory = getattr(client_manager, "adapter_factory", None)
        if factory is not None:
            # AsyncRedisManager (fastsio.cluster underneath): its native adapter does the work.
            manager = client_manager if isinstance(client_manager, AsyncManager) \
                else AsyncManager()
            return factory, manager
        if isinstance(client_manager, AsyncManager):
            return Adapter, client_manager
        if isinstance(client_manager, type) and issubclass(client_manager, Adapter):
            return client_manager, AsyncManager()
        if type(client_manager).__module__.split(".")[0] == "socketio":
            raise ValueError(
                "python-socketio's client managers speak python-socketio's own message format "
                "and cannot drive fastsio: use a fastsio adapter (a fastsio.Adapter subclass, "
                "or the Redis adapter of fastsio.cluster), see docs/migrating.md"
            )
        if callable(client_manager):
            return client_manager, AsyncManager()
        raise ValueError(f"unsupported client_manager {client_manager!r}")

    def _native_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        ping_interval = kwargs.pop("ping_interval", None)
        if ping_interval is not None:
            # (interval, grace): the grace period has no equivalent (the client's pings are timed
            # by ping_timeout, as in the official server).
            opts["ping_interval"] = float(
                ping_interval[0] if isinstance(ping_interval, (tuple, list)) else ping_interval
            )
        for key in ("ping_timeout",):
            if kwargs.get(key) is not None:
                opts[key] = float(kwargs.pop(key))
        compression = kwargs.pop("http_compression", True)
        threshold = kwargs.pop("compression_threshold", None)
        if compression:
            opts["http_compression"] = (
                {"threshold": int(threshold)} if threshold is not None else True
            )
        else:
            opts["http_compression"] = False
        cookie = kwargs.pop("cookie", None)
        if cookie:
            opts["cookie"] = self._cookie(cookie)
        transports = kwargs.pop("transports", None)
        if transports is not None:
            opts["transports"] = tuple([transports] if isinstance(transports, str)
                                       else transports)
        cors = kwargs.pop("cors_allowed_origins", None)
        credentials = bool(kwargs.pop("cors_credentials", True))
        user_allow = kwargs.pop("allow_request", None)
        opts.update(self._cors(cors, credentials, user_allow))
        for key in list(kwargs):
            if key in _IGNORED_OPTIONS:
                kwargs.pop(key)
            elif key in _NATIVE_OPTIONS or key in _ENGINE_OPTIONS:
                opts[key] = kwargs.pop(key)
        for key in kwargs:
            # python-engineio ignores options it does not know; so does compat (with a word).
            self.logger.warning("fastsio.compat: option %r is not supported, ignored", key)
        return opts

    @staticmethod
    def _cookie(cookie: Any) -> dict[str, Any]:
        if isinstance(cookie, str):
            return {"name": cookie}
        if isinstance(cookie, dict):
            # python-engineio's keys (cookie attribute names) -> the native ones.
            names = {"name": "name", "path": "path", "samesite": "same_site",
                     "secure": "secure", "httponly": "http_only", "domain": "domain",
                     "max-age": "max_age", "expires": "expires"}
            out: dict[str, Any] = {"http_only": False, "same_site": None, "path": None}
            for key, value in cookie.items():
                native = names.get(key.lower().replace("_", "-").replace("same-site",
                                                                         "samesite"))
                if native is None:
                    native = names.get(key.lower().replace("_", ""))
                if native is not None:
                    out[native] = value
            out.setdefault("name", "io")
            return out
        return {"name": "io"}

    def _cors(self, origins: Any, credentials: bool, user_allow: Any) -> dict[str, Any]:
        """python-engineio's CORS: ``None`` allows the server's own origin only and refuses
        others (400); ``"*"`` any; a string, a list, or ``fn(origin[, environ])``; ``[]`` turns
        CORS handling off (no header, no check)."""
        opts: dict[str, Any] = {"cors_credentials": credentials}
        if isinstance(origins, (list, tuple)) and len(origins) == 0:
            opts["cors_allowed_origins"] = None
            if user_allow is not None:
                opts["allow_request"] = user_allow
            return opts

        def same_origin(origin: str, headers: dict[str, str], secure: bool) -> bool:
            host = headers.get("host", "")
            scheme = "https" if secure else "http"
            allowed = {f"{scheme}://{host}"}
            fwd_proto = headers.get("x-forwarded-proto")
            fwd_host = headers.get("x-forwarded-host")
            if fwd_proto or fwd_host:
                allowed.add("{}://{}".format(
                    (fwd_proto or scheme).split(",")[0].strip(),
                    (fwd_host or host).split(",")[0].strip()))
            return origin in allowed

        if origins is None:
            opts["cors_allowed_origins"] = None

            def allowed(origin: str, req: Any) -> bool:
                return same_origin(origin, req.headers, req.secure)
        elif origins == "*" or (isinstance(origins, (list, tuple)) and "*" in origins):
            opts["cors_allowed_origins"] = True if credentials else "*"

            def allowed(origin: str, req: Any) -> bool:
                return True
        elif callable(origins):
            fn = origins
            takes_environ = _accepts_two(fn)
            opts["cors_allowed_origins"] = lambda origin: True  # checked in allow_request

            def allowed(origin: str, req: Any) -> bool:
                if takes_environ:
                    return bool(fn(origin, {"HTTP_" + k.upper().replace("-", "_"): v
                                            for k, v in req.headers.items()}))
                return bool(fn(origin))
        else:
            listed = frozenset([origins] if isinstance(origins, str) else origins)
            opts["cors_allowed_origins"] = list(listed)

            def allowed(origin: str, req: Any) -> bool:
                return origin in listed

        def allow_request(req: Any) -> Any:
            origin = req.headers.get("origin")
            if origin and not allowed(origin, req):
                return f"{origin} is not an accepted origin."
            if user_allow is not None:
                return user_allow(req)
            return True

        opts["allow_request"] = allow_request
        return opts

    # -- registration ------------------------------------------------------------------------
    def on(self, event: str, handler: Callable[..., Any] | None = None,
           namespace: str | None = None) -> Any:
        """Register ``handler`` for ``event`` in ``namespace`` (``"*"``: every event / every
        namespace); a decorator without ``handler``."""
        ns = namespace or "/"

        def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
            registry = self.handlers.get(ns)
            if registry is None:
                registry = self.handlers[ns] = self._new_registry()
            registry[event] = fn
            self._ensure_namespace(ns)
            return fn

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """``@sio.event`` or ``@sio.event(namespace=...)``: the function's name is the event."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            fn = args[0]
            self.on(fn.__name__)(fn)
            return fn

        def set_handler(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.on(fn.__name__, *args, **kwargs)(fn)
            return fn

        return set_handler

    # -- the registries (python-socketio's attributes, watched) -------------------------------
    @property
    def handlers(self) -> dict[str, dict[str, Callable[..., Any]]]:
        """python-socketio's ``handlers``: namespace -> event -> handler."""
        return self._registry

    @handlers.setter
    def handlers(self, value: dict[str, dict[str, Callable[..., Any]]]) -> None:
        self._registry = value
        self._handlers_changed()

    @property
    def namespace_handlers(self) -> dict[str, AsyncNamespace]:
        """python-socketio's ``namespace_handlers``: namespace -> class-based namespace."""
        return self._namespace_registry

    @namespace_handlers.setter
    def namespace_handlers(self, value: dict[str, AsyncNamespace]) -> None:
        self._namespace_registry = value
        self._handlers_changed()

    @property
    def async_handlers(self) -> bool:
        """python-socketio's ``async_handlers``, read per event (set at any time)."""
        return self._async_handlers

    @async_handlers.setter
    def async_handlers(self, value: bool) -> None:
        self._async_handlers = value
        self._handlers_changed()

    def _handlers_changed(self) -> None:
        for table in list(self._tables.values()):
            table.forget()

    def _new_registry(self) -> _Watched:
        return _Watched(self._handlers_changed)

    def _cacheable(self, ns: str) -> bool:
        """Whether what ``_resolve`` finds for ``ns`` may be kept: only while every dict it
        reads is watched (a plain dict put into ``sio.handlers`` can change unseen)."""
        handlers = self._registry
        if type(handlers) is not _Watched or type(self._namespace_registry) is not _Watched:
            return False
        for key in (ns, "*"):
            inner = handlers.get(key)
            if inner is not None and type(inner) is not _Watched:
                return False
        return True

    def register_namespace(self, namespace_handler: AsyncNamespace) -> None:
        """Register a class-based namespace (an :class:`AsyncNamespace` instance)."""
        if not isinstance(namespace_handler, AsyncNamespace):
            raise ValueError("Not a namespace instance")
        namespace_handler._set_server(self)
        self.namespace_handlers[namespace_handler.namespace] = namespace_handler
        self._ensure_namespace(namespace_handler.namespace)

    def _ensure_namespace(self, ns: str) -> None:
        if ns != "*" and ns not in self._attached:
            self._attach(self.io.of(ns))

    def _attach(self, nsp: Namespace) -> None:
        self._attached.add(nsp.name)
        nsp._handlers = self._table(nsp)
        if nsp.name == "/":
            self.io._handlers = nsp._handlers
        nsp.use(self._connect_middleware)

    def _table(self, nsp: Namespace) -> _Handlers:
        table = _Handlers(self, nsp)
        self._tables[nsp.name] = table
        return table

    def _on_new_namespace(self, nsp: Namespace) -> None:
        # A namespace created on demand (namespaces="*"): it gets its own table, which knows
        # its name (children of a dynamic namespace otherwise share their parent's). Other
        # namespaces (the Admin UI's, native ones) keep their native handlers.
        if nsp.parent is not None and nsp.name not in self._attached:
            self._attached.add(nsp.name)
            nsp._handlers = self._table(nsp)

    def _resolve(self, event: str, ns: str) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        """python-socketio's handler lookup: ``(handler, leading args)``."""
        handlers = self.handlers.get(ns)
        if handlers is not None:
            fn = handlers.get(event)
            if fn is not None:
                return fn, ()
            if event not in _RESERVED and "*" in handlers:
                return handlers["*"], (event,)
        star = self.handlers.get("*")
        if star is not None:
            fn = star.get(event)
            if fn is not None:
                return fn, (ns,)
            if event not in _RESERVED and "*" in star:
                return star["*"], (event, ns)
        # A class-based namespace: its bound trigger_event, which compares equal from one
        # lookup to the next (so _Handlers keeps its runner).
        handler = self.namespace_handlers.get(ns)
        if handler is not None:
            return handler.trigger_event, (event,)
        handler = self.namespace_handlers.get("*")
        if handler is not None:
            return handler.trigger_event, (event, ns)
        return None

    # -- dispatch ----------------------------------------------------------------------------
    async def _trigger(self, event: str, ns: str, *args: Any) -> Any:
        found = self._resolve(event, ns)
        if found is None:
            return None
        fn, lead = found
        result = call_handler(fn, event, (*lead, *args))
        if inspect.isawaitable(result):
            result = await result
        return result

    def _runner(self, event: str, fn: Callable[..., Any],
                lead: tuple[Any, ...]) -> Callable[..., Any]:
        """What the native namespace calls for ``event``: ``fn(*lead, sid, *args)``, or, with
        ``async_handlers=False`` (read per event, as python-socketio does), that call queued
        behind the client's earlier events."""
        if lead or event in _OPTIONAL_LAST:
            # Catch-all handlers and class-based namespaces (leading args), and the events
            # whose handlers may take one argument fewer (never sent by clients: reserved).
            def run(sid: str, *args: Any) -> Any:
                if not self.async_handlers:
                    return self._in_order(sid, fn, event, (*lead, sid, *args))
                return call_handler(fn, event, (*lead, sid, *args))
        else:
            def run(sid: str, *args: Any) -> Any:
                if not self.async_handlers:
                    return self._in_order(sid, fn, event, (sid, *args))
                return fn(sid, *args)

        # The handler's name in the native server's "error in handler ..." log lines.
        run.__name__ = run.__qualname__ = getattr(fn, "__name__", None) or repr(fn)
        return run

    async def _in_order(self, sid: str, fn: Callable[..., Any], event: str,
                        args: tuple[Any, ...]) -> Any:
        """``async_handlers=False``: one client's events are handled one at a time, in order."""
        previous = self._order.get(sid)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._order[sid] = mine
        try:
            if previous is not None:
                await asyncio.shield(previous)
            result = call_handler(fn, event, args)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            mine.set_result(None)
            if self._order.get(sid) is mine:
                del self._order[sid]

    def _connect_middleware(self, sock: Socket) -> Awaitable[None] | None:
        if self.always_connect:
            return None  # the connect handler runs once the client has its CONNECT reply
        if self._resolve("connect", sock.nsp.name) is None:
            # No connect handler: accepted as python-socketio does, here and now. Its environ
            # is made when asked for (_environ_of), from the handshake request it keeps.
            return None
        return self._connect_handler(sock)

    async def _connect_handler(self, sock: Socket) -> None:
        sid = sock.id
        self._pending[sid] = sock
        try:
            refusal = await self._call_connect(sock)
        finally:
            self._pending.pop(sid, None)
        if refusal is not None or sock.client.conn.closed:
            # Refused, or gone while its handler ran (the native side then drops it without a
            # disconnect event): nothing of it is kept.
            self.environ.pop(sid, None)
        if refusal is not None:
            raise ConnectionRefused(refusal.get("message", exceptions.DEFAULT_REFUSAL),
                                    refusal.get("data"))

    async def _call_connect(self, sock: Socket) -> dict[str, Any] | None:
        """Run the ``connect`` handler: ``None`` when it accepts, else the refusal's payload."""
        auth = sock.handshake.auth or None
        try:
            result = await self._trigger("connect", sock.nsp.name, sock.id,
                                         self._environ_of(sock), auth)
        except exceptions.ConnectionRefusedError as exc:
            return exc.error_args
        except Exception as exc:
            error_args = getattr(exc, "error_args", None)
            if isinstance(error_args, dict):  # python-socketio's own exception class
                return error_args
            if isinstance(exc, ConnectionRefusedError):
                return {"message": "Connection refused by server"}
            # Never the exception's text: it goes to the client.
            self.logger.exception("error in the connect handler; connection refused")
            return {"message": exceptions.DEFAULT_REFUSAL}
        if result is False:
            return {"message": exceptions.DEFAULT_REFUSAL}
        return None

    def _on_connection(self, sock: Socket) -> Any:
        if self.always_connect:
            return self._connect_after(sock)
        return None

    async def _connect_after(self, sock: Socket) -> None:
        refusal = await self._call_connect(sock)
        if refusal is not None and sock.connected:
            self._refused.add(sock.id)
            sock.disconnect()

    def _on_disconnecting(self, sock: Socket, reason: str) -> Any:
        sid = sock.id
        if sid in self._refused:
            self._refused.discard(sid)
            self.environ.pop(sid, None)
            return None
        if self._resolve("disconnect", sock.nsp.name) is None:
            self.environ.pop(sid, None)  # no disconnect handler: nothing to keep for it
            return None
        # Its rooms as they were: the handler runs once the native socket has left them.
        self._leaving[sid] = (sock, sock.rooms)
        return self._disconnect_handler(sock, _REASONS.get(reason, reason))

    async def _disconnect_handler(self, sock: Socket, reason: str) -> None:
        sid = sock.id
        try:
            await self._trigger("disconnect", sock.nsp.name, sid, reason)
        finally:
            leaving = self._leaving.get(sid)
            if leaving is not None and leaving[0] is sock:
                del self._leaving[sid]
            self.environ.pop(sid, None)

    # -- lookups -----------------------------------------------------------------------------
    def _find(self, sid: str, namespace: str | None) -> Socket | None:
        ns = namespace or "/"
        nsp = self.io._nsps.get(ns)
        sock = nsp.sockets.get(sid) if nsp is not None else None
        if sock is None:
            sock = self._pending.get(sid)
            if sock is None:
                leaving = self._leaving.get(sid)
                sock = leaving[0] if leaving is not None else None
            if sock is not None and sock.nsp.name != ns:
                sock = None
        return sock

    def _require(self, sid: str, namespace: str | None) -> Socket:
        sock = self._find(sid, namespace)
        if sock is None:
            raise KeyError(f"session {sid!r} is not connected to {namespace or '/'}")
        return sock

    # -- emitting ----------------------------------------------------------------------------
    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None,
                   skip_sid: Any = None, namespace: str | None = None,
                   callback: Callable[..., Any] | None = None, ignore_queue: bool = False,
                   **kwargs: Any) -> None:
        """Emit ``event`` to one client (``to=sid``), a room, a list of rooms, or everyone in the
        namespace; ``callback(*args)`` gets each addressed client's ack."""
        ns = namespace or "/"
        target = to if to is not None else room
        args = _as_args(data)
        skip = [] if skip_sid is None else _rooms_of(skip_sid)
        nsp = self.io._nsps.get(ns)
        if nsp is None:
            return
        if target is not None and not isinstance(target, (list, tuple, set, frozenset)):
            pending = self._pending.get(target) if isinstance(target, str) else None
            if pending is not None and pending.nsp is nsp:
                # Emitted from its connect handler: it goes out before the CONNECT reply, as
                # with python-socketio (the clients hand it out once connected).
                if target not in skip:
                    pending.emit(event, *args, callback=callback)
                return
        if callback is None:
            op = nsp._operator()
            if target is not None:
                op = op.to(_rooms_of(target))
            if skip:
                op = op.except_(skip)
            op.emit(event, *args)
            return
        rooms = frozenset(_rooms_of(target)) if target is not None else frozenset()
        for sid in nsp.adapter.index.targets(rooms, frozenset(skip)):
            sock = nsp.sockets.get(sid)
            if sock is not None:
                sock.emit(event, *args, callback=callback)

    async def send(self, data: Any, to: Any = None, room: Any = None, skip_sid: Any = None,
                   namespace: str | None = None, callback: Callable[..., Any] | None = None,
                   ignore_queue: bool = False, **kwargs: Any) -> None:
        """Emit a ``message`` event."""
        await self.emit("message", data, to=to, room=room, skip_sid=skip_sid,
                        namespace=namespace, callback=callback)

    async def call(self, event: str, data: Any = None, to: Any = None, sid: Any = None,
                   namespace: str | None = None, timeout: float | None = 60,
                   ignore_queue: bool = False, **kwargs: Any) -> Any:
        """Emit to one client and wait for its ack; :class:`exceptions.TimeoutError` after
        ``timeout`` seconds."""
        target = to if to is not None else sid
        if target is None:
            raise ValueError("Cannot use call() to broadcast.")
        if not self.async_handlers:
            raise RuntimeError("Cannot use call() when async_handlers is False.")
        sock = self._find(target, namespace)
        if sock is None:
            # python-socketio waits out the timeout for a client that is not there.
            await asyncio.sleep(timeout or 0)
            raise exceptions.TimeoutError()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*args: Any) -> None:
            if not fut.done():
                fut.set_result(_ack_value(args))

        sock.emit(event, *_as_args(data), callback=on_ack)
        try:
            return await asyncio.wait_for(fut, timeout)
        except (asyncio.TimeoutError, AckTimeout):
            raise exceptions.TimeoutError() from None

    # -- rooms -------------------------------------------------------------------------------
    async def enter_room(self, sid: str, room: Hashable, namespace: str | None = None) -> None:
        """Put client ``sid`` in ``room``."""
        sock = self._find(sid, namespace)
        if sock is None:
            raise ValueError("sid is not connected to requested namespace")
        sock.join(room)

    async def leave_room(self, sid: str, room: Hashable, namespace: str | None = None) -> None:
        """Take client ``sid`` out of ``room``."""
        sock = self._find(sid, namespace)
        if sock is not None:
            sock.leave(room)

    async def close_room(self, room: Hashable, namespace: str | None = None) -> None:
        """Take every client out of ``room``."""
        nsp = self.io._nsps.get(namespace or "/")
        if nsp is not None:
            await nsp.to(room).sockets_leave(room)

    def rooms(self, sid: str, namespace: str | None = None) -> list[Hashable]:
        """The rooms of client ``sid``, its own sid room first."""
        sock = self._find(sid, namespace)
        if sock is None:
            return []
        leaving = self._leaving.get(sid)
        rooms = leaving[1] if leaving is not None and leaving[0] is sock else sock.rooms
        return [sid, *(r for r in rooms if r != sid)] if sid in rooms else list(rooms)

    # -- sessions ----------------------------------------------------------------------------
    async def get_session(self, sid: str, namespace: str | None = None) -> Any:
        """The session of client ``sid`` in ``namespace``: the native ``socket.data`` (kept
        across a connection state recovery)."""
        return self._require(sid, namespace).data

    async def save_session(self, sid: str, session: Any, namespace: str | None = None) -> None:
        """Replace the session of client ``sid``."""
        self._require(sid, namespace).data = session

    def session(self, sid: str, namespace: str | None = None) -> _SessionContext:
        """``async with sio.session(sid) as session:``: changes are kept on exit."""
        return _SessionContext(self, sid, namespace)

    # -- clients -----------------------------------------------------------------------------
    async def disconnect(self, sid: str, namespace: str | None = None,
                         ignore_queue: bool = False, **kwargs: Any) -> None:
        """Disconnect client ``sid`` from ``namespace``; its ``disconnect`` handler gets
        ``'server disconnect'``."""
        sock = self._find(sid, namespace)
        if sock is not None and sock.connected:
            sock.disconnect()

    def transport(self, sid: str, namespace: str | None = None) -> str:
        """``'polling'`` or ``'websocket'``."""
        return self._require(sid, namespace).transport

    def get_environ(self, sid: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The environ dict the client's ``connect`` handler got (the same object), or that
        it would have got."""
        sock = self._find(sid, namespace)
        if sock is None:
            return None
        return self._environ_of(sock)

    def _environ_of(self, sock: Socket) -> dict[str, Any]:
        """The environ of ``sock``, made on first use: for the connect handler, or when asked
        for by ``get_environ``. It comes from the handshake request, which the connection
        keeps, so it is the same whenever it is made; most apps never ask (a connection
        without a connect handler then costs nothing for it), and once made it is kept until
        the client disconnects, so every caller gets the same dict."""
        environ = self.environ.get(sock.id)
        if environ is None:
            environ = self.environ[sock.id] = build_environ(sock)
        return environ

    # -- tasks and lifecycle ------------------------------------------------------------------
    def start_background_task(self, target: Callable[..., Any], *args: Any,
                              **kwargs: Any) -> asyncio.Task[Any]:
        """Run ``target(*args, **kwargs)`` (a coroutine function) as a task."""
        task: asyncio.Task[Any] = asyncio.ensure_future(target(*args, **kwargs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def sleep(self, seconds: float = 0) -> None:
        await asyncio.sleep(seconds)

    async def shutdown(self) -> None:
        """Disconnect every client and stop background activity (the native ``close``)."""
        await self.io.close()

    def instrument(self, auth: Any = None, mode: str = "development", read_only: bool = False,
                   server_id: str | None = None, namespace: str = "/admin",
                   server_stats_interval: float = 2) -> Namespace:
        """Serve the Socket.IO Admin UI (``fastsio.admin``) on ``namespace``.

        ``auth`` as in python-socketio: the login dict the UI must send (``{"username": ...,
        "password": ...}``), a list of them, ``fn(auth) -> bool``, or ``False`` for none; a
        password given as a bcrypt hash is checked with bcrypt as by ``fastsio.admin``. The
        statistics go out every two seconds (``server_stats_interval`` has no effect).
        """
        from fastsio.admin import _BCRYPT_HASH
        from fastsio.admin import instrument as native_instrument

        native_auth: Any = False
        check: Callable[[dict[str, Any]], bool] | None = None
        if (isinstance(auth, dict) and isinstance(auth.get("password"), str)
                and _BCRYPT_HASH.match(auth["password"])):
            native_auth = auth
        elif isinstance(auth, dict):
            check = partial(_same_login, [auth])
        elif isinstance(auth, (list, tuple)):
            check = partial(_same_login, list(auth))
        elif callable(auth):
            check = auth
        elif auth is not False and auth is not None:
            raise ValueError("auth must be a dict, a list of dicts, a callable or False")
        admin: Namespace = native_instrument(
            self.io, auth=native_auth, mode=mode,  # type: ignore[arg-type]
            read_only=read_only, namespace_name=namespace, server_id=server_id)
        if check is not None:
            login = check

            async def authenticate(sock: Socket) -> None:
                result = login(dict(sock.handshake.auth or {}))
                if inspect.isawaitable(result):
                    result = await result
                if not result:
                    raise ConnectionRefused("Authentication error")

            admin.use(authenticate)
        return admin

    def is_asyncio_based(self) -> bool:
        return True

    # -- serving -----------------------------------------------------------------------------
    def attach(self, app: Any, socketio_path: str = "socket.io") -> None:
        """Serve Socket.IO from an ``aiohttp.web.Application`` under ``/socketio_path/``."""
        from fastsio.aiohttp import attach

        self.async_mode = "aiohttp"
        attach(self.io, app, socketio_path=socketio_path)

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """One request from the web framework: an aiohttp request, or ASGI's ``(scope, receive,
        send)``."""
        if len(args) == 3:
            from fastsio.asgi import ASGIApp

            return await ASGIApp(self.io)(*args)
        from fastsio.aiohttp import handle_request

        return await handle_request(self.io, args[0])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Not python-socketio's: serve on fastsio's own front (``start``); returns the port."""
        return await self.io.start(host, port)


def _same_login(expected: list[dict[str, Any]], given: dict[str, Any]) -> bool:
    """python-socketio's Admin UI check: the UI's auth dict equals one of those expected
    (compared in constant time per value)."""
    for login in expected:
        if set(login) == set(given) and all(
            hmac.compare_digest(str(login[k]).encode(), str(given[k]).encode()) for k in login
        ):
            return True
    return False


def _accepts_two(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


class _SessionContext:
    __slots__ = ("_namespace", "_server", "_sid", "session")

    def __init__(self, server: AsyncServer, sid: str, namespace: str | None) -> None:
        self._server = server
        self._sid = sid
        self._namespace = namespace
        self.session: Any = None

    async def __aenter__(self) -> Any:
        self.session = await self._server.get_session(self._sid, self._namespace)
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        await self._server.save_session(self._sid, self.session, self._namespace)

