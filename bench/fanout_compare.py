"""Fan-out scenarios on two fastsio trees and the ceiling server, alternating in every round.

    .venv/bin/python bench/fanout_compare.py BEFORE_TREE [--rounds 3] [--fanout 1000,1 100,16]

BEFORE_TREE: a copy of another revision with its extensions built in place (see
bench/before_after.py); "after" is this tree; the ceiling is bench/results/ceiling (built by
bench/run.py). Each run is bench/before_after.py's: a fresh server on CPU 0, the C load
generator on CPU 1, 5 s after 2 s of warm-up. Prints each run, then for every scenario the
medians (min-max) of deliveries/s, deliveries per server CPU-second, p50 and p99, and the
per-round ratios after ÷ before and each tree ÷ the ceiling of the same round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from before_after import PY, ROOT, run_one, spread  # bench/before_after.py, beside this file

CEILING = ROOT / "bench" / "results" / "ceiling"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fanout", nargs="+", default=["1000,1", "100,16"],
                        help="receivers,window pairs")
    opts = parser.parse_args()
    app = [PY, str(ROOT / "bench" / "apps" / "fastsio_app.py")]
    variants = {"before": (app, str(Path(opts.before).resolve())), "after": (app, str(ROOT)),
                "ceiling": ([str(CEILING)], str(ROOT))}
    metric = "deliveries_per_s"
    report: dict[str, Any] = {}
    for pair in opts.fanout:
        n, w = pair.split(",")
        scenario = ["fanout", "--receivers", n, "--window", w]
        res: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
        for rnd in range(opts.rounds):
            names = list(variants) if rnd % 2 == 0 else list(variants)[::-1]
            for name in names:
                cmd, tree = variants[name]
                r = run_one(cmd, tree, scenario, metric)
                res[name].append(r)
                print(f"N={n} W={w} r{rnd} {name}: {r[metric]:.0f}/s per CPU-s "
                      f"{r['per_cpu']:.0f} p50 {r['p50_us']} p99 {r['p99_us']} server CPU % "
                      f"{r['server_cpu_pct']} loadgen CPU % {r['loadgen_cpu_pct']} others on "
                      f"server core % {r['other_on_server_core_pct']}", flush=True)
        print(f"== fan-out N={n} W={w}")
        for key in (metric, "per_cpu", "p50_us", "p99_us", "server_cpu_pct"):
            print(f"  {key}: " + " | ".join(
                f"{k}: {spread([r[key] for r in rs])}" for k, rs in res.items()))
        for a, b in (("after", "before"), ("before", "ceiling"), ("after", "ceiling")):
            for key in (metric, "per_cpu", "p99_us"):
                ratios = [x[key] / y[key] for x, y in zip(res[a], res[b], strict=True)]
                print(f"  {a}/{b} {key}: median {statistics.median(ratios):.2f} "
                      f"({min(ratios):.2f}-{max(ratios):.2f})  rounds "
                      + " ".join(f"{x:.2f}" for x in ratios))
        report[pair] = res
    out = ROOT / "bench" / "results" / f"fanout-compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report))
    print("raw results:", out)


if __name__ == "__main__":
    main()
