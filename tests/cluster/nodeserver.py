"""Drive the official Node server of the mixed-cluster tests (``js/server.mjs``: socket.io 4.8
on ``@socket.io/redis-streams-adapter``): steps as JSON lines on stdin, what happens as JSON
lines on stdout (see the script's header)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.node import REPO, from_js, require_node, to_js

SERVER_JS = Path(__file__).resolve().parent / "js" / "server.mjs"
ADAPTER_PACKAGE = REPO / "node_modules" / "@socket.io" / "redis-streams-adapter" / "package.json"
TIMEOUT = 8.0

Message = dict[str, Any]


class NodeServer:
    """One official Socket.IO server process on the Redis streams adapter."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()
        self._refs = itertools.count()
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, redis_url: str, **config: Any) -> NodeServer:
        node = require_node()
        if not ADAPTER_PACKAGE.is_file():
            pytest.fail(f"the mixed-cluster tests need @socket.io/redis-streams-adapter "
                        f"({ADAPTER_PACKAGE} is missing): run `npm install` in {REPO}",
                        pytrace=False)
        self = cls()
        self.proc = await asyncio.create_subprocess_exec(
            node, str(SERVER_JS), json.dumps({"redisUrl": redis_url, **config}),
            cwd=str(REPO),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        self._reader = asyncio.ensure_future(self._read())
        assert self.proc.stderr is not None
        self._stderr = asyncio.ensure_future(self.proc.stderr.read())
        ready = await self.next("ready", timeout=15)
        self.port = ready["port"]
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                self._changed.set()
                return
            if line.strip():
                self.messages.append(json.loads(line))
                self._changed.set()

    def describe(self) -> str:
        return "\n  ".join(json.dumps(m)[:300] for m in self.messages[-30:]) or "(nothing)"

    async def next(self, type_: str, *, where: Callable[[Message], bool] | None = None,
                   timeout: float = TIMEOUT) -> Message:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, m in enumerate(self.messages):
                if i not in self._consumed and m.get("type") == type_ and (
                    where is None or where(m)
                ):
                    self._consumed.add(i)
                    return m
            for m in self.messages:
                if m.get("type") == "error":
                    raise AssertionError(f"the Node server failed: {m['message']}")
            if self._reader is not None and self._reader.done():
                err = b""
                if self._stderr is not None and self._stderr.done():
                    err = self._stderr.result()
                raise AssertionError(f"the Node server exited waiting for {type_!r}\n"
                                     f"{self.describe()}\n{err.decode(errors='replace')}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {type_!r} from the Node server in {timeout}s\n"
                                     + self.describe())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def send(self, step: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(step).encode() + b"\n")

    async def call(self, op: str, *, wait: float = TIMEOUT, **step: Any) -> Message:
        """Run one step and return its ``result`` line (binary values as bytes)."""
        ref = next(self._refs)
        if "args" in step:
            step["args"] = to_js(step["args"])
        self.send({"op": op, "ref": ref, **step})
        result = await self.next("result", where=lambda m: m.get("ref") == ref, timeout=wait)
        return from_js(result)  # type: ignore[no-any-return]

    def seen(self, type_: str, **match: Any) -> list[Message]:
        return [from_js(m) for m in self.messages if m.get("type") == type_
                and all(m.get(k) == v for k, v in match.items())]

    async def close(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._stderr is not None:
            await asyncio.gather(self._stderr, return_exceptions=True)
