"""The ``fastsio`` command (also ``python -m fastsio``).

``fastsio run module:io [--host H] [--port P] [--workers N] [--redis URL]`` serves the
``fastsio.Server`` named ``io`` in ``module``. One worker (the default) runs it in this process;
more run it in N processes behind one port (:mod:`fastsio.workers`), which share rooms,
broadcasts and sessions through the Redis adapter.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fastsio.adapter import Adapter
from fastsio.server import Server

log = logging.getLogger("fastsio")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class CliError(Exception):
    """A mistake in what the command was asked to do: reported in one line, exit status 1."""


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    if level != "debug":
        # picows logs every WebSocket's connect and close at INFO: a line (and its cost) per
        # connection of a busy server.
        logging.getLogger("fastsio.engine.ws").setLevel(
            max(logging.WARNING, logging.getLevelName(level.upper()))
        )


def load_app(target: str) -> Server:
    """The ``fastsio.Server`` that ``module:attribute`` (``module`` alone: ``module:io``)
    names; the attribute may be dotted. An ``ASGIApp`` or a ``fastsio.compat`` server names
    the server it serves."""
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise CliError(f"{target!r}: expected module:attribute, e.g. app:io")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CliError(f"cannot import {module_name!r}: {exc}") from exc
        raise
    obj: Any = module
    for part in (attr or "io").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr or 'io'!r}") from None
    if not isinstance(obj, Server):
        from fastsio.asgi import ASGIApp, own_front_server

        if isinstance(obj, ASGIApp) or isinstance(getattr(obj, "io", None), Server):
            # An ASGIApp (the app beside it becomes Server(other_asgi_app=...)) or a
            # fastsio.compat server: served on the own front.
            return own_front_server(obj)
        raise CliError(f"{target} is a {type(obj).__name__}, not a fastsio.Server, a "
                       "fastsio.ASGIApp or a fastsio.compat server")
    return obj


def redis_adapter_factory() -> Callable[..., Any]:
    """``fastsio.cluster.redis_streams_adapter``, or a clear error without the redis extra."""
    try:
        from fastsio.cluster import redis_streams_adapter
    except ImportError as exc:
        raise CliError(
            f"--redis needs the redis extra (pip install 'fastsio[redis]'): {exc}"
        ) from exc
    return redis_streams_adapter


def apply_redis(io: Server, url: str) -> None:
    """Share ``io``'s state through the Redis streams adapter at ``url``, unless the
    application gave its server an adapter of its own (other options): that one stays."""
    factory = redis_adapter_factory()
    if io._adapter_factory is not Adapter:
        log.info("--redis: keeping the adapter the application configured")
        return
    io.set_adapter(factory(url))


def check_redis_available() -> None:
    """Fail early (in the parent) when ``--redis`` cannot work in the workers."""
    redis_adapter_factory()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastsio", description="fastsio, a Socket.IO v4 server for Python"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="serve a fastsio.Server",
        description="Serve the fastsio.Server that TARGET names (module:attribute).",
    )
    run.add_argument("target", metavar="TARGET", help="module:attribute, e.g. app:io")
    run.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    run.add_argument("--port", type=int, default=3000, help="port to listen on (3000; 0: any)")
    run.add_argument(
        "--workers", type=int, default=1,
        help="worker processes behind the port (1); more than one needs --redis",
    )
    run.add_argument(
        "--redis", metavar="URL", default=None,
        help="share rooms, broadcasts and sessions through Redis (redis://host:port/db); "
        "a server the application gave an adapter keeps it",
    )
    run.add_argument(
        "--no-shared-state", action="store_true",
        help="allow --workers > 1 without Redis: each worker's clients see only that "
        "worker's rooms and broadcasts",
    )
    run.add_argument(
        "--shutdown-timeout", type=float, default=None, metavar="SECONDS",
        help="graceful close on Ctrl-C/SIGTERM (the server's shutdown_timeout, else 5 s)",
    )
    run.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path to import TARGET (.)"
    )
    run.add_argument("--log-level", default="info",
                     choices=["debug", "info", "warning", "error", "critical"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.shutdown_timeout is not None and args.shutdown_timeout < 0:
        parser.error("--shutdown-timeout must be >= 0")
    if args.workers > 1 and not args.redis and not args.no_shared_state:
        parser.error(
            f"--workers {args.workers} needs --redis URL: the workers share rooms, broadcasts "
            "and sessions through Redis, and without it a broadcast reaches only the clients "
            "of the worker that sends it (pass --no-shared-state if that is what you want)"
        )
    setup_logging(args.log_level)
    app_dir = os.path.abspath(args.app_dir)
    try:
        if args.workers == 1:
            sys.path.insert(0, app_dir)
            io = load_app(args.target)
            if args.redis:
                apply_redis(io, args.redis)
            if args.shutdown_timeout is not None:
                io.shutdown_timeout = args.shutdown_timeout
            elif io.shutdown_timeout is None:
                io.shutdown_timeout = 5.0
            io.run(args.host, args.port, quiet=True)  # the log line says where it listens
            return 0
        from fastsio.workers import MAX_WORKERS, Supervisor, run_supervisor

        if args.workers > MAX_WORKERS:
            parser.error(f"--workers: at most {MAX_WORKERS}")
        if sys.platform != "linux":
            raise CliError("--workers > 1 needs Linux (fd passing over SOCK_SEQPACKET sockets)")
        if args.redis:
            check_redis_available()
        supervisor = Supervisor(
            args.target,
            host=args.host,
            port=args.port,
            workers=args.workers,
            redis=args.redis,
            shutdown_timeout=args.shutdown_timeout,
            app_dir=app_dir,
            log_level=args.log_level,
        )
        try:
            return run_supervisor(supervisor)
        except OSError as exc:
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    except CliError as exc:
        print(f"fastsio: error: {exc}", file=sys.stderr)
        return 1


def console() -> None:
    """The ``fastsio`` console script."""
    sys.exit(main())
