"""Engine.IO server options that shape HTTP responses: CORS, the session cookie, compression of
polling responses, the response header hooks. Each is checked once, when the server is built,
and applied per response through the one :class:`ResponsePolicy` the server hands its
transports."""

from __future__ import annotations

import ipaddress
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from email.utils import format_datetime, formatdate
from typing import Any, Union
from urllib.parse import quote

from fastsio.engine.http import Headers, Request

log = logging.getLogger("fastsio.engine")

CorsOrigins = Union[None, bool, str, Iterable[str], "re.Pattern[str]", Callable[[str], bool]]

DEFAULT_CORS_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"


def _header_list(value: str | Iterable[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return ",".join(value)


class Cors:
    """The official server's ``cors`` options (its ``cors`` npm module), snake_case.

    ``origins``: ``"*"``, ``True`` (reflect any origin), one origin, a list, a compiled regex
    (full match) or ``fn(origin) -> bool``; ``None`` disables CORS: no header at all, and
    preflights are not answered (as the official server without ``cors``).
    """

    __slots__ = ("allowed_headers", "credentials", "exposed_headers", "max_age", "methods",
                 "origins")

    def __init__(
        self,
        origins: CorsOrigins,
        credentials: bool = False,
        methods: str | Iterable[str] = DEFAULT_CORS_METHODS,
        allowed_headers: str | Iterable[str] | None = None,
        exposed_headers: str | Iterable[str] | None = None,
        max_age: float | None = None,
    ) -> None:
        if origins is False:
            origins = None
        if not (
            origins is None
            or origins is True
            or isinstance(origins, (str, re.Pattern))
            or callable(origins)
        ):
            origins = frozenset(origins)
        self.origins = origins
        self.credentials = credentials
        self.methods = _header_list(methods) or DEFAULT_CORS_METHODS
        self.allowed_headers = _header_list(allowed_headers)
        self.exposed_headers = _header_list(exposed_headers)
        self.max_age = None if max_age is None else str(int(max_age))

    @property
    def enabled(self) -> bool:
        return self.origins is not None

    def origin_allowed(self, origin: str) -> bool:
        allowed = self.origins
        if allowed is None:
            return False
        if allowed is True or allowed == "*":
            return True
        if isinstance(allowed, str):
            return origin == allowed
        if isinstance(allowed, re.Pattern):
            return allowed.fullmatch(origin) is not None
        if callable(allowed):
            return bool(allowed(origin))
        return origin in allowed

    def headers(self, req: Request) -> Headers:
        """The headers of an actual (not preflight) response: none unless the origin is allowed."""
        if self.origins is None:
            return []
        origin = req.headers.get("origin")
        if origin is None or not self.origin_allowed(origin):
            return []
        headers: Headers = []
        if self.origins == "*" and not self.credentials:
            headers.append(("Access-Control-Allow-Origin", "*"))
        else:
            # A browser refuses "*" with credentials: the origin is reflected (and caches told).
            headers.append(("Access-Control-Allow-Origin", origin))
            headers.append(("Vary", "Origin"))
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if self.exposed_headers:
            headers.append(("Access-Control-Expose-Headers", self.exposed_headers))
        return headers

    def preflight_headers(self, req: Request) -> Headers:
        """The answer to an ``OPTIONS`` preflight (204 either way; headers only when allowed)."""
        headers = self.headers(req)
        if not headers:
            return headers
        headers = [h for h in headers if h[0] != "Access-Control-Expose-Headers"]
        headers.append(("Access-Control-Allow-Methods", self.methods))
        vary = [v for k, v in headers if k == "Vary"]
        if self.allowed_headers is not None:
            allowed: str | None = self.allowed_headers
        else:
            # By default the headers the browser asks for are allowed (the cors module's way).
            allowed = req.headers.get("access-control-request-headers")
            vary.append("Access-Control-Request-Headers")
        if allowed:
            headers.append(("Access-Control-Allow-Headers", allowed))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", self.max_age))
        headers = [h for h in headers if h[0] != "Vary"]
        if vary:
            headers.append(("Vary", ", ".join(vary)))
        return headers


# -- the session cookie ------------------------------------------------------------------------
COOKIE_DEFAULTS: dict[str, Any] = {
    "name": "io",
    "path": "/",
    "http_only": True,
    "same_site": "lax",
}
COOKIE_KEYS = frozenset(
    ("name", "path", "http_only", "same_site", "secure", "domain", "max_age", "expires",
     "partitioned", "priority")
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_PRIORITY = {"low": "Low", "medium": "Medium", "high": "High"}


class Cookie:
    """``cookie=True`` or a dict (``name``, ``path``, ``http_only``, ``same_site``, ``secure``,
    ``domain``, ``max_age`` in seconds, ``expires``, ``partitioned``, ``priority``): a cookie
    holding the session id on the handshake response, for sticky load balancing.

    ``secure`` left out: ``Secure`` when the request came over TLS; ``True``/``False`` force it.
    """

    __slots__ = ("_fixed", "_secure", "name")

    def __init__(self, options: bool | dict[str, Any]) -> None:
        opts = dict(COOKIE_DEFAULTS)
        if isinstance(options, dict):
            unknown = set(options) - COOKIE_KEYS
            if unknown:
                raise ValueError(f"unknown cookie options: {sorted(unknown)}")
            opts.update(options)
        elif options is not True:
            raise TypeError("cookie must be True, False or a dict of options")
        name = opts["name"]
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid cookie name {name!r}")
        self.name = name
        attrs: list[str] = []
        if opts.get("max_age") is not None:
            attrs.append(f"Max-Age={int(opts['max_age'])}")
        if opts.get("domain"):
            attrs.append(f"Domain={_attr(opts['domain'])}")
        if opts.get("path"):
            attrs.append(f"Path={_attr(opts['path'])}")
        expires = opts.get("expires")
        if expires is not None:
            if isinstance(expires, datetime):
                value = format_datetime(expires, usegmt=expires.tzinfo is not None)
            elif isinstance(expires, (int, float)):
                value = formatdate(expires, usegmt=True)
            else:
                value = _attr(str(expires))
            attrs.append(f"Expires={value}")
        if opts.get("http_only"):
            attrs.append("HttpOnly")
        self._secure: bool | None = None if opts.get("secure") is None else bool(opts["secure"])
        fixed_tail: list[str] = []
        if opts.get("partitioned"):
            fixed_tail.append("Partitioned")
        priority = opts.get("priority")
        if priority:
            if str(priority).lower() not in _PRIORITY:
                raise ValueError(f"invalid cookie priority {priority!r}")
            fixed_tail.append(f"Priority={_PRIORITY[str(priority).lower()]}")
        same_site = opts.get("same_site")
        if same_site is True:
            fixed_tail.append("SameSite=Strict")
        elif same_site:
            if str(same_site).lower() not in _SAME_SITE:
                raise ValueError(f"invalid cookie same_site {same_site!r}")
            fixed_tail.append(f"SameSite={_SAME_SITE[str(same_site).lower()]}")
        self._fixed = (attrs, fixed_tail)

    def header(self, sid: str, req: Request) -> tuple[str, str]:
        head, tail = self._fixed
        parts = [f"{self.name}={quote(sid, safe='')}", *head]
        if self._secure or (self._secure is None and req.secure):
            parts.append("Secure")
        parts.extend(tail)
        return "Set-Cookie", "; ".join(parts)


def _attr(value: str) -> str:
    if any(c in value for c in ";\r\n") or not value.isprintable():
        raise ValueError(f"invalid cookie attribute value {value!r}")
    return value


# -- compression of polling responses -----------------------------------------------------------
COMPRESSION_KEYS = frozenset(("threshold", "level"))
_CODINGS = ("gzip", "deflate")


class Compression:
    """``http_compression``: ``True`` (responses of 1024 bytes or more), ``False``, or a dict
    ``{"threshold": bytes, "level": 0-9}``. gzip or deflate, following ``Accept-Encoding``."""

    __slots__ = ("level", "threshold")

    def __init__(self, options: bool | dict[str, Any]) -> None:
        opts: dict[str, Any] = {"threshold": 1024, "level": 6}
        if isinstance(options, dict):
            unknown = set(options) - COMPRESSION_KEYS
            if unknown:
                raise ValueError(f"unknown http_compression options: {sorted(unknown)}")
            opts.update(options)
        elif options is not True:
            raise TypeError("http_compression must be True, False or a dict of options")
        self.threshold = int(opts["threshold"])
        self.level = int(opts["level"])
        if not -1 <= self.level <= 9:
            raise ValueError("http_compression level must be between 0 and 9")

    def apply(self, req: Request, body: bytes, headers: Headers) -> bytes:
        """``body``, compressed (and ``Content-Encoding`` added) when large enough and accepted."""
        if len(body) < self.threshold:
            return body
        coding = negotiate_encoding(req.headers.get("accept-encoding"))
        if coding is None:
            return body
        if coding == "gzip":
            c = zlib.compressobj(self.level, zlib.DEFLATED, 31)
            body = c.compress(body) + c.flush()
        else:
            body = zlib.compress(body, self.level)
        headers.append(("Content-Encoding", coding))
        return body


def negotiate_encoding(header: str | None, codings: Sequence[str] = _CODINGS) -> str | None:
    """The content coding for an ``Accept-Encoding`` header among ``codings`` (in the server's
    order of preference), ranked as the ``negotiator`` package does (what the official server
    uses for polling responses and the client bundle alike): the highest q > 0; on a tie an
    exact name over ``*``, then the client's order, then ``codings``' order. ``None``: identity.

    The one negotiation of the project: polling responses (``http_compression``) and the files
    of :mod:`fastsio.static` both go through it.
    """
    if not header:
        return None
    specs: list[tuple[str, float, int]] = []
    for order, part in enumerate(header.split(",")):
        token, _, params = part.partition(";")
        token = token.strip().lower()
        if not token:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        specs.append((token, q, order))
    ranked: list[tuple[float, int, int, int, str]] = []
    for index, coding in enumerate(codings):
        best: tuple[int, float, int] | None = None
        for token, q, order in specs:
            if token == coding:
                spec = (1, q, -order)
            elif token == "*":
                spec = (0, q, -order)
            else:
                continue
            if best is None or spec > best:
                best = spec
        if best is not None and best[1] > 0:
            ranked.append((best[1], best[0], best[2], -index, coding))
    if not ranked:
        return None
    return max(ranked)[4]


# -- the response policy ---------------------------------------------------------------------------
# ``fn(headers, request)``: append ``(name, value)`` pairs to ``headers`` (a list).
HeadersHook = Callable[[Headers, Request], None]


class ResponsePolicy:
    """What the server's options add to its HTTP answers, in one object made once per server
    (:attr:`EngineServer.responses`) and handed to whatever answers: the polling transport, the
    WebSocket hand-over (its ``101``), ASGI's accept, the file server. They call only these
    methods and read nothing else of the server's.

    - :meth:`cors_headers` / :meth:`preflight_headers`: CORS (``cors_*`` options);
    - :meth:`session_headers`: what a successful polling response or ``101`` of a session adds:
      the session cookie and ``initial_headers`` on its handshake, ``headers`` on every one;
    - :meth:`compress`: ``http_compression`` of a polling response's body.
    """

    __slots__ = ("compression", "cookie", "cors", "headers", "initial_headers")

    def __init__(
        self,
        cors: Cors | None = None,
        cookie: Cookie | None = None,
        compression: Compression | None = None,
        initial_headers: HeadersHook | None = None,
        headers: HeadersHook | None = None,
    ) -> None:
        self.cors = cors if cors is not None else Cors(None)
        self.cookie = cookie
        self.compression = compression
        self.initial_headers = initial_headers
        self.headers = headers

    @property
    def cors_enabled(self) -> bool:
        """CORS is configured: preflights are answered (else ``OPTIONS`` is refused)."""
        return self.cors.enabled

    def cors_headers(self, req: Request) -> Headers:
        """The CORS headers of an actual response to ``req``, as a new list (none unless
        configured and the origin is allowed)."""
        return self.cors.headers(req)

    def preflight_headers(self, req: Request) -> Headers:
        """The headers of the ``204`` answering the preflight ``req``."""
        return self.cors.preflight_headers(req)

    def session_headers(self, req: Request, headers: Headers, sid: str) -> None:
        """Append what a successful response of session ``sid`` carries: on its handshake
        (``req`` without a ``sid``) the cookie, then ``initial_headers``; then ``headers``.
        A hook that raises is logged; the response goes out without what it did not add."""
        if not req.query.get("sid"):
            if self.cookie is not None:
                headers.append(self.cookie.header(sid, req))
            if self.initial_headers is not None:
                _call_hook(self.initial_headers, headers, req)
        if self.headers is not None:
            _call_hook(self.headers, headers, req)

    def compress(self, req: Request, body: bytes, headers: Headers) -> bytes:
        """``body``, compressed (and ``Content-Encoding`` added to ``headers``) when
        ``http_compression`` is on, the body large enough and the coding accepted."""
        if self.compression is None:
            return body
        return self.compression.apply(req, body, headers)


def _call_hook(hook: HeadersHook, headers: Headers, req: Request) -> None:
    try:
        hook(headers, req)
    except Exception:
        log.exception("error in a response headers hook")


# -- behind a reverse proxy ---------------------------------------------------------------------
class TrustedProxies:
    """``trusted_proxies``: the peers whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers
    are believed. ``True`` trusts every peer (only when nothing but the proxy can reach the
    port); otherwise addresses or networks (``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"``).

    A request from a trusted peer gets as its address the right-most ``X-Forwarded-For`` entry
    that is not itself a trusted proxy (each proxy appends the address it saw, so the entries
    left of an untrusted one are the client's word only), and ``secure`` from the first
    ``X-Forwarded-Proto`` value (what the client used with the outermost proxy). A request
    from any other peer keeps its TCP address and TLS state, whatever its headers say.
    """

    __slots__ = ("_all", "_networks")

    def __init__(self, spec: bool | str | Iterable[str]) -> None:
        self._all = spec is True
        items = [] if isinstance(spec, bool) else [spec] if isinstance(spec, str) else list(spec)
        try:
            self._networks = tuple(ipaddress.ip_network(s.strip(), strict=False) for s in items)
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from None
        if not self._all and not self._networks:
            raise ValueError("trusted_proxies must be True or name at least one address")

    def trusts(self, address: str) -> bool:
        if self._all:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)  # an IPv4 peer on a dual-stack socket
        if mapped is not None:
            ip = mapped
        return any(ip in net for net in self._networks)

    def apply(self, req: Request) -> None:
        """Rewrite ``req.remote_address`` and ``req.secure`` from the forwarding headers."""
        if not self.trusts(req.remote_address):
            return
        forwarded = req.headers.get("x-forwarded-for")
        if forwarded:
            address = req.remote_address
            for hop in reversed(forwarded.split(",")):
                hop = hop.strip()
                try:
                    ipaddress.ip_address(hop)
                except ValueError:
                    break  # not an address: nothing left of it can be believed either
                address = hop
                if not self.trusts(hop):
                    break
            req.remote_address = address
        proto = req.headers.get("x-forwarded-proto")
        if proto:
            req.secure = proto.split(",", 1)[0].strip().lower() in ("https", "wss")
