"""Several worker processes on one port: ``fastsio run module:io --workers N``.

The parent process owns the listening socket and runs no application code. It reads the request
line of each new connection and passes the connection (its file descriptor over a Unix socket,
``SCM_RIGHTS``, with the bytes read so far) to one worker: the worker named by the session id
for a request of a session, the one with the fewest sessions for a new session (each worker
reports its count twice a second). From then on the worker owns the connection; the parent
never sees its bytes again (no proxying, no copy per request).

Each worker begins its session ids with its tag (one URL-safe character), so the parent routes
with no table and no message from the worker: nothing can race between a handshake response
and the client's next request, and the parent holds no per-session state. A keep-alive
connection may later carry a request for another worker's session (browsers share their
connection pool between tabs): the worker sees the foreign tag when the request's headers are
read, before its body, and hands the connection back to the parent, which routes it again
(:class:`fastsio.engine.http.Router`).

A worker that exits is started again, after a backoff while it keeps dying young. SIGINT and
SIGTERM make the parent stop listening and ask every worker to close (``Server.close`` with
the shutdown timeout); what is still running past that deadline (plus a grace period) is
killed.

Linux only (``SOCK_SEQPACKET`` control sockets: message boundaries, and end-of-file when
either side dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastsio.engine.clientlog import ClientErrors
from fastsio.engine.http import HAND_BACK_MAX, HttpConnection

if TYPE_CHECKING:
    from fastsio.engine.server import EngineServer
    from fastsio.server import Server

log = logging.getLogger("fastsio.workers")
_accept_failures = ClientErrors(log, level=logging.WARNING)

# A worker's tag is the first character of its session ids: its index in this alphabet.
TAGS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MAX_WORKERS = len(TAGS)
_TAG_INDEX = {ord(c): i for i, c in enumerate(TAGS)}
_SID = re.compile(rb"[?&]sid=([A-Za-z0-9_-])")

# What the parent reads of a new connection before routing it: the request line is enough;
# whatever came with it travels along, in one message of the control socket.
FIRST_READ = 16384
# Connections the parent holds while waiting for their request line (slowloris bound).
HEAD_TIMEOUT = 10.0
MAX_PENDING_HEADS = 10_000
# After accept() fails (out of file descriptors), how long the parent waits before trying again.
ACCEPT_PAUSE = 0.1
# Connections queued for a worker whose control socket is full.
MAX_BACKLOG = 4096
# Past the workers' shutdown timeout, how long the parent waits before killing them.
KILL_GRACE = 2.0
DEFAULT_SHUTDOWN_TIMEOUT = 5.0

# Control messages: the first byte says what follows.
_CONN = b"c"  # parent -> worker: a connection (fd) and the bytes read from it
_FINAL = b"f"  # the same, never to be handed back (its session's worker is gone)
_READY = b"r"  # worker -> parent: serving; the payload is its shutdown timeout (JSON)
_BACK = b"h"  # worker -> parent: a connection handed back (fd) with its bytes
_LOAD = b"n"  # worker -> parent: how many Engine.IO sessions it has (decimal)

# How often a worker tells the parent its session count (new sessions go to the least loaded).
LOAD_PERIOD = 0.5

_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 19\r\n\r\nService Unavailable"
)


def sid_worker(data: bytes, end: int = -1) -> int:
    """The worker index the ``sid`` query parameter of ``data[:end]`` names, or -1."""
    m = _SID.search(data, 0, len(data) if end < 0 else end)
    if m is None:
        return -1
    return _TAG_INDEX.get(m.group(1)[0], -1)


def control_socketpair() -> tuple[socket.socket, socket.socket]:
    """The parent's and the worker's ends of a control channel."""
    try:
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except (AttributeError, OSError) as exc:
        raise RuntimeError(
            f"--workers needs Unix SOCK_SEQPACKET sockets with fd passing (Linux): {exc}"
        ) from exc


# -- the worker side -------------------------------------------------------------------------
class _HandedConnection(HttpConnection):
    """A connection the parent accepted: what it read arrives first."""

    __slots__ = ("_first",)

    def __init__(self, server: EngineServer, first: bytes, may_hand_back: bool) -> None:
        super().__init__(server)
        self._first = first
        if not may_hand_back:
            self._router = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        first, self._first = self._first, b""
        if first and self.is_open:
            self.data_received(first)


class WorkerRouter:
    """One worker's end of the control socket (:class:`fastsio.engine.http.Router`)."""

    def __init__(
        self, engine: EngineServer, ctrl: socket.socket, index: int, count: int,
        on_parent_gone: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.ctrl = ctrl
        self.index = index
        self.count = count
        self.tag = TAGS[index]
        self._on_parent_gone = on_parent_gone
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Future[Any]] = set()
        # Handed-back connections waiting for room in the control socket: (dup'ed fd, bytes).
        self._outbox: deque[tuple[int, bytes]] = deque()
        self._reading = False
        self._report: asyncio.TimerHandle | None = None

    def start(self, shutdown_timeout: float) -> None:
        self.engine.router = self
        self._loop.add_reader(self.ctrl.fileno(), self._on_readable)
        self._reading = True
        self.ctrl.setblocking(False)
        self.ctrl.send(_READY + json.dumps(shutdown_timeout).encode())
        self._report = self._loop.call_later(LOAD_PERIOD, self._report_load)

    def _report_load(self) -> None:
        # Every period, changed or not: the parent's estimate between reports counts the
        # connections it routed here, and must come back to the truth.
        with contextlib.suppress(OSError):
            self.ctrl.send(_LOAD + str(len(self.engine.clients)).encode())
        self._report = self._loop.call_later(LOAD_PERIOD, self._report_load)

    def stop(self) -> None:
        """No more connections from the parent (shutdown)."""
        if self._report is not None:
            self._report.cancel()
            self._report = None
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self.ctrl.fileno())

    def close(self) -> None:
        self.stop()
        if self._outbox:
            self._loop.remove_writer(self.ctrl.fileno())
        while self._outbox:
            os.close(self._outbox.popleft()[0])
        self.ctrl.close()

    # -- sids --------------------------------------------------------------------------------
    def make_sid(self, wrapped: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        """The engine's ``sid_generator``: this worker's tag, then 120 random bits (or the
        application's own generator's id)."""
        tag = self.tag
        if wrapped is None:
            return lambda req: tag + secrets.token_urlsafe(15)
        user = wrapped

        def generate(req: Any) -> Any:
            sid = user(req)
            if inspect.isawaitable(sid):
                return _prefixed(tag, sid)
            return tag + str(sid)

        return generate

    # -- Router ------------------------------------------------------------------------------
    def foreign(self, url: bytes) -> bool:
        index = sid_worker(url)
        return 0 <= index < self.count and index != self.index

    def hand_back(self, transport: asyncio.Transport, data: bytes) -> None:
        sock = transport.get_extra_info("socket")
        try:
            fd = sock.fileno()
            if self._outbox:
                raise BlockingIOError
            socket.send_fds(self.ctrl, [_BACK, data], [fd])
        except BlockingIOError:
            # The transport's fd goes with abort() below: keep the connection open with a copy.
            self._outbox.append((os.dup(fd), data))
            if len(self._outbox) == 1:
                self._loop.add_writer(self.ctrl.fileno(), self._flush)
        except OSError as exc:
            log.debug("cannot hand a connection back to the parent: %s", exc)
        transport.abort()

    def _flush(self) -> None:
        while self._outbox:
            fd, data = self._outbox[0]
            try:
                socket.send_fds(self.ctrl, [_BACK, data], [fd])
            except BlockingIOError:
                return
            except OSError as exc:
                log.debug("cannot hand a connection back to the parent: %s", exc)
            self._outbox.popleft()
            os.close(fd)
        self._loop.remove_writer(self.ctrl.fileno())

    # -- connections from the parent ---------------------------------------------------------
    def _on_readable(self) -> None:
        for _ in range(256):
            try:
                data, fds, flags, _addr = socket.recv_fds(self.ctrl, HAND_BACK_MAX + 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds, flags = b"", [], 0
            if not data and not fds:
                self.stop()
                self._on_parent_gone()
                return
            if flags & socket.MSG_CTRUNC:
                # Out of file descriptors: the kernel dropped the connection it carried.
                log.warning("a connection from the parent was lost (file descriptor limit?)")
            for fd in fds[1:]:
                os.close(fd)
            if not fds:
                continue
            kind = data[:1]
            self._adopt(fds[0], data[1:], may_hand_back=kind == _CONN)

    def _adopt(self, fd: int, first: bytes, may_hand_back: bool) -> None:
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return
        if self.engine._closing:
            sock.close()
            return
        sock.setblocking(False)
        engine = self.engine
        task = asyncio.ensure_future(self._loop.connect_accepted_socket(
            lambda: _HandedConnection(engine, first, may_hand_back), sock
        ))
        self._tasks.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a connection from the parent failed: %r", task.exception())


async def _prefixed(tag: str, sid: Awaitable[Any]) -> str:
    return tag + str(await sid)


async def serve_worker(
    io: Server, ctrl: socket.socket, index: int, count: int, shutdown_timeout: float
) -> None:
    """Serve the connections the parent passes on ``ctrl`` until SIGINT/SIGTERM or the
    parent's end of ``ctrl`` goes away, then close ``io`` within ``shutdown_timeout``."""
    from fastsio.server import tune_garbage_collector

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    router = WorkerRouter(io.engine, ctrl, index, count, stop.set)
    io.engine.sid_generator = router.make_sid(io.engine.sid_generator)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # What Server.start() does before listening: a cluster adapter connects (Redis) here.
    for nsp in list(io._nsps.values()):
        init = getattr(nsp.adapter, "init", None)
        if init is not None:
            await init()
    tune_garbage_collector()
    router.start(shutdown_timeout)
    log.info("worker %d (pid %d) serving", index, os.getpid())
    try:
        await stop.wait()
    finally:
        router.stop()
        await io.close(shutdown_timeout)
        router.close()


def worker_main() -> None:
    """The worker process: ``python -c ... '<config json>'`` (started by :class:`Supervisor`)."""
    from fastsio.cli import CliError, apply_redis, load_app, setup_logging
    from fastsio.server import run_loop

    cfg = json.loads(sys.argv[1])
    setup_logging(cfg["log_level"])
    sys.path.insert(0, cfg["app_dir"])
    ctrl = socket.socket(fileno=cfg["fd"])
    try:
        io = load_app(cfg["target"])
        if cfg["redis"]:
            apply_redis(io, cfg["redis"])
    except CliError as exc:
        print(f"fastsio: error: {exc}", file=sys.stderr)
        sys.exit(1)
    timeout = cfg["shutdown_timeout"]
    if timeout is None:
        timeout = io.shutdown_timeout
    if timeout is None:
        timeout = DEFAULT_SHUTDOWN_TIMEOUT
    run_loop(serve_worker(io, ctrl, cfg["index"], cfg["count"], float(timeout)))


_WORKER_CODE = "from fastsio.workers import worker_main; worker_main()"


# -- the parent ------------------------------------------------------------------------------
@dataclass(eq=False)
class _Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    ctrl: socket.socket | None = None
    ready: bool = False
    started_at: float = 0.0
    restarts: int = 0
    # Its sessions: the last count it reported, plus the new connections routed to it since.
    load: int = 0
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    # Connections for this worker while its control socket is full: (kind, socket, bytes).
    backlog: deque[tuple[bytes, socket.socket, bytes]] = field(default_factory=deque)


@dataclass
class _Head:
    sock: socket.socket
    buf: bytes
    deadline: float


class Supervisor:
    """The parent of ``fastsio run --workers N``: listens, routes connections, keeps N
    workers running, and shuts them down."""

    def __init__(
        self,
        target: str,
        *,
        host: str,
        port: int,
        workers: int,
        redis: str | None,
        shutdown_timeout: float | None,
        app_dir: str,
        log_level: str,
    ) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
        self.target = target
        self.host = host
        self.port = port
        self.count = workers
        self.redis = redis
        self.shutdown_timeout = shutdown_timeout
        self.app_dir = app_dir
        self.log_level = log_level
        self.workers = [_Worker(i) for i in range(workers)]
        self._listener: socket.socket | None = None
        self._accepting = False
        self._heads: dict[int, _Head] = {}
        self._next = 0
        self._stopping = False
        self._stop = asyncio.Event()
        self._kill_now = False
        self._exit_code = 0
        self._ever_ready = False
        self._announced = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self.routed = 0  # connections passed to a worker
        self.handed_back = 0  # of which a worker gave back (another worker's session)

    # -- lifecycle ---------------------------------------------------------------------------
    async def serve(self) -> int:
        """Run until SIGINT/SIGTERM (or a worker that cannot start); the exit status."""
        loop = asyncio.get_running_loop()
        self._listen()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        self._sweep = loop.call_later(1.0, self._sweep_heads)
        try:
            for w in self.workers:
                await self._spawn(w)
            await self._stop.wait()
        finally:
            if self._sweep is not None:
                self._sweep.cancel()
            await self._shutdown()
        return self._exit_code

    def _on_signal(self) -> None:
        if self._stopping:
            # A second Ctrl-C: no more waiting.
            self._kill_now = True
            self._kill_all()
        self._stopping = True
        self._stop.set()

    def _listen(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            # Node listens with 511; asyncio's 100 drops SYNs in a reconnect storm.
            sock.listen(1024)
            if hasattr(socket, "TCP_DEFER_ACCEPT"):
                # accept() only once the request has arrived: one wake-up per connection less.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, int(HEAD_TIMEOUT))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._listener = sock
        self.port = sock.getsockname()[1]

    def _start_accepting(self) -> None:
        if not self._accepting and self._listener is not None and not self._stopping:
            self._accepting = True
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_accept)

    async def _spawn(self, w: _Worker) -> None:
        loop = asyncio.get_running_loop()
        parent_end, child_end = control_socketpair()
        cfg = {
            "target": self.target,
            "index": w.index,
            "count": self.count,
            "fd": child_end.fileno(),
            "redis": self.redis,
            "shutdown_timeout": self.shutdown_timeout,
            "app_dir": self.app_dir,
            "log_level": self.log_level,
        }
        try:
            w.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _WORKER_CODE, json.dumps(cfg),
                stdin=asyncio.subprocess.DEVNULL, pass_fds=(child_end.fileno(),),
            )
        finally:
            child_end.close()
        parent_end.setblocking(False)
        w.ctrl = parent_end
        w.ready = False
        w.load = 0
        w.started_at = loop.time()
        loop.add_reader(parent_end.fileno(), self._on_control, w)
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)
        task = asyncio.ensure_future(self._watch(w, w.proc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, w: _Worker, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        loop = asyncio.get_running_loop()
        was_ready = w.ready
        self._drop_control(w)
        if self._stopping:
            return
        how = f"signal {-code}" if code < 0 else f"code {code}"
        if not was_ready and not self._ever_ready:
            log.error("worker %d exited during startup (%s): stopping", w.index, how)
            self._exit_code = 1
            self._stopping = True
            self._stop.set()
            return
        lived = loop.time() - w.started_at
        w.restarts = w.restarts + 1 if lived < 5.0 else 0
        delay = 0.0 if w.restarts == 0 else min(10.0, 0.1 * 2 ** (w.restarts - 1))
        log.warning("worker %d (pid %d) exited (%s); restarting it%s", w.index, proc.pid, how,
                    f" in {delay:.1f} s" if delay else "")
        if delay:
            await asyncio.sleep(delay)
        if not self._stopping:
            await self._spawn(w)

    def _drop_control(self, w: _Worker) -> None:
        """The worker is gone: its control socket closes; what was queued for it goes to the
        others (its sessions are lost, those are new connections or will be told so)."""
        w.ready = False
        ctrl, w.ctrl = w.ctrl, None
        if ctrl is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(ctrl.fileno())
            loop.remove_writer(ctrl.fileno())
            ctrl.close()
        backlog, w.backlog = w.backlog, deque()
        for _kind, sock, data in backlog:
            if self._stopping:
                sock.close()
            else:
                self._route(sock, data, handed_back=True)

    def _kill_all(self) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()

    async def _shutdown(self) -> None:
        self._stopping = True
        loop = asyncio.get_running_loop()
        if self._listener is not None:
            if self._accepting:
                loop.remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for fd, head in list(self._heads.items()):
            loop.remove_reader(fd)
            head.sock.close()
        self._heads.clear()
        procs = [w.proc for w in self.workers if w.proc is not None]
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        timeout = max(w.shutdown_timeout for w in self.workers) + KILL_GRACE
        waits = [asyncio.ensure_future(p.wait()) for p in procs]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=timeout)
            if pending:
                log.warning("%d worker(s) still running after %.1f s: killing them",
                            len(pending), timeout)
                self._kill_all()
                await asyncio.wait(pending)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self.workers:
            self._drop_control(w)
        log.info("fastsio: all workers stopped (%d connections routed, %d of them handed back)",
                 self.routed, self.handed_back)

    # -- control messages --------------------------------------------------------------------
    def _on_control(self, w: _Worker) -> None:
        ctrl = w.ctrl
        if ctrl is None:
            return
        for _ in range(256):
            try:
                data, fds, _flags, _addr = socket.recv_fds(ctrl, HAND_BACK_MAX + 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:
                # The worker is gone; _watch restarts it.
                w.ready = False
                asyncio.get_running_loop().remove_reader(ctrl.fileno())
                return
            kind = data[:1]
            if kind == _BACK and fds:
                self.handed_back += 1
                sock = socket.socket(fileno=fds[0])
                sock.setblocking(False)
                self._route(sock, data[1:], handed_back=True)
                fds = fds[1:]
            elif kind == _LOAD:
                with contextlib.suppress(ValueError):
                    w.load = int(data[1:])
            elif kind == _READY:
                w.ready = True
                with contextlib.suppress(ValueError):
                    w.shutdown_timeout = float(json.loads(data[1:]))
                self._ever_ready = True
                self._start_accepting()
                if not self._announced and all(x.ready for x in self.workers):
                    self._announced = True
                    log.info("fastsio: %d workers listening on http://%s:%d", self.count,
                             self.host, self.port)
            for fd in fds:
                os.close(fd)

    # -- accepting and routing ---------------------------------------------------------------
    def _on_accept(self) -> None:
        listener = self._listener
        if listener is None:
            return
        for _ in range(128):
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # the client gave up before it was accepted: its business
                # EMFILE and friends: the connection stays in the backlog, and the listener
                # readable: pause a moment instead of spinning on it (said once a minute at
                # most: a flood of clients keeps it coming).
                _accept_failures.log("accept failed: %s; pausing accepting (%.1f s at a time)",
                                     exc, ACCEPT_PAUSE)
                loop = asyncio.get_running_loop()
                loop.remove_reader(listener.fileno())
                self._accepting = False
                loop.call_later(ACCEPT_PAUSE, self._start_accepting)
                return
            sock.setblocking(False)
            self._read_head(sock, b"")

    def _read_head(self, sock: socket.socket, buf: bytes) -> None:
        try:
            chunk = sock.recv(FIRST_READ - len(buf))
        except (BlockingIOError, InterruptedError):
            self._wait_head(sock, buf)
            return
        except OSError:
            self._forget_head(sock)
            sock.close()
            return
        if not chunk:
            self._forget_head(sock)
            sock.close()
            return
        buf += chunk
        if b"\n" in buf or len(buf) >= FIRST_READ:
            self._forget_head(sock)
            self._route(sock, buf)
        else:
            self._wait_head(sock, buf)

    def _wait_head(self, sock: socket.socket, buf: bytes) -> None:
        fd = sock.fileno()
        head = self._heads.get(fd)
        if head is not None:
            head.buf = buf
            return
        if len(self._heads) >= MAX_PENDING_HEADS:
            sock.close()
            return
        loop = asyncio.get_running_loop()
        self._heads[fd] = _Head(sock, buf, loop.time() + HEAD_TIMEOUT)
        loop.add_reader(fd, self._on_head_readable, fd)

    def _on_head_readable(self, fd: int) -> None:
        head = self._heads.get(fd)
        if head is not None:
            self._read_head(head.sock, head.buf)

    def _forget_head(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if self._heads.pop(fd, None) is not None:
            asyncio.get_running_loop().remove_reader(fd)

    def _sweep_heads(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for head in list(self._heads.values()):
            if head.deadline <= now:
                self._forget_head(head.sock)
                head.sock.close()
        if not self._stopping:
            self._sweep = loop.call_later(1.0, self._sweep_heads)

    def _pick(self) -> int:
        """For a new session: the ready worker with the fewest sessions (the next in turn among
        equals), or -1."""
        n = self.count
        best = -1
        for step in range(n):
            i = (self._next + step) % n
            w = self.workers[i]
            if w.ready and (best < 0 or w.load < self.workers[best].load):
                best = i
        if best >= 0:
            self._next = best + 1
            self.workers[best].load += 1
        return best

    def _route(self, sock: socket.socket, data: bytes, handed_back: bool = False) -> None:
        nl = data.find(b"\n")
        index = sid_worker(data, nl if nl >= 0 else len(data))
        kind = _CONN
        if not (0 <= index < self.count and self.workers[index].ready):
            if 0 <= index < self.count or handed_back:
                # That session's worker is gone (or restarting): any worker will answer that
                # the session is unknown; it must not hand the connection back again.
                kind = _FINAL
            index = self._pick()
            if index < 0:
                with contextlib.suppress(OSError):
                    sock.send(_503)
                sock.close()
                return
        self._send(self.workers[index], kind, sock, data)

    def _send(self, w: _Worker, kind: bytes, sock: socket.socket, data: bytes) -> None:
        ctrl = w.ctrl
        if ctrl is None:
            sock.close()
            return
        if not w.backlog:
            try:
                socket.send_fds(ctrl, [kind, data], [sock.fileno()])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                log.debug("cannot pass a connection to worker %d: %s", w.index, exc)
                sock.close()
                return
            else:
                self.routed += 1
                sock.close()  # the worker has its own descriptor of it now
                return
        if len(w.backlog) >= MAX_BACKLOG:
            with contextlib.suppress(OSError):
                sock.send(_503)
            sock.close()
            return
        w.backlog.append((kind, sock, data))
        if len(w.backlog) == 1:
            asyncio.get_running_loop().add_writer(ctrl.fileno(), self._flush, w)

    def _flush(self, w: _Worker) -> None:
        ctrl = w.ctrl
        if ctrl is None:
            return
        while w.backlog:
            kind, sock, data = w.backlog[0]
            try:
                socket.send_fds(ctrl, [kind, data], [sock.fileno()])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("cannot pass a connection to worker %d: %s", w.index, exc)
            else:
                self.routed += 1
            w.backlog.popleft()
            sock.close()
        asyncio.get_running_loop().remove_writer(ctrl.fileno())


def run_supervisor(supervisor: Supervisor) -> int:
    """Run the parent on uvloop (where available) until it stops; its exit status."""
    from fastsio.server import run_loop

    result: list[int] = []

    async def main() -> None:
        result.append(await supervisor.serve())

    run_loop(main())
    return result[0] if result else 1


__all__ = [
    "MAX_WORKERS",
    "TAGS",
    "Supervisor",
    "WorkerRouter",
    "run_supervisor",
    "sid_worker",
    "worker_main",
]
