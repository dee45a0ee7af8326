"""What one broadcast costs the fastsio server, in instructions (callgrind), for one or more
trees side by side.

    .venv/bin/python bench/fanout_instructions.py [--trees BEFORE_TREE,.] [--receivers 10,100]
        [--window 16] [--durations 3,9]

For each tree and receiver count N, the bench app (bench/apps/fastsio_app.py: ``bcast`` emits
``tick`` to everyone, then acks) runs under valgrind's callgrind on CPU 0 while the C load
generator (CPU 1) runs the fan-out scenario for two durations, each on a fresh server. Both runs
pay the same setup (N + 1 handshakes, the closes at the end, a warm-up of 20 handshakes before
counting starts), so the difference of their instruction counts divided by the difference of
their broadcasts is the cost of one broadcast alone: the sender's ``bcast`` in, the handler,
``emit`` down to the room index and the outboxes, the flushes, the ticks written, the ack out.
Two receiver counts split that into a fixed part and a part per delivery (a straight line
through the two points). Counts are user space only (the kernel's share is not seen) and do not
move with the other tenants of a shared machine. A BEFORE_TREE is a copy of another revision
with its extensions built in place (``git archive REV | tar -x -C DIR``, then
``python setup.py build_ext --inplace`` there).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compat_instructions import control, loadgen  # bench/compat_instructions.py, beside this
from run import SERVER_CPU, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def measure(tree: Path, receivers: int, window: int, duration: float, tmp: Path) -> tuple[int, int]:
    """(instructions, broadcasts) of one fan-out run on a fresh server from ``tree``."""
    port = free_port()
    out = tmp / "fanout.cg"
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, "valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={out}", PY, str(tree / "bench" / "apps" / "fastsio_app.py"),
         str(port), "127.0.0.1"],
        cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not listen under valgrind") from None
                time.sleep(0.5)
        loadgen(["connect", "--conns", "20", "--concurrency", "10", "--hold", "0"], port)
        time.sleep(1)
        control("-i", "on", str(proc.pid))
        result = loadgen(["fanout", "--receivers", str(receivers), "--window", str(window),
                          "--duration", str(duration), "--warmup", "0"], port)
        time.sleep(1)  # the closes at the end, counted in both runs alike
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
    for dump in tmp.glob(out.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
        dump.unlink()
    if result.get("missing_deliveries") or not result.get("drained"):
        raise RuntimeError(f"fan-out run incomplete: {result}")
    return total, int(result["bcasts_sent"])  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=".", help="comma-separated fastsio trees")
    parser.add_argument("--receivers", default="10,100")
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--durations", default="3,9", help="the short and the long run, seconds")
    opts = parser.parse_args()
    trees = [Path(t).resolve() for t in opts.trees.split(",")]
    ns = [int(n) for n in opts.receivers.split(",")]
    short, long_ = (float(d) for d in opts.durations.split(","))
    per: dict[tuple[Path, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="fastsio-fanout-cg-") as d:
        for n in ns:
            for tree in trees:
                i1, b1 = measure(tree, n, opts.window, short, Path(d))
                i2, b2 = measure(tree, n, opts.window, long_, Path(d))
                per[(tree, n)] = (i2 - i1) / (b2 - b1)
                print(f"{tree} N={n}: ({i2:,} - {i1:,}) / ({b2} - {b1} broadcasts) = "
                      f"{per[(tree, n)]:,.0f} per broadcast", file=sys.stderr, flush=True)
    print("| tree | " + " | ".join(f"N={n} per broadcast" for n in ns)
          + (" | fixed | per delivery |" if len(ns) == 2 else " |"))
    print("|---" * (len(ns) + 1 + (2 if len(ns) == 2 else 0)) + "|")
    for tree in trees:
        cells = [f"{per[(tree, n)]:,.0f}" for n in ns]
        if len(ns) == 2:
            slope = (per[(tree, ns[1])] - per[(tree, ns[0])]) / (ns[1] - ns[0])
            cells += [f"{per[(tree, ns[0])] - slope * ns[0]:,.0f}", f"{slope:,.0f}"]
        print(f"| {tree} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
