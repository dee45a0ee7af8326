"""The own front's cost against the native server in instructions, not seconds: each server of
bench/compat.py runs under valgrind's callgrind, counting the instructions it executes (user
space only: the kernel's share of each handshake or message is not counted, and is the same
for both) while the load generator runs one scenario. Instruction counts do not move with the
other tenants of a shared machine, which is what makes them worth having beside the timed
bench; they do not see cache misses or the kernel, so they are a complement, not a substitute.

    .venv/bin/python bench/compat_instructions.py [--servers compat-own,native] [--rounds 1]

Scenarios (smaller than the timed bench's: the server runs about 50x slower under valgrind):
connect (500 handshakes, 20 in flight, then closed: the disconnects are counted too), echo
(10 clients, 8 s), fan-out (100 receivers, window 4, 8 s; ``--fanout 1000,16`` for the timed
bench's). Each count covers the load
generator's whole run (its connections' setup included) and is divided by what the scenario
counts (handshakes, acks, deliveries), after taking off the cost of the scenario's own
connections (their count times the instructions per handshake of the connect scenario, when it
ran first in the same run). A warm-up of 100 handshakes runs first, uncounted; the connect
scenario's own 200 warm-up handshakes (the load generator's) run while counting, and are counted
as handshakes (before 2026-12-04 they were not: the per-handshake counts this tool printed
were 700/500 = 1.4x too high, the ratios between servers were right).
Prints a Markdown table: instructions per unit for each server and the ratio
native ÷ own front (the own front's speed relative to native, by instructions).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat import LOADGEN, ROOT, SERVERS, build_loadgen  # bench/compat.py, beside this file
from run import LOADGEN_CPU, SERVER_CPU, free_port

# name: (title, load generator arguments, what it counts, connections it opens besides)
SCENARIOS = {
    "connect": ("connect 500, 20 in flight (per handshake)",
                ["connect", "--conns", "500", "--concurrency", "20", "--hold", "0"], "conns", 0),
    "echo": ("echo 10 clients (per ack)",
             ["echo", "--clients", "10", "--duration", "8", "--warmup", "0"], "acks", 10),
    "fanout": ("fan-out N=100 W=4 (per delivery)",
               ["fanout", "--receivers", "100", "--window", "4", "--duration", "8",
                "--warmup", "0"], "deliveries", 101),
}


def set_fanout(receivers: int, window: int) -> None:
    """The fan-out scenario with ``receivers`` and ``window`` (bench/compat.py's: 1000, 16)."""
    SCENARIOS["fanout"] = (
        f"fan-out N={receivers} W={window} (per delivery)",
        ["fanout", "--receivers", str(receivers), "--window", str(window), "--duration", "8",
         "--warmup", "0"], "deliveries", receivers + 1)


def loadgen(args: list[str], port: int) -> dict[str, object]:
    r = subprocess.run(["taskset", "-c", LOADGEN_CPU, str(LOADGEN), *args, "--port", str(port)],
                       capture_output=True, text=True, timeout=600)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"load generator: no result: {r.stderr.strip()[-300:]}")
    out: dict[str, object] = json.loads(lines[-1])
    return out


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)


def measure(name: str, scenario: str, tmp: Path) -> tuple[int, float]:
    """(instructions, units) for one run of ``scenario`` on a fresh ``name`` server."""
    _label, cmd, env = SERVERS[name]
    port = free_port()
    args = [*cmd, str(port), "127.0.0.1"] if name == "native" else [
        *cmd, "--host", "127.0.0.1", "--port", str(port)]
    out = tmp / f"{name}-{scenario}.cg"
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, "valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={out}", *args],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{name} did not listen under valgrind") from None
                time.sleep(0.5)
        loadgen(["connect", "--conns", "100", "--concurrency", "20", "--hold", "0"], port)
        time.sleep(1)  # the warm-up's disconnects, uncounted
        control("-i", "on", str(proc.pid))
        _title, largs, unit, _conns = SCENARIOS[scenario]
        result = loadgen(largs, port)
        time.sleep(1)  # what the load generator's end leaves to do (closes), counted
        control("-i", "off", str(proc.pid))
        control("-d", str(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    total = 0
    for dump in tmp.glob(out.name + ".*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    units = float(result[unit])  # type: ignore[arg-type]
    if scenario == "connect":
        # The count covers the load generator's own warm-up handshakes too (opened and closed
        # before its counted ones).
        units += float(result.get("warmup_conns", 0))  # type: ignore[arg-type]
    if not units:
        raise RuntimeError(f"{name} {scenario}: no {unit} counted")
    return total, units


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="compat-own,native")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--fanout", default="100,4", help="fan-out receivers,window")
    opts = parser.parse_args()
    build_loadgen()
    receivers, window = (int(x) for x in opts.fanout.split(","))
    set_fanout(receivers, window)
    servers = opts.servers.split(",")
    wanted = opts.scenarios.split(",")
    rows = []
    handshake: dict[str, float] = {}  # instructions per handshake, from the connect scenario
    with tempfile.TemporaryDirectory(prefix="fastsio-callgrind-") as d:
        tmp = Path(d)
        for scenario in wanted:
            per: dict[str, list[float]] = {s: [] for s in servers}
            conns = SCENARIOS[scenario][3]
            for rnd in range(opts.rounds):
                for name in servers if rnd % 2 == 0 else servers[::-1]:
                    total, units = measure(name, scenario, tmp)
                    # The connections' own cost (their handshakes and closes), measured by the
                    # connect scenario of this run when there is one, is not the unit's.
                    setup = conns * handshake.get(name, 0.0)
                    per[name].append((total - setup) / units)
                    if scenario == "connect":
                        handshake[name] = total / units
                    print(f"{scenario} r{rnd} {name}: ({total:,} instructions - {setup:,.0f} "
                          f"for {conns} connections) / {units:,.0f} = {per[name][-1]:,.0f}",
                          file=sys.stderr)
                    for f in tmp.glob("*"):
                        f.unlink()
            rows.append((SCENARIOS[scenario][0], per))
    heads = [SERVERS[s][0] for s in servers]
    ratio = "compat-own" in servers and "native" in servers
    print("| scenario (instructions per unit, user space) | " + " | ".join(heads)
          + (" | native ÷ own front |" if ratio else " |"))
    print("|---" * (len(heads) + 1 + ratio) + "|")
    for title, per in rows:
        cells = [", ".join(f"{v:,.0f}" for v in per[s]) for s in servers]
        extra = ""
        if ratio:
            each = [n / o for n, o in zip(per["native"], per["compat-own"], strict=False)]
            extra = " | " + ", ".join(f"{x:.3f}" for x in each)
        print(f"| {title} | " + " | ".join(cells) + extra + " |")


if __name__ == "__main__":
    main()
