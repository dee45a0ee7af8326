"""The compat tests' servers: the apps under ``apps/`` in their own process (uvicorn, hypercorn,
aiohttp or ``fastsio run``), as a deployment runs them; ``get_server`` starts one on first use
(the ``app_servers`` fixture stops them after the module)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(front: str, app: str, port: int) -> list[str]:
    if front.startswith("uvicorn"):
        loop = "uvloop" if front.endswith("uvloop") else "asyncio"
        return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port",
                str(port), "--loop", loop, "--lifespan", "on", "--log-level", "warning"]
    if front == "hypercorn":
        return [sys.executable, "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}",
                "--log-level", "warning"]
    if front == "fastsio-run":  # the own front, the ASGI app beside it in-process
        return [sys.executable, "-m", "fastsio", "run", app, "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]
    if front == "fastsio-run":  # the own front, the ASGI app beside it in-process
        return [sys.executable, "-m", "fastsio", "run", app, "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]
    if front == "aiohttp":
        return [sys.executable, "-m", "tests.compat.apps.aiohttp_main", str(port)]
    raise ValueError(front)


class AppServer:
    """One app in its own process: ``url`` once it listens."""

    def __init__(self, front: str, app: str, impl: str = "fastsio") -> None:
        self.front = front
        self.app = app
        self.impl = impl
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, COMPAT_IMPL=impl, PYTHONPATH=str(REPO))
        if front == "aiohttp":
            env["COMPAT_MODE"] = "aiohttp"
        self.proc = subprocess.Popen(
            _command(front, app, self.port), cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.front} exited early:\n{self.stop()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{self.front} did not listen within {timeout}s")

    def stop(self) -> str:
        """End the process (SIGTERM: a graceful shutdown, lifespan included); its output."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is None or self.proc.stdout.closed:
            return ""
        out = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        return out


def get_server(servers: dict[tuple[str, str, str], AppServer], front: str, app: str,
               impl: str = "fastsio") -> AppServer:
    key = (front, app, impl)
    if key not in servers:
        servers[key] = AppServer(front, app, impl)
    return servers[key]
