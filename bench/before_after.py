"""Two fastsio trees (and Node) on one bench/loadgen scenario, alternating in every round.

    python bench/before_after.py BEFORE_TREE [ROUNDS] [--no-node] [--ceiling]
        [--fanout [--receivers=N] [--window=W] [--pad=BYTES]]

BEFORE_TREE: a copy of another revision with its extensions built in place (e.g. ``git archive
REV | tar -x -C DIR`` and ``python setup.py build_ext --inplace`` there); "after" is this tree.
Each run: a fresh server pinned to CPU 0 (PYTHONPATH: its tree), the C load generator on CPU 1
(built by bench/run.py into bench/results/loadgen), echo with 50 clients (or, with --fanout,
fan-out, N=1000 W=16 and the load generator's pad unless given) for 5 s after 2 s of
warm-up; with --ceiling, the C ceiling server (bench/results/ceiling, built by bench/run.py)
takes part too. Prints each run,
then medians (min-max) and the per-round ratios, the rate per server CPU-second included
(rate ÷ the server's CPU share)."""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LOADGEN = ROOT / "bench" / "results" / "loadgen"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_one(cmd: list[str], tree: str, scenario: list[str], metric: str) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=tree, NODE_ENV="production")
    srv = subprocess.Popen(
        ["taskset", "-c", "0", *cmd, str(port), "127.0.0.1"],
        env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out = subprocess.run(
            ["taskset", "-c", "1", str(LOADGEN), *scenario, "--duration", "5", "--warmup", "2",
             "--port", str(port), "--server-pid", str(srv.pid), "--server-core", "0",
             "--loadgen-core", "1"],
            capture_output=True, text=True, timeout=120,
        ).stdout
    finally:
        srv.terminate()
        srv.wait(10)
    r: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    r["per_cpu"] = r[metric] * 100 / r["server_cpu_pct"]
    return r


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    before = str(Path(args[0]).resolve())
    rounds = int(args[1]) if len(args) > 1 else 5
    fanout = "--fanout" in sys.argv
    metric = "deliveries_per_s" if fanout else "acks_per_s"
    scenario = (["fanout", "--receivers", opts.get("receivers", "1000"),
                 "--window", opts.get("window", "16"),
                 *(["--pad", opts["pad"]] if "pad" in opts else [])] if fanout
                else ["echo", "--clients", "50"])
    app = [PY, str(ROOT / "bench" / "apps" / "fastsio_app.py")]
    variants = {"before": (app, before), "after": (app, str(ROOT))}
    if "--no-node" not in sys.argv:
        variants["node"] = (["node", str(ROOT / "bench" / "apps" / "node_app.js")], str(ROOT))
    if "--ceiling" in sys.argv:
        variants["ceiling"] = ([str(ROOT / "bench" / "results" / "ceiling")], str(ROOT))
    res: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    for rnd in range(rounds):
        for name, (cmd, tree) in variants.items():
            r = run_one(cmd, tree, scenario, metric)
            res[name].append(r)
            print(rnd, name, round(r[metric]), "per CPU-s", round(r["per_cpu"]), "p99",
                  r["p99_us"], "server CPU %", r["server_cpu_pct"], "loadgen CPU %",
                  r["loadgen_cpu_pct"], "others on server core %",
                  r["other_on_server_core_pct"], flush=True)
    for key in (metric, "per_cpu", "p50_us", "p99_us", "server_cpu_pct", "loadgen_cpu_pct"):
        print(key, " | ".join(f"{n}: {spread([r[key] for r in rs])}" for n, rs in res.items()))
    for a, b in (("after", "before"), ("after", "node"), ("before", "node"),
                 ("after", "ceiling"), ("before", "ceiling")):
        if b not in res:
            continue
        for key in (metric, "per_cpu", "p99_us"):
            ratios = [x[key] / y[key] for x, y in zip(res[a], res[b], strict=True)]
            print(f"{a}/{b} {key}: median {statistics.median(ratios):.2f}  rounds "
                  + " ".join(f"{x:.2f}" for x in ratios))
    out = ROOT / "bench" / "results" / f"before-after-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(res))
    print("raw results:", out)


if __name__ == "__main__":
    main()
