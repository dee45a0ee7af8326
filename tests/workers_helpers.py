"""Helpers for the ``fastsio run`` tests (tests/test_workers.py, tests/cluster/test_workers.py):
the command in a subprocess with its log, and what the tests read of its processes (the clients
they use are tests/clients' blocking ones)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP = "tests.workers_app:io"
START_TIMEOUT = 20.0


class Command:
    """``fastsio run`` in a subprocess; its log lines (stderr) are collected as they come."""

    def __init__(
        self, *args: str, entry: list[str] | None = None, own_group: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        cmd = entry or [sys.executable, "-m", "fastsio"]
        self.proc = subprocess.Popen(
            [*cmd, "run", APP, "--host", "127.0.0.1", "--port", "0", *args],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
            # own_group: its own process group, as a terminal's foreground job, for a Ctrl-C
            # (killpg SIGINT). Otherwise it stays in the test run's group (and dies with it).
            start_new_session=own_group,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<eof>")
            self._changed.notify_all()

    def wait_line(
        self, pattern: str, timeout: float = START_TIMEOUT, after: int = 0
    ) -> re.Match[str]:
        """The first log line from index ``after`` on that matches ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    m = rx.search(line)
                    if m:
                        return m
                if "<eof>" in self.lines[after:]:
                    raise AssertionError(f"exited before {pattern!r}:\n" + self.log())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in {timeout}s:\n" + self.log())
                self._changed.wait(left)

    def log(self) -> str:
        return "\n".join(self.lines)

    def started(self, workers: int) -> Command:
        m = self.wait_line(rf"fastsio: {workers} workers listening on http://127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker, from the parent's log."""
        pids: dict[int, int] = {}
        for line in self.lines:
            m = re.search(r"worker (\d+) started \(pid (\d+)\)", line)
            if m:
                pids[int(m.group(1))] = int(m.group(2))
        return pids

    def stop(self, timeout: float = 20.0, ctrl_c: bool = False) -> int:
        """SIGTERM to the parent (a service manager), or SIGINT to the whole process group
        (Ctrl-C in a terminal); the exit status."""
        if self.proc.poll() is None:
            if ctrl_c:
                assert os.getpgid(self.proc.pid) == self.proc.pid, "needs own_group=True"
                os.killpg(self.proc.pid, signal.SIGINT)
            else:
                self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("fastsio run did not stop on SIGTERM:\n" + self.log()) from None
        finally:
            self._reader.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
