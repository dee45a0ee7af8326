"""python-socketio apps moved to fastsio: the same app (bench/apps/compat_app.py) as
python-socketio on uvicorn, as fastsio.compat on uvicorn, and as fastsio.compat on fastsio's own
front (``fastsio run``, the ASGI app beside it in-process), with the native fastsio app
(bench/apps/fastsio_app.py) for reference. Same load generator and scenarios as bench/run.py.

    .venv/bin/python bench/compat.py [--duration S] [--rounds N] [--servers a,b] [--scenarios x,y]

Servers alternate inside every round (and the order flips every other round, so a drift in the
machine's load falls on all of them alike). Each run records the load generator's numbers: the
rate, the server's and the load generator's CPU % over the measured window (the load generator
is not the bottleneck while it stays well under 100 %), and the 1-minute load average. Prints, in
Markdown: the medians (min-max) of the rates, the medians (min-max) of the rates per server
CPU-second (rate ÷ server CPU share: the number least moved by other tenants of a shared
machine), and the ratios compat-uvicorn ÷ python-socketio and own front ÷ native, each as the
ratio of the medians with every round's own ratio. Raw results go to bench/results/compat-*.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run import LOADGEN_CPU, SERVER_CPU, free_port, wait_quiet  # bench/run.py, beside this file

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOADGEN = RESULTS / "loadgen"
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
DASH, TIMES = "\u2013", "\u00d7"

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
# (numerator, denominator, column title)
RATIOS = (("compat-uvicorn", "pysio-uvicorn", "compat on uvicorn ÷ python-socketio"),
          ("compat-own", "native", "own front ÷ native"))


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


SCENARIOS = ("fanout", "echo", "connect")


def build_loadgen() -> None:
    """The C load generator, built when missing or older than its source (bench/run.py builds
    the same binary on every run)."""
    src = BENCH / "loadgen" / "loadgen.c"
    if not LOADGEN.exists() or LOADGEN.stat().st_mtime < src.stat().st_mtime:
        RESULTS.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(LOADGEN),
                        str(src)], check=True)


def scenarios(d: str, w: str, conns: int) -> list[tuple[str, str, list[str], str]]:
    return [
        ("fanout", "fan-out N=1000 W=16 (deliveries/s)",
         ["fanout", "--receivers", "1000", "--window", "16", "--duration", d, "--warmup", w,
          "--max-server-rss-mib", "3072"], "deliveries_per_s"),
        ("echo", "echo 50 clients (acks/s)",
         ["echo", "--clients", "50", "--duration", d, "--warmup", w], "acks_per_s"),
        ("connect", f"connect {conns:,}, 200 in flight (handshakes/s)",
         ["connect", "--conns", str(conns), "--concurrency", "200", "--hold", "1"],
         "handshakes_per_s"),
    ]


def run(name: str, args: list[str], metric: str) -> dict[str, Any]:
    """One measurement on a fresh server: the load generator's JSON plus ``value``."""
    proc, port = start(name)
    rec: dict[str, Any] = {"server": name, "loadavg_1m": os.getloadavg()[0]}
    try:
        r = subprocess.run(["taskset", "-c", LOADGEN_CPU, str(LOADGEN), *args, "--port",
                            str(port), "--server-pid", str(proc.pid), "--server-core",
                            SERVER_CPU, "--loadgen-core", LOADGEN_CPU],
                           capture_output=True, text=True, timeout=300)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            rec["error"] = f"no result: {r.stderr.strip()[-300:]}"
            return rec
        rec.update(json.loads(lines[-1]))
        if rec.get("missing_deliveries"):
            print(f"  {name}: {rec['missing_deliveries']} missing deliveries", file=sys.stderr)
        value = rec.get(metric)
        rec["value"] = float(value) if value is not None else None
        cpu = rec.get("server_cpu_pct")
        if rec["value"] is not None and isinstance(cpu, (int, float)) and cpu > 5:
            rec["per_cpu_s"] = rec["value"] / (cpu / 100.0)
        return rec
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cell(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:,.0f}"
    return f"{statistics.median(vals):,.0f} ({min(vals):,.0f}{DASH}{max(vals):,.0f})"


def pct(vals: list[float]) -> str:
    if not vals:
        return "-"
    return f"{statistics.median(vals):.0f} ({min(vals):.0f}{DASH}{max(vals):.0f})"


