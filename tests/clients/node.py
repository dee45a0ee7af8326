"""Drive the official JS client (``socket.io-client``) from the tests: :class:`NodeClient`
(``js/client.mjs``) step by step, :class:`NodeScript` for the scripts that run many sockets
or a whole scenario on their own (``js/*.mjs``).

One NodeClient process is one client socket. Steps go to it as JSON lines on stdin; what happens
comes back as JSON lines on stdout (see the header of ``client.mjs``). Binary values travel as
``{"$bin": base64, "$type": ...}`` and are bytes on this side.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.wire import TIMEOUT

REPO = Path(__file__).resolve().parents[2]
JS = Path(__file__).resolve().parent / "js"
CLIENT_JS = JS / "client.mjs"
CLIENT_PACKAGE = REPO / "node_modules" / "socket.io-client" / "package.json"

Message = dict[str, Any]


def require_node() -> str:
    """The ``node`` executable; the test fails (never skips) when the JS side is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "interop tests need Node.js (>= 18) on PATH: install it, then run `npm install` "
            "at the repository root",
            pytrace=False,
        )
    if not CLIENT_PACKAGE.is_file():
        pytest.fail(
            f"interop tests need the socket.io-client npm package ({CLIENT_PACKAGE} is missing): "
            f"run `npm install` in {REPO}",
            pytrace=False,
        )
    return node


def array_buffer(data: bytes) -> dict[str, str]:
    """``data`` sent as an ``ArrayBuffer`` by the JS client (plain bytes become a ``Buffer``)."""
    return {"$bin": base64.b64encode(data).decode(), "$type": "ArrayBuffer"}


def to_js(value: Any) -> Any:
    """A Python value as the driver's JSON: bytes become ``{"$bin": ...}`` (a Buffer)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode(), "$type": "Buffer"}
    if isinstance(value, (list, tuple)):
        return [to_js(v) for v in value]
    if isinstance(value, dict):
        if isinstance(value.get("$bin"), str):
            return value
        return {k: to_js(v) for k, v in value.items()}
    return value


def from_js(value: Any) -> Any:
    """The driver's JSON as Python values: ``{"$bin": ...}`` becomes bytes."""
    if isinstance(value, list):
        return [from_js(v) for v in value]
    if isinstance(value, dict):
        if isinstance(value.get("$bin"), str):
            return base64.b64decode(value["$bin"])
        return {k: from_js(v) for k, v in value.items()}
    return value


def binary_types(value: Any) -> list[str]:
    """The JS types (``Buffer``, ``ArrayBuffer``, ...) of the binary values in a raw message."""
    if isinstance(value, list):
        return [t for v in value for t in binary_types(v)]
    if isinstance(value, dict):
        if isinstance(value.get("$bin"), str):
            return [value.get("$type", "?")]
        return [t for v in value.values() for t in binary_types(v)]
    return []


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, client: NodeClient) -> None:
        self.client = client

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if fd == 1:
            self.client._feed(raw)
        else:
            self.client._stderr += raw

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.client._eof = True
            self.client._changed.set()

    def process_exited(self) -> None:
        self.client._exited.set()


