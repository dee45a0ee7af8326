"""Cluster fan-out on Redis: two fastsio nodes against two official Node nodes (each with its
Redis streams adapter), and one fastsio node with the Redis adapter against the in-memory one.

    python bench/cluster.py [--rounds 3] [--duration 5] [--receivers 1000]

Each run starts a private ``redis-server`` (free port, no persistence), the server(s) pinned to
CPU 0 and the C load generator (``bench/loadgen/loadgen.c``, ``fanout``) pinned to CPU 1. In the
two-node runs the receivers alternate between the nodes (``--port2``) and the sender is on the
first node, so every broadcast crosses Redis once for half of its receivers. Variants alternate
inside each round. Prints one JSON line per run and a Markdown table (medians over rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SERVER_CPU, LOADGEN_CPU = "0", "1"
VARIANTS = {
    # name: (server kind, nodes, uses Redis)
    "fastsio x2 (redis)": ("fastsio", 2, True),
    "node x2 (redis)": ("node", 2, True),
    "fastsio x1 (redis)": ("fastsio", 1, True),
    "fastsio x1 (in-memory)": ("fastsio", 1, False),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("the cluster bench needs redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def server_cmd(kind: str, port: int, redis_url: str | None) -> list[str]:
    pin = ["taskset", "-c", SERVER_CPU]
    extra = ["--redis", redis_url] if redis_url else []
    if kind == "fastsio":
        return [*pin, PY, str(BENCH / "apps" / "fastsio_app.py"), str(port), "127.0.0.1", *extra]
    return [*pin, "node", str(BENCH / "apps" / "node_app.js"), str(port), "127.0.0.1", *extra]


def build_loadgen(out: Path) -> Path:
    exe = out / "loadgen"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(BENCH / "loadgen" / "loadgen.c"), "-lm"],
                   check=True)
    return exe


def run_one(name: str, args: argparse.Namespace, loadgen: Path, tmp: Path) -> dict[str, Any]:
    kind, nodes, redis = VARIANTS[name]
    rec: dict[str, Any] = {"variant": name}
    redis_proc, url = start_redis(tmp) if redis else (None, None)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NODE_ENV": "production"}
    servers: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port() for _ in range(nodes)]
        for port in ports:
            servers.append(subprocess.Popen(server_cmd(kind, port, url), cwd=ROOT, env=env,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, servers, strict=True):
            wait_port(port, proc)
        time.sleep(0.5)
        cmd = ["taskset", "-c", LOADGEN_CPU, str(loadgen), "fanout", "--port", str(ports[0]),
               "--receivers", str(args.receivers), "--window", "16",
               "--duration", str(args.duration), "--warmup", "2",
               "--server-pid", str(servers[0].pid)]
        if nodes == 2:
            cmd += ["--port2", str(ports[1])]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if lines:
            rec.update(json.loads(lines[-1]))
        else:
            rec["error"] = f"no result (rc {r.returncode}): {r.stderr.strip()[-300:]}"
    finally:
        for proc in servers:
            proc.terminate()
        for proc in servers:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis_proc is not None:
            redis_proc.kill()
            redis_proc.wait()
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--receivers", type=int, default=1000)
    ap.add_argument("--only", action="append", help="run only these variants")
    args = ap.parse_args()
    names = args.only or list(VARIANTS)
    tmp = Path(tempfile.mkdtemp(prefix="fastsio-cluster-bench-"))
    results: list[dict[str, Any]] = []
    try:
        loadgen = build_loadgen(tmp)
        for rnd in range(args.rounds):
            order = names if rnd % 2 == 0 else names[::-1]
            for name in order:
                rec = run_one(name, args, loadgen, tmp)
                rec["round"] = rnd
                print(json.dumps(rec), flush=True)
                results.append(rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| variant | deliveries/s | p50 ms | p99 ms | missing |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        rs = [r for r in results if r["variant"] == name and "error" not in r]
        if not rs:
            print(f"| {name} | error | | | |")
            continue

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(float(r.get(key) or 0) for r in rs)

        missing = max(int(r.get("missing_deliveries") or 0) for r in rs)
        print(f"| {name} | {med('deliveries_per_s'):,.0f} | {med('p50_us') / 1000:.1f} | "
              f"{med('p99_us') / 1000:.1f} | {missing} |")


if __name__ == "__main__":
    main()