def ratio_cell(rounds: list[dict[str, dict[str, Any]]], a: str, b: str, key: str) -> str:
    """The ratio of the medians, then each round's own ratio (rounds where both ran) and the
    median of those."""
    va = [r[a][key] for r in rounds if a in r and r[a].get(key)]
    vb = [r[b][key] for r in rounds if b in r and r[b].get(key)]
    if not va or not vb:
        return "-"
    each = [r[a][key] / r[b][key] for r in rounds
            if a in r and b in r and r[a].get(key) and r[b].get(key)]
    med = statistics.median(va) / statistics.median(vb)
    digits = 2 if med < 10 else 1
    inner = ", ".join(f"{x:.2f}" for x in each)
    return f"{med:.{digits}f}{TIMES} (rounds {inner}; their median {statistics.median(each):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="3")
    parser.add_argument("--warmup", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated, from: " + ", ".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated, from: " + ", ".join(SCENARIOS))
    parser.add_argument("--conns", type=int, default=2000,
                        help="connections of the connect scenario (more: a longer window, so "
                        "a steadier server CPU reading; the soft RLIMIT_NOFILE is raised)")
    parser.add_argument("--quiet-wait", type=float, default=5.0,
                        help="before each run, wait up to this many seconds for both CPUs to "
                        "be nearly idle")
    opts = parser.parse_args()
    servers = [s for s in opts.servers.split(",") if s]
    wanted = [s for s in opts.scenarios.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            parser.error(f"unknown server {s!r}")
    for s in wanted:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}")
    build_loadgen()
    began = dt.datetime.now(dt.timezone.utc)
    loads = [os.getloadavg()[0]]
    table: list[tuple[str, list[dict[str, dict[str, Any]]]]] = []
    raw: list[dict[str, Any]] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # both ends hold every connection of the connect scenario
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for key, label, args, metric in scenarios(opts.duration, opts.warmup, opts.conns):
        if key not in wanted:
            continue
        rounds: list[dict[str, dict[str, Any]]] = []
        for rnd in range(opts.rounds):
            got: dict[str, dict[str, Any]] = {}
            for name in servers if rnd % 2 == 0 else servers[::-1]:
                wait_quiet(opts.quiet_wait)
                rec = run(name, args, metric)
                rec.update(scenario=key, round=rnd)
                raw.append(rec)
                loads.append(rec["loadavg_1m"])
                if rec.get("value") is not None:
                    got[name] = rec
                print(f"{label} r{rnd} {name}: {rec.get('value')} "
                      f"(server CPU {rec.get('server_cpu_pct')} %, loadgen CPU "
                      f"{rec.get('loadgen_cpu_pct')} %) {rec.get('error', '')}",
                      file=sys.stderr)
            rounds.append(got)
        table.append((label, rounds))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"compat-{began:%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(raw, indent=1))
    ended = dt.datetime.now(dt.timezone.utc)
    ratios = [(a, b, t) for a, b, t in RATIOS if a in servers and b in servers]
    heads = [SERVERS[name][0] for name in servers]
    print(f"Run {began:%Y-%m-%d} ({began:%H:%M}{DASH}{ended:%H:%M} UTC), {opts.rounds} rounds, "
          f"{opts.duration} s windows, load average {min(loads):.1f}{DASH}{max(loads):.1f}; "
          f"raw results: {out.relative_to(ROOT)}\n")
    for what, key in (("rate", "value"), ("rate per server CPU-second", "per_cpu_s")):
        print(f"| scenario ({what}) | " + " | ".join(heads) + " | "
              + " | ".join(t for _a, _b, t in ratios) + " |")
        print("|---" * (len(heads) + len(ratios) + 1) + "|")
        for label, rounds in table:
            cells = [cell([r[n][key] for r in rounds if n in r and r[n].get(key)])
                     for n in servers]
            rs = [ratio_cell(rounds, a, b, key) for a, b, _t in ratios]
            print(f"| {label} | " + " | ".join(cells + rs) + " |")
        print()
    print("| scenario | " + " | ".join(f"{h}: server CPU % / loadgen CPU %" for h in heads)
          + " |")
    print("|---" * (len(heads) + 1) + "|")
    for label, rounds in table:
        cells = []
        for n in servers:
            s = [r[n]["server_cpu_pct"] for r in rounds if n in r]
            lg = [r[n]["loadgen_cpu_pct"] for r in rounds if n in r]
            cells.append(f"{pct(s)} / {pct(lg)}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