class NodeClient:
    """One ``socket.io-client`` socket in a Node process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.messages: list[Message] = []
        self._consumed: set[int] = set()
        self._buf = b""
        self._stderr = b""
        self._eof = False
        self._changed = asyncio.Event()
        self._exited = asyncio.Event()
        self._refs = itertools.count()
        self._transport: asyncio.SubprocessTransport | None = None

    @classmethod
    async def start(
        cls,
        url: str,
        namespace: str = "/",
        *,
        acks: dict[str, Any] | None = None,
        steps: list[dict[str, Any]] | None = None,
        **opts: Any,
    ) -> NodeClient:
        """Start a client for ``url + namespace``; ``opts`` go to ``io()`` (transports, auth...);
        ``acks`` says how it answers server emits that want an ack (args, or ``"echo"``)."""
        node = require_node()
        config = {
            "url": url,
            "namespace": namespace,
            "opts": opts,
            "acks": {k: v if v == "echo" else to_js(v) for k, v in (acks or {}).items()},
            "steps": steps or [],
        }
        client = cls(config)
        loop = asyncio.get_running_loop()
        env = {**os.environ, "NODE_NO_WARNINGS": "1"}
        transport, _ = await loop.subprocess_exec(
            lambda: _Protocol(client),
            node,
            str(CLIENT_JS),
            json.dumps(config),
            cwd=str(REPO),
            env=env,
        )
        client._transport = transport
        await client.next("ready")
        return client

    # -- reading -----------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.strip():
                self.messages.append(json.loads(line))
        self._changed.set()

    def describe(self) -> str:
        seen = "\n  ".join(json.dumps(m)[:300] for m in self.messages) or "(nothing)"
        err = self._stderr.decode(errors="replace").strip() or "(empty)"
        return f"messages so far:\n  {seen}\nnode stderr:\n{err}"

    async def next(
        self,
        type_: str,
        event: str | None = None,
        *,
        where: Callable[[Message], bool] | None = None,
        timeout: float = TIMEOUT,
    ) -> Message:
        """The first message of ``type_`` (and ``event``) not returned before; waits for it."""

        def match(m: Message) -> bool:
            return (
                m.get("type") == type_
                and (event is None or m.get("event") == event)
                and (where is None or where(m))
            )

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if i not in self._consumed and match(m):
                    self._consumed.add(i)
                    return m
            what = f"{type_!r}" + (f" event {event!r}" if event else "")
            if self.messages and self.messages[-1].get("type") == "error":
                raise AssertionError(f"the JS driver failed waiting for {what}\n{self.describe()}")
            if self._eof:
                raise AssertionError(f"node exited before {what}\n{self.describe()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {what} from the JS client in {timeout}s\n"
                                     + self.describe())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def events(self, name: str) -> list[list[Any]]:
        """The decoded args of every ``name`` event received so far."""
        return [
            from_js(m["args"]) for m in self.messages
            if m.get("type") == "event" and m.get("event") == name
        ]

    async def event(self, name: str, timeout: float = TIMEOUT) -> list[Any]:
        """The decoded args of the next ``name`` event."""
        return from_js((await self.next("event", name, timeout=timeout))["args"])  # type: ignore[no-any-return]

    async def connected(self, timeout: float = TIMEOUT) -> Message:
        """The next ``connect``: ``{"id": socket.id, "transport": engine transport name}``."""
        return await self.next("connect", timeout=timeout)

    async def connect_error(self, timeout: float = TIMEOUT) -> Message:
        """The next ``connect_error``: ``{"message": ..., "data": ...}``."""
        return await self.next("connect_error", timeout=timeout)

    async def disconnected(self, timeout: float = TIMEOUT) -> str:
        """The reason of the next ``disconnect``."""
        return (await self.next("disconnect", timeout=timeout))["reason"]  # type: ignore[no-any-return]

    # -- acting ------------------------------------------------------------------------------
    def send(self, step: dict[str, Any]) -> None:
        """Queue one step (``op`` ...) in the driver."""
        assert self._transport is not None
        stdin = self._transport.get_pipe_transport(0)
        assert stdin is not None
        stdin.write(json.dumps(step).encode() + b"\n")

    def emit(self, event: str, *args: Any) -> None:
        self.send({"op": "emit", "event": event, "args": to_js(list(args))})

    async def emit_with_ack(
        self, event: str, *args: Any, timeout: float = TIMEOUT
    ) -> list[Any]:
        """Emit and return the decoded ack arguments (a list: the JS callback's arguments)."""
        return from_js((await self.emit_with_ack_raw(event, *args, timeout=timeout))["args"])  # type: ignore[no-any-return]

    async def emit_with_ack_raw(
        self, event: str, *args: Any, timeout: float = TIMEOUT
    ) -> Message:
        ref = next(self._refs)
        self.send({"op": "emit", "event": event, "args": to_js(list(args)), "ack": True,
                   "ref": ref})
        return await self.next("ack", where=lambda m: m.get("ref") == ref, timeout=timeout)

    async def status(self) -> Message:
        """``{"id", "connected", "engineTransport"}`` as the client sees them now."""
        ref = next(self._refs)
        self.send({"op": "status", "ref": ref})
        return await self.next("status", where=lambda m: m.get("ref") == ref)

    async def disconnect(self) -> str:
        """``socket.disconnect()``; returns the client-side reason."""
        self.send({"op": "disconnect"})
        return await self.disconnected()

    async def close(self) -> None:
        """End the process: EOF on stdin, then a kill if it lingers."""
        transport = self._transport
        if transport is None:
            return
        self._transport = None
        try:
            if transport.get_returncode() is None:
                stdin = transport.get_pipe_transport(0)
                if stdin is not None:
                    stdin.close()
                try:
                    await asyncio.wait_for(self._exited.wait(), 3)
                except asyncio.TimeoutError:
                    transport.kill()
                    await asyncio.wait_for(self._exited.wait(), 3)
        finally:
            transport.close()


class NodeScript:
    """One run of a script of ``js/`` (``socket.io-client`` sockets it drives itself): its
    arguments on the command line, its JSON lines on stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, name: str, *args: str) -> NodeScript:
        proc = await asyncio.create_subprocess_exec(
            require_node(), str(JS / name), *args, cwd=str(REPO),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        return cls(proc, name)

    async def next_line(self, timeout: float = 10.0) -> Any:
        """The next JSON line (the script failed when it ends without one)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, f"{self.name} ended: " + (await self.proc.stderr.read()).decode()
        return json.loads(line)

    async def result(self, timeout: float) -> Any:
        """What the script printed (one JSON document), once it exited with status 0."""
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        assert self.proc.returncode == 0, (self.name, self.proc.returncode, err.decode())
        return json.loads(out)

    async def wait(self, timeout: float = 10.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def close(self) -> None:
        """Kill the script if it still runs."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
