"""What the parent of ``fastsio run --workers N`` costs: the same app served directly, behind the
parent with one worker, and behind it with two.

    .venv/bin/python bench/workers.py [--conns 3000] [--rounds 1000] [--repeat 3]

Every server process (the parent and its workers included) is pinned to CPU 0, the clients to
CPU 1 (``taskset``), so the parent's work shows as lost throughput on the server's core:

- **handshakes/s**: the C load generator (``bench/loadgen``, ``connect`` scenario) opens
  ``--conns`` connections, 100 in flight, each through the WebSocket handshake to the Socket.IO
  ``CONNECT`` reply: every one is a new TCP connection the parent reads and passes on;
- **polling round trip**: one Socket.IO session over long-polling, ``--rounds`` times an
  ``emit`` with an ack (a POST, then the GET that brings the ack back), each request on a new
  TCP connection (``Connection: close``: each goes through the parent), and the same on one
  keep-alive connection per direction (after its first request the parent is out of the path);
- **parent CPU per connection**: the parent's user+system CPU time over the handshake run,
  divided by the connections it routed.

The app is this file's ``io`` (``fastsio run workers:io --app-dir bench``): its ``whoami`` event
acks with the worker's pid. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastsio

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = RESULTS / "loadgen"

io = fastsio.Server()


@io.on("whoami")
def whoami(sock: fastsio.Socket) -> int:
    return os.getpid()


def build_loadgen() -> None:
    RESULTS.mkdir(exist_ok=True)
    src = BENCH / "loadgen" / "loadgen.c"
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= src.stat().st_mtime:
        return
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        sys.exit("bench: gcc is needed to build the load generator")
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(LOADGEN), str(src)], check=True)


MODES = {
    "direct": "one process, no parent (fastsio run, --workers 1)",
    "parent+1": "the parent and one worker",
    "parent+2": "the parent and two workers",
}


def server_cmd(mode: str) -> list[str]:
    pin = ["taskset", "-c", "0"]
    if mode == "direct":
        return [*pin, sys.executable, "-m", "fastsio", "run", "workers:io", "--app-dir",
                str(BENCH), "--host", "127.0.0.1", "--port", "0", "--log-level", "info"]
    n = 1 if mode == "parent+1" else 2
    # One worker behind the parent is not something the command offers (it serves directly):
    # the bench builds that supervisor itself.
    code = (
        "import logging,sys;from fastsio.cli import setup_logging;setup_logging('info');"
        "from fastsio.workers import Supervisor,run_supervisor;"
        f"sys.exit(run_supervisor(Supervisor('workers:io',host='127.0.0.1',port=0,workers={n},"
        f"redis=None,shutdown_timeout=1.0,app_dir={str(BENCH)!r},log_level='info')))"
    )
    return [*pin, sys.executable, "-c", code]


class Server:
    def __init__(self, mode: str) -> None:
        RESULTS.mkdir(exist_ok=True)
        # A file, not a pipe: a log nobody reads must never block the server.
        self.log_path = RESULTS / f"workers-{mode}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(server_cmd(mode), cwd=ROOT, stderr=self.log,
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + self.log_path.read_text())
            time.sleep(0.05)
        self.pid = self.proc.pid
        pids = re.findall(r"worker \d+ started \(pid (\d+)\)", self.log_path.read_text())
        # The processes that serve the clients: the workers, or the server itself.
        self.workers = [int(p) for p in pids] or [self.pid]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handshakes(port: int, conns: int) -> dict[str, Any]:
    r = subprocess.run(
        ["taskset", "-c", "1", str(LOADGEN), "connect", "--port", str(port), "--conns",
         str(conns), "--concurrency", "100", "--hold", "0"],
        capture_output=True, text=True, timeout=120,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


# -- long-polling round trips (raw HTTP on plain sockets) -------------------------------------
EIO = "/socket.io/?EIO=4&transport=polling"


class Http:
    """Requests on one connection (``keep_alive``) or each on a new one."""

    def __init__(self, port: int, keep_alive: bool) -> None:
        self.port = port
        self.keep_alive = keep_alive
        self.sock: socket.socket | None = None
        self.buf = b""

    def request(self, method: str, target: str, body: bytes = b"") -> bytes:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        conn = "keep-alive" if self.keep_alive else "close"
        head = (f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: {conn}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head_b, _, self.buf = self.buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head_b).group(1))  # type: ignore[union-attr]
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:length], self.buf[length:]
        if not self.keep_alive:
            self.sock.close()
            self.sock = None
        return data


def polling_round_trips(port: int, rounds: int, keep_alive: bool) -> list[float]:
    get, post = Http(port, keep_alive), Http(port, keep_alive)
    sid = json.loads(get.request("GET", EIO)[1:])["sid"]
    url = f"{EIO}&sid={sid}"
    post.request("POST", url, b"40")
    get.request("GET", url)
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        assert post.request("POST", url, f'42{i}["whoami"]'.encode()) == b"ok"
        body = get.request("GET", url)
        while f"43{i}[".encode() not in body:
            body = get.request("GET", url)
        times.append(time.perf_counter() - t0)
    return times


def run_polling(port: int, rounds: int, keep_alive: bool) -> list[float]:
    """The polling client in its own process, pinned to CPU 1 like the load generator."""
    r = subprocess.run(
        ["taskset", "-c", "1", sys.executable, __file__, "--polling-client", str(port),
         str(rounds), "1" if keep_alive else "0"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    out: list[float] = json.loads(r.stdout)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--polling-client":
        port, rounds, ka = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
        print(json.dumps(polling_round_trips(port, rounds, ka)))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    build_loadgen()
    results: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    for rep in range(args.repeat):
        for mode in MODES:
            srv = Server(mode)
            try:
                time.sleep(0.5)
                parent0 = cpu_s(srv.pid)
                workers0 = sum(cpu_s(p) for p in srv.workers)
                hs = handshakes(srv.port, args.conns)
                parent_cpu = cpu_s(srv.pid) - parent0
                workers_cpu = sum(cpu_s(p) for p in srv.workers) - workers0
                rt_new = run_polling(srv.port, args.rounds, keep_alive=False)
                rt_ka = run_polling(srv.port, args.rounds, keep_alive=True)
            finally:
                srv.stop()
            r = results[mode]
            r.setdefault("handshakes_per_s", []).append(hs["handshakes_per_s"])
            r.setdefault("hs_p99_us", []).append(hs["hs_p99_us"])
            r.setdefault("new_conn_rt_p50_us", []).append(pct(rt_new, 0.5) * 1e6)
            r.setdefault("new_conn_rt_p99_us", []).append(pct(rt_new, 0.99) * 1e6)
            r.setdefault("keep_alive_rt_p50_us", []).append(pct(rt_ka, 0.5) * 1e6)
            # The load generator's warm-up handshakes (200) count too.
            conns = args.conns + 200
            r.setdefault("worker_cpu_us_per_conn", []).append(workers_cpu / conns * 1e6)
            if mode != "direct":
                r.setdefault("parent_cpu_us_per_conn", []).append(parent_cpu / conns * 1e6)
            print(f"round {rep + 1} {mode}: {hs['handshakes_per_s']:.0f} handshakes/s, "
                  f"polling round trip p50 {pct(rt_new, 0.5) * 1e6:.0f} us (new connections), "
                  f"{pct(rt_ka, 0.5) * 1e6:.0f} us (keep-alive)", file=sys.stderr)
    rows = [
        ("handshakes/s (WebSocket, new connection each)", "handshakes_per_s", "{:.0f}"),
        ("handshake p99 (µs)", "hs_p99_us", "{:.0f}"),
        ("polling round trip p50, new connection per request (µs)", "new_conn_rt_p50_us",
         "{:.0f}"),
        ("polling round trip p99, new connection per request (µs)", "new_conn_rt_p99_us",
         "{:.0f}"),
        ("polling round trip p50, keep-alive (µs)", "keep_alive_rt_p50_us", "{:.0f}"),
        ("server (or workers) CPU per handshake (µs)", "worker_cpu_us_per_conn", "{:.0f}"),
        ("parent CPU per routed connection (µs)", "parent_cpu_us_per_conn", "{:.1f}"),
    ]
    print(f"| median of {args.repeat} rounds | {' | '.join(MODES)} |")
    print("|---|" + "---|" * len(MODES))
    for label, key, fmt in rows:
        cells = []
        for mode in MODES:
            vs = results[mode].get(key)
            cells.append(fmt.format(statistics.median(vs)) if vs else "-")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
