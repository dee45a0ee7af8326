"""python-socketio apps moved to fastsio: the same app (bench/apps/compat_app.py) as
python-socketio on uvicorn, as fastsio.compat on uvicorn, and as fastsio.compat on fastsio's own
front (``fastsio run``, the ASGI app beside it in-process), with the native fastsio app
(bench/apps/fastsio_app.py) for reference. Same load generator and scenarios as bench/run.py.

    .venv/bin/python bench/compat.py [--duration S] [--rounds N]

Prints one table (medians over the rounds) in Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = RESULTS / "loadgen"
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
SERVER_CPU, LOADGEN_CPU = "0", "1"

APP = "bench.apps.compat_app:app"
SERVERS = {
    "pysio-uvicorn": ("python-socketio on uvicorn",
                      [PY, "-m", "uvicorn", APP, "--loop", "uvloop", "--log-level", "warning",
                       "--no-access-log", "--backlog", "1024"], {"COMPAT_IMPL": "python-socketio"}),
    "compat-uvicorn": ("fastsio.compat on uvicorn",
                       [PY, "-m", "uvicorn", APP, "--loop", "uvloop", "--log-level", "warning",
                        "--no-access-log", "--backlog", "1024"], {}),
    "compat-own": ("fastsio.compat, own front", [PY, "-m", "fastsio", "run", APP,
                                                 "--log-level", "warning"], {}),
    "native": ("native fastsio", [PY, str(BENCH / "apps" / "fastsio_app.py")], {}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str) -> tuple[subprocess.Popen[bytes], int]:
    _label, cmd, env = SERVERS[name]
    port = free_port()
    if name == "native":
        args = [*cmd, str(port), "127.0.0.1"]
    else:
        args = [*cmd, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *args], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not listen")


def scenarios(d: str, w: str) -> list[tuple[str, list[str], str]]:
    return [
        ("fan-out N=1000 W=16 (deliveries/s)",
         ["fanout", "--receivers", "1000", "--window", "16", "--duration", d, "--warmup", w,
          "--max-server-rss-mib", "3072"], "deliveries_per_s"),
        ("echo 50 clients (acks/s)",
         ["echo", "--clients", "50", "--duration", d, "--warmup", w], "acks_per_s"),
        ("connect 2,000, 200 in flight (handshakes/s)",
         ["connect", "--conns", "2000", "--concurrency", "200", "--hold", "1"],
         "handshakes_per_s"),
    ]


def run(name: str, args: list[str], metric: str) -> float | None:
    proc, port = start(name)
    try:
        r = subprocess.run(["taskset", "-c", LOADGEN_CPU, str(LOADGEN), *args, "--port",
                            str(port), "--server-pid", str(proc.pid)],
                           capture_output=True, text=True, timeout=300)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            print(f"  {name}: no result: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        out = json.loads(lines[-1])
        if out.get("missing_deliveries"):
            print(f"  {name}: {out['missing_deliveries']} missing deliveries", file=sys.stderr)
        value = out.get(metric)
        return float(value) if value is not None else None
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="3")
    parser.add_argument("--warmup", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    opts = parser.parse_args()
    if not LOADGEN.exists():
        RESULTS.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(LOADGEN),
                        str(BENCH / "loadgen" / "loadgen.c")], check=True)
    rows = []
    for label, args, metric in scenarios(opts.duration, opts.warmup):
        got: dict[str, list[float]] = {name: [] for name in SERVERS}
        for _ in range(opts.rounds):
            for name in SERVERS:
                value = run(name, args, metric)
                if value is not None:
                    got[name].append(value)
                print(f"{label} {name}: {value}", file=sys.stderr)
        rows.append((label, {k: statistics.median(v) if v else None for k, v in got.items()}))
    heads = [SERVERS[name][0] for name in SERVERS]
    print("| scenario | " + " | ".join(heads) + " | compat-uvicorn ÷ pysio | own ÷ native |")
    print("|---" * (len(heads) + 3) + "|")
    for label, med in rows:
        cells = [f"{med[n]:,.0f}" if med[n] is not None else "-" for n in SERVERS]
        p, c, o, n = (med["pysio-uvicorn"], med["compat-uvicorn"], med["compat-own"],
                      med["native"])
        r1 = f"{c / p:.1f}x" if c and p else "-"
        r2 = f"{o / n:.2f}x" if o and n else "-"
        print(f"| {label} | " + " | ".join(cells) + f" | {r1} | {r2} |")


if __name__ == "__main__":
    main()
