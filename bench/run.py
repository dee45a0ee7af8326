"""The end-to-end benchmark: fastsio against the official Node server and python-socketio.

    python bench/run.py            # 3 rounds, full durations; tables into bench/README.md
    python bench/run.py --quick    # 1 round, short durations (a smoke test); README left alone

Each measurement starts a fresh server pinned to CPU 0 (``taskset -c 0``) and runs the C load
generator (``bench/loadgen/loadgen.c``, built here with ``gcc -O2``) pinned to CPU 1. Servers
alternate inside every round and scenario (fastsio, node, pysio, fastsio, ...), so slow drifts in
the machine's load fall on all of them alike. Two scenarios compare variants instead of servers,
alternating in the same way: fan-out with connection state recovery on and off (fastsio only), and
fan-out with and without receivers that stop reading (fastsio and Node). Everything listens on
127.0.0.1 only; every wait has a deadline. Raw results (one JSON object per run) and server logs
go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"  # git-ignored
LOADGEN_SRC = BENCH / "loadgen" / "loadgen.c"
LOADGEN = RESULTS / "loadgen"
README = BENCH / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
DASH, TIMES = "\u2013", "\u00d7"  # en dash, multiplication sign: for the table

SERVER_CPU, LOADGEN_CPU = "0", "1"
# "ceiling": bench/ceiling/ceiling.c, a C epoll server that frames a broadcast once and writes
# once per connection per batch of events: what this machine can do, measured in the same run.
SERVERS = ("fastsio", "node", "pysio", "ceiling")
LABELS = {
    "fastsio": "fastsio",
    "node": "Node socket.io",
    "pysio": "python-socketio",
    "ceiling": "ceiling (C)",
}
CEILING_SRC = BENCH / "ceiling" / "ceiling.c"
CEILING = RESULTS / "ceiling"


def venv_python() -> str:
    for cand in (ROOT / ".venv" / "bin" / "python", Path(sys.executable)):
        if cand.exists():
            return str(cand)
    return sys.executable


PY = venv_python()


# -- scenarios ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One kind of run inside a scenario: a server, with extra arguments for it and the loadgen."""

    server: str  # fastsio / node / pysio: the process that runs
    name: str = ""  # "" in the main table; e.g. "recovery-on", "stalled"
    app_args: tuple[str, ...] = ()
    loadgen_args: tuple[str, ...] = ()


@dataclass
class Scenario:
    key: str
    title: str
    args: list[str]
    metrics: list[tuple[str, str, str]]  # (json key, label, unit kind)
    # None: one run per server in SERVERS (the main table). Otherwise these runs, in this order
    # on odd rounds and reversed on even ones; `group` says which table shows them.
    variants: list[Variant] | None = None
    group: str = "main"


STALLED = 10  # receivers that stop reading in the slow-consumer scenario
SERVER_RSS_CAP_MIB = "3072"  # every fan-out: the sender stops if the server's RSS passes this
FAN = [
    ("deliveries_per_s", "deliveries/s", "rate"),
    ("p50_us", "latency p50", "us"),
    ("p99_us", "latency p99", "us"),
]


def fanout_args(n: int, win: int, d: str, w: str, *extra: str) -> list[str]:
    return [
        "fanout",
        "--receivers",
        str(n),
        "--window",
        str(win),
        "--duration",
        d,
        "--warmup",
        w,
        "--max-server-rss-mib",
        SERVER_RSS_CAP_MIB,
        *extra,
    ]


def scenarios(quick: bool) -> list[Scenario]:
    d, w = ("2", "1") if quick else ("5", "2")
    conns, hold = ("2000", "1") if quick else ("5000", "2")
    fan = FAN  # the fan-out scenarios' metrics
    out = []
    for n, win in ((1000, 16), (1000, 1), (100, 16), (100, 1)):
        out.append(
            Scenario(f"fanout-{n}-w{win}", f"fan-out N={n} W={win}", fanout_args(n, win, d, w), fan)
        )
    out.append(
        Scenario(
            "echo-50",
            "echo 50 clients",
            ["echo", "--clients", "50", "--duration", d, "--warmup", w],
            [
                ("acks_per_s", "acks/s", "rate"),
                ("p50_us", "round trip p50", "us"),
                ("p99_us", "round trip p99", "us"),
            ],
        )
    )
    out.append(
        Scenario(
            f"connect-{conns}",
            f"connect {int(conns):,} (200 in flight)",
            ["connect", "--conns", conns, "--concurrency", "200", "--hold", hold],
            [
                ("handshakes_per_s", "handshakes/s", "rate"),
                ("hs_p99_us", "handshake p99", "us"),
                ("rss_per_conn_kib", "RSS per idle conn", "kib"),
            ],
        )
    )
    # Connection state recovery on vs off: every broadcast logged and stamped with an offset.
    rec = [Variant("fastsio", "recovery-on", ("--recovery",)), Variant("fastsio", "recovery-off")]
    for win in (16, 1):
        out.append(
            Scenario(
                f"fanout-1000-w{win}-recovery",
                f"fan-out N=1000 W={win}",
                fanout_args(1000, win, d, w),
                fan,
                variants=rec,
                group="recovery",
            )
        )
    # Binary broadcast: the same fan-out with a 1 KiB pad, sent as a string (text) and as bytes
    # (a binary event: one text packet and one attachment frame per delivery).
    pad = ("--pad", "1024")
    out.append(
        Scenario(
            "binary-1000-w16",
            "fan-out N=1000 W=16, pad 1 KiB",
            fanout_args(1000, 16, d, w),
            fan,
            variants=[
                Variant("fastsio", "text", (), pad),
                Variant("fastsio", "binary", (), (*pad, "--event", "bcastbin")),
                Variant("ceiling", "text", (), pad),
                Variant("ceiling", "binary", (), (*pad, "--event", "bcastbin")),
            ],
            group="binary",
        )
    )
    # Slow consumers: STALLED extra receivers never read (and a 2 KB payload, so that they
    # reach fastsio's 16 MiB bound within the run); the same run without them, same round.
    sd, sw = ("6", "1") if quick else ("20", "2")
    stall = (
        "--stalled",
        str(STALLED),
        "--stalled-rcvbuf",
        "4096",
        "--stalled-pong",
        "5",
    )
    count = ("--count-disconnects",)
    out.append(
        Scenario(
            "slow-1000-w16",
            f"fan-out N=1000 W=16, pad 2000 B, {STALLED} stalled receivers",
            fanout_args(1000, 16, sd, sw, "--pad", "2000"),
            fan,
            variants=[
                Variant("fastsio", "no-stalled", count),
                Variant("fastsio", "stalled", count, stall),
                Variant("node", "no-stalled", count),
                Variant("node", "stalled", count, stall),
            ],
            group="stall",
        )
    )
    return out


# targets (issue 10): (scenario key, or a prefix ending in "-", metric, kind, threshold);
# kind "ratio>=":
# fastsio/node >= x, "ratio<=": fastsio/node <= x, "ceil>=" / "ceil<=": fastsio/ceiling,
# "abs<=": fastsio <= x
TARGETS = [
    ("fanout-1000-w16", "deliveries_per_s", "ceil>=", 0.8),
    ("fanout-1000-w16", "deliveries_per_s", "ratio>=", 10.0),
    ("fanout-100-w16", "deliveries_per_s", "ceil>=", 0.8),
    ("fanout-100-w16", "deliveries_per_s", "ratio>=", 10.0),
    ("fanout-1000-w1", "p99_us", "ceil<=", 1.2),
    ("fanout-100-w1", "p99_us", "ceil<=", 1.2),
    ("echo-50", "acks_per_s", "ratio>=", 2.0),
    ("echo-50", "p99_us", "ratio<=", 1.0),
    ("connect-", "handshakes_per_s", "ratio>=", 2.5),
    ("connect-", "rss_per_conn_kib", "abs<=", 8.0),
]


def targets_for(skey: str, metric: str) -> list[tuple[str, float]]:
    # Whole keys: "fanout-100-w1" is not a prefix of "fanout-100-w16" (W=1's p99 target is W=1's).
    return [(kind, x) for key, m, kind, x in TARGETS
            if m == metric and (skey == key or (key.endswith("-") and skey.startswith(key)))]


# -- setup -------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_cmd(cmd: list[str], timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, timeout=timeout, **kw)


def setup() -> None:
    """Build the load generator; install what is missing from the venv / npm already there."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "logs").mkdir(exist_ok=True)
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        sys.exit("bench: gcc is needed to build the load generator")
    for src, out in ((LOADGEN_SRC, LOADGEN), (CEILING_SRC, CEILING)):
        r = run_cmd([gcc, "-O2", "-Wall", "-o", str(out), str(src)], 120)
        if r.returncode != 0:
            sys.exit(f"bench: building {src.name} failed:\n{r.stderr}")
    for tool in ("taskset", "node"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is needed")
    if not (ROOT / "node_modules" / "socket.io" / "package.json").exists():
        log("npm install (socket.io missing)")
        r = run_cmd(["npm", "install", "--no-audit", "--no-fund"], 600, cwd=ROOT)
        if r.returncode != 0:
            sys.exit(f"bench: npm install failed:\n{r.stderr[-2000:]}")
    if SNAPSHOT.exists():
        shutil.rmtree(SNAPSHOT)
    probe = run_cmd([PY, "-c", "import fastsio._core.sio_packet"], 60, cwd=ROOT, env=server_env())
    if probe.returncode != 0:
        log("building fastsio's extensions in place")
        r = run_cmd([PY, "setup.py", "-q", "build_ext", "--inplace"], 900, cwd=ROOT)
        if r.returncode != 0:
            sys.exit(f"bench: building fastsio failed:\n{r.stderr[-2000:]}")
    snapshot_fastsio()
    probe = run_cmd(
        [PY, "-c", "import fastsio; fastsio.Server()"], 60, cwd=RESULTS, env=server_env()
    )
    if probe.returncode != 0:
        sys.exit(f"bench: the snapshot of fastsio does not import:\n{probe.stderr[-2000:]}")
    probe = run_cmd([PY, "-c", "import socketio, aiohttp, uvloop"], 60, cwd=ROOT)
    if probe.returncode != 0:
        log("pip install python-socketio 5 / aiohttp / uvloop into the venv")
        r = run_cmd(
            [PY, "-m", "pip", "install", "-q", "python-socketio>=5,<6", "aiohttp", "uvloop"], 900
        )
        if r.returncode != 0:
            sys.exit(f"bench: pip install failed:\n{r.stderr[-2000:]}")
    # 5,000 connections on each side: raise the open-files limit (inherited by the children)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 12000:
        log(f"warning: ulimit -n is {soft}; the connect scenario needs more than 5,000 descriptors")


SNAPSHOT = RESULTS / "snapshot"  # a copy of fastsio/ taken when the run starts


SNAPSHOT_GIT = ""  # the commit fastsio/ was copied at, and whether it had local changes


def snapshot_fastsio() -> None:
    """Copy fastsio/ (sources and built extensions): the whole run measures one version of it,
    even if the working tree changes meanwhile."""
    global SNAPSHOT_GIT
    git = ["git", "-C", str(ROOT)]
    try:
        commit = run_cmd([*git, "rev-parse", "--short", "HEAD"], 30).stdout.strip() or "?"
        dirty = run_cmd([*git, "status", "--porcelain", "--", "fastsio"], 30).stdout.strip()
        SNAPSHOT_GIT = f"git {commit}{' + local changes in fastsio/' if dirty else ''}"
        # the local changes themselves, to know later what exactly was measured
        diff = run_cmd([*git, "diff", "HEAD", "--", "fastsio"], 60).stdout
        (RESULTS / "last-run-fastsio.diff").write_text(diff)
    except (OSError, subprocess.TimeoutExpired):
        SNAPSHOT_GIT = "git ?"
    if SNAPSHOT.exists():
        shutil.rmtree(SNAPSHOT)
    shutil.copytree(
        ROOT / "fastsio", SNAPSHOT / "fastsio", ignore=shutil.ignore_patterns("__pycache__")
    )
    stale = stale_extensions(SNAPSHOT / "fastsio" / "_core")
    if stale:
        # compiled modules older than their sources: build the copy, never the working tree
        log(f"building the snapshot's extensions ({', '.join(stale)} older than their sources)")
        # (not pyproject.toml: its metadata needs a newer setuptools than the venv's, and
        # build_ext needs none of it)
        for name in ("setup.py", "client_bundle.py"):
            if (ROOT / name).exists():
                shutil.copy2(ROOT / name, SNAPSHOT / name)
        r = run_cmd([PY, "setup.py", "-q", "build_ext", "--inplace"], 900, cwd=SNAPSHOT)
        if r.returncode != 0:
            sys.exit(f"bench: building fastsio's snapshot failed:\n{r.stderr[-2000:]}")


def stale_extensions(core: Path) -> list[str]:
    """Cython modules whose compiled file is missing or older than a source it depends on:
    its .pyx and .pxd, the headers, and the .pxd of every core module it cimports."""
    cimport = re.compile(
        r"^\s*(?:from\s+(?:fastsio\._core)?\.?(\w+)\s+cimport|cimport\s+fastsio\._core\.(\w+))"
    )
    headers = max((h.stat().st_mtime for h in core.glob("*.h")), default=0.0)

    def deps(name: str, seen: set[str]) -> float:
        newest = headers
        for ext in ("pyx", "pxd"):
            f = core / f"{name}.{ext}"
            if not f.exists():
                continue
            newest = max(newest, f.stat().st_mtime)
            for line in f.read_text(errors="replace").splitlines():
                m = cimport.match(line)
                dep = m and (m.group(1) or m.group(2))
                if dep and dep not in seen and (core / f"{dep}.pxd").exists():
                    seen.add(dep)
                    newest = max(newest, deps(dep, seen))
        return newest

    out = []
    for pyx in sorted(core.glob("*.pyx")):
        built = list(core.glob(f"{pyx.stem}.*.so")) + list(core.glob(f"{pyx.stem}.*.pyd"))
        if not built or max(b.stat().st_mtime for b in built) < deps(pyx.stem, {pyx.stem}):
            out.append(pyx.stem)
    return out


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    path = str(SNAPSHOT) if (SNAPSHOT / "fastsio").exists() else str(ROOT)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("NODE_ENV", "production")
    return env


def server_cmd(name: str, port: int, app_args: tuple[str, ...] = ()) -> list[str]:
    pin = ["taskset", "-c", SERVER_CPU]
    if name == "fastsio":
        cmd = [*pin, PY, str(BENCH / "apps" / "fastsio_app.py"), str(port), "127.0.0.1"]
    elif name == "node":
        cmd = [*pin, "node", str(BENCH / "apps" / "node_app.js"), str(port), "127.0.0.1"]
    elif name == "pysio":
        cmd = [*pin, PY, str(BENCH / "apps" / "pysio_app.py"), str(port), "127.0.0.1"]
    elif name == "ceiling":
        return [*pin, str(CEILING), str(port), "127.0.0.1"]  # takes no app arguments
    else:
        raise ValueError(name)
    return cmd + list(app_args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_busy(cpus: tuple[str, ...] = (SERVER_CPU, LOADGEN_CPU), secs: float = 0.5) -> float:
    """The busiest of `cpus` over `secs`, in % (from /proc/stat)."""

    def snap() -> dict[str, tuple[int, int]]:
        out = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:] in cpus:
                v = [int(x) for x in vals[:8]]
                out[name[3:]] = (sum(v) - v[3] - v[4], sum(v))
        return out

    a = snap()
    time.sleep(secs)
    b = snap()
    worst = 0.0
    for c in cpus:
        if c in a and c in b and b[c][1] > a[c][1]:
            worst = max(worst, 100.0 * (b[c][0] - a[c][0]) / (b[c][1] - a[c][1]))
    return worst


def wait_quiet(max_wait: float, threshold: float = 15.0) -> float:
    """Wait (at most `max_wait` s) until both bench CPUs are nearly idle; returns the busy %."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def listen_backlog(port: int) -> int | None:
    """The accept-queue limit of the server's listening socket (ss's Send-Q for a listener)."""
    try:
        out = run_cmd(["ss", "-Hltn", f"sport = :{port}"], 10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            return int(parts[2])
    return None


def listen_overflows() -> int:
    """TcpExt ListenOverflows: SYNs dropped because an accept queue was full."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for head, vals in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:], strict=False))
            return int(d.get("ListenOverflows", 0))
    return 0


class ServerProc:
    def __init__(self, name: str, tag: str, app_args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.port = free_port()
        self.logpath = RESULTS / "logs" / f"{tag}-{name}.log"
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            server_cmd(name, self.port, app_args),
            cwd=ROOT,
            env=server_env(),
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.proc.pid  # taskset execs the server: same pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}); see {self.logpath}"
                )
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    time.sleep(0.3)  # let it finish starting up
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=5)
        self.logf.close()


def server_log_facts(path: Path) -> dict[str, Any]:
    """What the server said about disconnects: the reasons its `disconnect` handlers got (apps
    run with --count-disconnects) and fastsio's warnings about clients that stopped reading."""
    out: dict[str, Any] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    out["server_not_reading_warnings"] = text.count("client not reading")
    for line in text.splitlines():
        if line.startswith('{"disconnect_reasons"'):
            with contextlib.suppress(ValueError):
                out["disconnect_reasons"] = json.loads(line)["disconnect_reasons"]
    return out


def run_one(v: Variant, sc: Scenario, rnd: int, quiet_wait: float) -> dict[str, Any]:
    server = v.server
    tag = f"r{rnd}-{sc.key}{'-' + v.name if v.name else ''}"
    rec: dict[str, Any] = {"server": server, "variant": v.name, "scenario": sc.key, "round": rnd}
    rec["busy_before_pct"] = round(wait_quiet(quiet_wait), 1)
    srv = ServerProc(server, tag, v.app_args)
    try:
        srv.wait_ready()
        rec["listen_backlog"] = listen_backlog(srv.port)
        cmd = [
            "taskset",
            "-c",
            LOADGEN_CPU,
            str(LOADGEN),
            *sc.args,
            *v.loadgen_args,
            "--port",
            str(srv.port),
            "--server-pid",
            str(srv.pid),
            "--server-core",
            SERVER_CPU,
            "--loadgen-core",
            LOADGEN_CPU,
        ]
        ov0, cpu0, t0 = listen_overflows(), proc_cpu_s(srv.pid), time.monotonic()
        load0 = os.getloadavg()[0]
        try:
            r = run_cmd(cmd, 400)
        except subprocess.TimeoutExpired:
            rec["error"] = "load generator timed out"
            return rec
        wall = time.monotonic() - t0
        cpu1 = proc_cpu_s(srv.pid)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if lines:
            out = json.loads(lines[-1])
            out["kind"] = out.pop("scenario", None)
            rec.update(out)
        else:
            rec["error"] = f"no result (rc {r.returncode}): {r.stderr.strip()[-300:]}"
        if r.returncode != 0 and "error" not in rec:
            rec["warning"] = f"loadgen rc {r.returncode}"
        if rec.get("rss_limit_hit"):
            rec["error"] = f"server RSS passed {SERVER_RSS_CAP_MIB} MiB: the sender stopped"
        rec["listen_overflows_systemwide"] = listen_overflows() - ov0
        rec["loadavg_1m"] = load0
        rec["server_rss_end_kib"] = proc_rss_kib(srv.pid)
        if cpu0 is not None and cpu1 is not None:
            rec["server_cpu_run_s"] = round(cpu1 - cpu0, 3)  # the whole loadgen run, incl. setup
            rec["loadgen_wall_s"] = round(wall, 3)
        if srv.proc.poll() is not None:
            rec["error"] = rec.get("error") or f"server exited ({srv.proc.returncode})"
    except RuntimeError as exc:
        rec["error"] = str(exc)
    finally:
        srv.stop()
    if v.app_args:
        rec.update(server_log_facts(srv.logpath))
    return rec


# -- statistics and the table -------------------------------------------------------------------
def values(
    results: list[dict[str, Any]], server: str, skey: str, metric: str, variant: str = ""
) -> list[float]:
    out = []
    for r in results:
        if (
            r["server"] == server
            and r["scenario"] == skey
            and r.get("variant", "") == variant
            and "error" not in r
        ):
            v = r.get(metric)
            if isinstance(v, (int, float)) and v >= 0:
                out.append(float(v))
    return out


def fmt(v: float, kind: str) -> str:
    if kind == "rate":
        if v >= 1e6:
            return f"{v / 1e6:.2f}M"
        if v >= 1e4:
            return f"{v / 1e3:.0f}k"
        if v >= 1e3:
            return f"{v / 1e3:.1f}k"
        return f"{v:.0f}"
    if kind == "us":
        if v >= 1e5:
            return f"{v / 1e3:.0f} ms"
        if v >= 1e3:
            return f"{v / 1e3:.1f} ms"
        return f"{v:.0f} µs"
    if kind == "kib":
        return f"{v:.1f} KiB"
    if kind == "mib":  # the value is in KiB
        return f"{v / 1024:.0f} MiB"
    if kind == "s":
        return f"{v:.1f} s"
    if kind == "pct":
        return f"{v:.0f}%"
    return f"{v:g}"


def cell(vs: list[float], kind: str, ran: bool = True) -> str:
    if not vs:
        return "failed" if ran else DASH
    med = statistics.median(vs)
    if len(vs) == 1:
        return fmt(med, kind)
    return f"{fmt(med, kind)} ({fmt(min(vs), kind)}{DASH}{fmt(max(vs), kind)})"


def verdict(skey: str, metric: str, f: list[float], n: list[float], c: list[float]) -> str:
    out = []
    for kind, x in targets_for(skey, metric):
        other = c if kind.startswith("ceil") else n
        if not f or (kind != "abs<=" and not other):
            out.append("? (no data)")
            continue
        mf = statistics.median(f)
        if kind == "abs<=":
            out.append(f"≤ {x:g} KiB {'✅' if mf <= x else '❌'}")
            continue
        ratio = mf / statistics.median(other)
        ok = ratio >= x if kind.endswith(">=") else ratio <= x
        sign = "≥" if kind.endswith(">=") else "≤"
        name = "ceiling" if kind.startswith("ceil") else "Node"
        what = f"{x:g}{TIMES} {name}" if x != 1.0 else name
        out.append(f"{sign} {what} {'✅' if ok else '❌'}")
    return "; ".join(out)


def ratio_cell(f: list[float], n: list[float]) -> str:
    if not f or not n or statistics.median(n) == 0:
        return ""
    return f"{statistics.median(f) / statistics.median(n):.2f}{TIMES}"


def table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    head = (
        "| scenario | metric | fastsio | Node socket.io | python-socketio | ceiling (C) "
        "| fastsio ÷ Node | fastsio ÷ ceiling | target |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for sc in scs:
        if sc.group != "main":
            continue
        for metric, label, kind in sc.metrics:
            f, n, p, c = (values(results, s, sc.key, metric) for s in SERVERS)
            ran = [
                any(r["server"] == s and r["scenario"] == sc.key for r in results) for s in SERVERS
            ]
            cf, cn, cp, cc = (cell(vs, kind, r) for vs, r in zip((f, n, p, c), ran, strict=True))
            rows.append(
                f"| {sc.title} | {label} | {cf} | {cn} | {cp} | {cc} "
                f"| {ratio_cell(f, n)} | {ratio_cell(f, c)} | {verdict(sc.key, metric, f, n, c)} |"
            )
    return head + "\n".join(rows) + "\n" if rows else ""


def per_cpu(
    results: list[dict[str, Any]], server: str, skey: str, metric: str, variant: str = ""
) -> list[float]:
    """The rate divided by the server's share of its core: what one full core would do."""
    out = []
    for r in results:
        if (
            r["server"] == server
            and r["scenario"] == skey
            and r.get("variant", "") == variant
            and "error" not in r
        ):
            v, cpu = r.get(metric), r.get("server_cpu_pct")
            if isinstance(v, (int, float)) and isinstance(cpu, (int, float)) and cpu > 5:
                out.append(float(v) / (cpu / 100.0))
    return out


def health_table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    """Medians over rounds, in the measurement window: is the load generator the limit (it must
    not be), how much of the server's core the server got, and what else ran there."""
    head = (
        "| scenario | server CPU % | other tasks on server core % | IRQ on server core % "
        "| loadgen CPU % | other tasks on loadgen core % | rate per server CPU-second "
        "| slow TCP connects | missing deliveries |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []

    def trio(sc: Scenario, metric: str, kind: str = "pct", norm: bool = False) -> str:
        parts = []
        for s in SERVERS:
            vs = per_cpu(results, s, sc.key, metric) if norm else values(results, s, sc.key, metric)
            parts.append(fmt(statistics.median(vs), kind) if vs else DASH)
        return " / ".join(parts)

    def total(sc: Scenario, metric: str) -> str:
        sums = [
            sum(
                int(r.get(metric, 0) or 0)
                for r in results
                if r["scenario"] == sc.key and r["server"] == s
            )
            for s in SERVERS
        ]
        return " / ".join(map(str, sums)) if any(sums) else "0"

    for sc in scs:
        if sc.group != "main":
            continue
        rate = sc.metrics[0][0]
        miss = total(sc, "missing_deliveries") if sc.key.startswith("fanout") else ""
        rows.append(
            f"| {sc.title} | {trio(sc, 'server_cpu_pct')} | {trio(sc, 'other_on_server_core_pct')} "
            f"| {trio(sc, 'irq_on_server_core_pct')} | {trio(sc, 'loadgen_cpu_pct')} "
            f"| {trio(sc, 'other_on_loadgen_core_pct')} | {trio(sc, rate, 'rate', norm=True)} "
            f"| {total(sc, 'slow_tcp_connects')} | {miss} |"
        )
    return head + "\n".join(rows) + "\n" if rows else ""


# connection state recovery on ÷ off: (scenario key, metric) -> minimum ratio
RECOVERY_TARGETS = {("fanout-1000-w16-recovery", "deliveries_per_s"): 0.97}
BINARY_TARGET = 0.8  # binary broadcast deliveries/s >= this x the same broadcast as text


def binary_table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    """The same broadcast with its 1 KiB pad as text and as bytes, alternating in one round."""
    head = (
        "| scenario | metric | server | text | binary | binary ÷ text | binary ÷ text in each "
        "round | target |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for sc in scs:
        if sc.group != "binary":
            continue
        for server in ("fastsio", "ceiling"):
            if not per_round(results, server, sc.key, "text"):
                continue
            for metric, label, kind in sc.metrics:
                t = values(results, server, sc.key, metric, "text")
                b = values(results, server, sc.key, metric, "binary")
                target = ""
                if server == "fastsio" and metric == "deliveries_per_s":
                    if t and b:
                        ok = statistics.median(b) / statistics.median(t) >= BINARY_TARGET
                        target = f"≥ {BINARY_TARGET:g}{TIMES} text {'✅' if ok else '❌'}"
                    else:
                        target = "? (no data)"
                each = paired(results, sc.key, metric, server=server, variants=("binary", "text"))
                rows.append(
                    f"| {sc.title} | {label} | {LABELS[server]} | {cell(t, kind)} "
                    f"| {cell(b, kind)} | {ratio_cell(b, t)} | {each} | {target} |"
                )
            t = per_cpu(results, server, sc.key, "deliveries_per_s", "text")
            b = per_cpu(results, server, sc.key, "deliveries_per_s", "binary")
            each = paired(results, sc.key, "deliveries_per_s", per_cpu_share=True, server=server,
                          variants=("binary", "text"))
            rows.append(
                f"| {sc.title} | deliveries per server CPU-second | {LABELS[server]} "
                f"| {cell(t, 'rate')} | {cell(b, 'rate')} | {ratio_cell(b, t)} | {each} |  |"
            )
    return head + "\n".join(rows) + "\n" if rows else ""


def paired(
    results: list[dict[str, Any]],
    skey: str,
    metric: str,
    per_cpu_share: bool = False,
    server: str = "fastsio",
    variants: tuple[str, str] = ("recovery-on", "recovery-off"),
) -> str:
    """a ÷ b (on ÷ off) within each round (the two runs next to each other), in round order."""

    def get(r: dict[str, Any]) -> float | None:
        v, cpu = r.get(metric), r.get("server_cpu_pct")
        if "error" in r or not isinstance(v, (int, float)) or v <= 0:
            return None
        if per_cpu_share:
            if not isinstance(cpu, (int, float)) or cpu <= 5:
                return None
            return float(v) / cpu
        return float(v)

    out = []
    on_runs = per_round(results, server, skey, variants[0])
    off_by_round = {r["round"]: r for r in per_round(results, server, skey, variants[1])}
    for r in on_runs:
        o = off_by_round.get(r["round"])
        a, b = get(r), (get(o) if o is not None else None)
        if a is not None and b:
            out.append(f"{a / b:.2f}")
    return " · ".join(out)


def recovery_table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    """fastsio with connection state recovery on and off, alternating in the same rounds."""
    head = (
        "| scenario | metric | recovery off | recovery on | on ÷ off | on ÷ off in each round "
        "| target |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for sc in scs:
        if sc.group != "recovery":
            continue
        for metric, label, kind in sc.metrics:
            off = values(results, "fastsio", sc.key, metric, "recovery-off")
            on = values(results, "fastsio", sc.key, metric, "recovery-on")
            target = ""
            x = RECOVERY_TARGETS.get((sc.key, metric))
            if x is not None:
                if on and off:
                    ok = statistics.median(on) / statistics.median(off) >= x
                    target = f"≥ {x:g}{TIMES} off {'✅' if ok else '❌'}"
                else:
                    target = "? (no data)"
            rows.append(
                f"| {sc.title} | {label} | {cell(off, kind)} | {cell(on, kind)} "
                f"| {ratio_cell(on, off)} | {paired(results, sc.key, metric)} | {target} |"
            )
        # the rate per server CPU-second: the least disturbed by other tenants of the machine
        off = per_cpu(results, "fastsio", sc.key, "deliveries_per_s", "recovery-off")
        on = per_cpu(results, "fastsio", sc.key, "deliveries_per_s", "recovery-on")
        rows.append(
            f"| {sc.title} | deliveries per server CPU-second | {cell(off, 'rate')} "
            f"| {cell(on, 'rate')} | {ratio_cell(on, off)} "
            f"| {paired(results, sc.key, 'deliveries_per_s', per_cpu_share=True)} |  |"
        )
    return head + "\n".join(rows) + "\n" if rows else ""


def per_round(results: list[dict[str, Any]], server: str, skey: str, variant: str) -> list[Any]:
    return sorted(
        (
            r
            for r in results
            if r["server"] == server and r["scenario"] == skey and r.get("variant") == variant
        ),
        key=lambda r: int(r["round"]),
    )


def stall_table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    """The slow-consumer scenario: the well-behaved receivers with and without stalled ones,
    the server's memory, and what became of the stalled receivers."""
    return "\n".join(stall_block(results, sc) for sc in scs if sc.group == "stall")


def stall_block(results: list[dict[str, Any]], sc: Scenario) -> str:
    servers = [s for s in ("fastsio", "node") if per_round(results, s, sc.key, "stalled")]
    if not servers:
        return ""
    cols = []
    for s in servers:
        cols += [
            f"{LABELS[s]}, no stalled",
            f"{LABELS[s]}, {STALLED} stalled",
            f"{LABELS[s]} with ÷ without",
        ]
    head = f"| {sc.title} | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    rows: list[str] = []

    def num_row(label: str, metric: str, kind: str, ratio: bool = True) -> None:
        cells = []
        for s in servers:
            a = values(results, s, sc.key, metric, "no-stalled")
            b = values(results, s, sc.key, metric, "stalled")
            cells += [cell(a, kind), cell(b, kind), ratio_cell(b, a) if ratio else ""]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def text_row(label: str, fn: Any) -> None:
        cells = []
        for s in servers:
            for variant in ("no-stalled", "stalled"):
                rs = [r for r in per_round(results, s, sc.key, variant) if "error" not in r]
                vals = [fn(r) for r in rs]
                cells.append(" · ".join(vals) if any(v != DASH for v in vals) else DASH)
            cells.append("")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    num_row("well-behaved receivers: deliveries/s", "deliveries_per_s", "rate")
    num_row("latency p50", "p50_us", "us")
    num_row("latency p99", "p99_us", "us")
    cells = []
    for s in servers:
        a = per_cpu(results, s, sc.key, "deliveries_per_s", "no-stalled")
        b = per_cpu(results, s, sc.key, "deliveries_per_s", "stalled")
        cells += [cell(a, "rate"), cell(b, "rate"), ratio_cell(b, a)]
    rows.append("| deliveries per server CPU-second | " + " | ".join(cells) + " |")
    num_row("server RSS when the sender started", "rss_start_kib", "mib", ratio=False)
    num_row("server RSS, highest while sending", "rss_max_kib", "mib", ratio=False)
    num_row("server RSS at the end of the window", "rss_end_kib", "mib", ratio=False)
    num_row("server RSS after the run (all clients gone)", "server_rss_end_kib", "mib", ratio=False)

    def growth(r: dict[str, Any]) -> str:
        a, b = r.get("rss_start_kib"), r.get("rss_max_kib")
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return "?"
        return f"+{(b - a) / 1024:.0f}"

    text_row("RSS growth while sending, MiB (each round)", growth)

    def gone(r: dict[str, Any]) -> str:
        k = r.get("stalled")
        if not k:
            return DASH
        g = r.get("stalled_gone_in_window", 0)
        first, last = r.get("stalled_first_gone_s", -1), r.get("stalled_last_gone_s", -1)
        when = ""
        if g and first >= 0:
            span = (
                f"{first:.1f}"
                if f"{first:.1f}" == f"{last:.1f}"
                else f"{first:.1f}{DASH}{last:.1f}"
            )
            when = f" at {span} s"
        return f"{g}/{k}{when}"

    text_row("stalled receivers the server closed in the window (each round)", gone)

    def reasons(r: dict[str, Any]) -> str:
        d = r.get("disconnect_reasons")
        if not isinstance(d, dict):
            return "?"
        parts = [
            f"{k} {TIMES}{n}"
            for k, n in sorted(d.items())
            if k not in ("transport close", "server shutting down")
        ]
        return "; ".join(parts) or "none"

    text_row("server-side disconnect reasons other than the final close", reasons)

    def after(r: dict[str, Any]) -> str:
        k = r.get("stalled")
        if not k:
            return DASH
        unresolved = r.get("stalled_unresolved")
        return (
            f"{r.get('stalled_disconnected', '?')} ended, "
            f"{r.get('stalled_still_connected', '?')} caught up"
            + (f", {unresolved} still reading" if unresolved else "")
        )

    text_row("stalled receivers reading again after the window", after)

    def backlog(r: dict[str, Any]) -> str:
        v = r.get("stalled_backlog_kib")
        return DASH if not r.get("stalled") or v is None else f"{v / 1024:.1f}"

    text_row("backlog a stalled receiver then read, MiB (mean, each round)", backlog)
    return head + "\n".join(rows) + "\n"


VARIANT_LABELS = {
    "recovery-on": "recovery on",
    "recovery-off": "recovery off",
    "no-stalled": "no stalled",
    "stalled": f"{STALLED} stalled",
    "text": "text",
    "binary": "binary",
}


def variant_health_table(results: list[dict[str, Any]], scs: list[Scenario]) -> str:
    head = (
        "| scenario | cells | server CPU % | other tasks on server core % | IRQ on server core % "
        "| loadgen CPU % | other tasks on loadgen core % | ticks with a recovery offset "
        "| missing deliveries |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for sc in scs:
        if sc.variants is None:
            continue
        vs = [
            v
            for v in sc.variants
            if any(
                r["server"] == v.server and r["scenario"] == sc.key and r.get("variant") == v.name
                for r in results
            )
        ]
        if not vs:
            continue

        def trio(metric: str, kind: str = "pct", vs: list[Variant] = vs, sc: Scenario = sc) -> str:
            parts = []
            for v in vs:
                xs = values(results, v.server, sc.key, metric, v.name)
                parts.append(fmt(statistics.median(xs), kind) if xs else DASH)
            return " / ".join(parts)

        missing = sum(
            int(r.get("missing_deliveries", 0) or 0) for r in results if r["scenario"] == sc.key
        )
        names = " / ".join(
            (f"{LABELS[v.server]} " if sc.group != "recovery" else "")
            + VARIANT_LABELS.get(v.name, v.name)
            for v in vs
        )
        rows.append(
            f"| {sc.title} | {names} | {trio('server_cpu_pct')} "
            f"| {trio('other_on_server_core_pct')} | {trio('irq_on_server_core_pct')} "
            f"| {trio('loadgen_cpu_pct')} | {trio('other_on_loadgen_core_pct')} "
            f"| {trio('ticks_with_offset_pct')} | {missing} |"
        )
    return head + "\n".join(rows) + "\n" if rows else ""


DISTS = ["python-socketio", "python-engineio", "aiohttp", "uvloop", "picows", "orjson"]


def versions() -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            return run_cmd(cmd, 60, cwd=ROOT, env=server_env()).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    v: dict[str, str] = {}
    v["python"] = out([PY, "-c", "import platform; print(platform.python_version())"])
    v["node"] = out(["node", "--version"])
    try:
        v["socket.io"] = json.loads((ROOT / "node_modules/socket.io/package.json").read_text())[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        v["socket.io"] = "?"
    v["fastsio"] = out([PY, "-c", "import fastsio; print(fastsio.__version__)"]) or "?"
    v["fastsio"] += f" ({SNAPSHOT_GIT}, copied when the run started)"
    code = (
        "import importlib.metadata as m\n"
        f"for d in {DISTS!r}:\n"
        "    try: print(d, m.version(d))\n    except Exception: print(d, '?')\n"
    )
    for line in out([PY, "-c", code]).splitlines():
        k, _, val = line.partition(" ")
        v[k] = val
    return v


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc), {model}, Linux {platform.release()}"


def backlog(results: list[dict[str, Any]], server: str) -> str:
    seen = sorted(
        {r["listen_backlog"] for r in results if r["server"] == server and r.get("listen_backlog")}
    )
    return "/".join(map(str, seen)) or "?"


def report(
    results: list[dict[str, Any]], scs: list[Scenario], args: argparse.Namespace, runtime_s: float
) -> str:
    v = versions()
    errors = [r for r in results if "error" in r]
    lines = [
        f"Run {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} — `python bench/run.py"
        f"{' --quick' if args.quick else ''}`: {args.rounds} round(s), {runtime_s / 60:.1f} min.",
        "",
        f"- Machine: {machine()}; server on CPU {SERVER_CPU}, load generator on CPU {LOADGEN_CPU}.",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "- Listen backlog (accept queue) as the servers set it: "
        + ", ".join(f"{LABELS[sv]} {backlog(results, sv)}" for sv in SERVERS)
        + ".",
        f"- Cells: median over rounds (min{DASH}max). Ratio: fastsio's median ÷ Node's",
        "  (for latency and memory, lower is better).",
        "",
    ]
    main = table(results, scs)
    if main:
        lines += [
            main,
            "How to trust it (medians over rounds; each cell fastsio / Node / python-socketio"
            " / ceiling):",
            "",
            health_table(results, scs),
        ]
    rec = recovery_table(results, scs)
    if rec:
        lines += [
            "Connection state recovery, fastsio only: `Server(connection_state_recovery=True)`"
            " against the defaults, alternating in the same rounds (median (min"
            f"{DASH}max); on ÷ off divides the medians):",
            "",
            rec,
        ]
    binary = binary_table(results, scs)
    if binary:
        lines += [
            "Binary broadcast: the same fan-out with a 1 KiB pad sent as a string (text) and as"
            " bytes (binary: a text packet plus one attachment frame per delivery), alternating"
            f" in the same rounds (median (min{DASH}max)):",
            "",
            binary,
        ]
    stall = stall_table(results, scs)
    if stall:
        lines += [
            f"Slow consumers: the same fan-out without and with {STALLED} extra receivers that"
            " never read their socket (same round; numeric cells median (min"
            f"{DASH}max), the others one value per round, separated by ·):",
            "",
            stall,
        ]
    vh = variant_health_table(results, scs)
    if vh:
        lines += [
            "How to trust these (medians over rounds; cells in the order of the second"
            " column):",
            "",
            vh,
        ]
    if errors:
        lines.append("Failed runs:\n")
        for r in errors:
            what = f"{r['server']}{' ' + r['variant'] if r.get('variant') else ''}"
            lines.append(f"- round {r['round']} {r['scenario']} {what}: {r['error']}")
        lines.append("")
    return "\n".join(lines)


def write_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n\n"
    new = f"{START}\n{block.rstrip()}\n{END}"
    if START in text and END in text:
        i, j = text.index(START), text.index(END) + len(END)
        text = text[:i] + new + text[j:]
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + new + "\n"
    README.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1 round, short durations (smoke test)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, --quick 1)")
    ap.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset of " + ",".join(SERVERS),
    )
    ap.add_argument(
        "--only", default="", help="comma-separated scenario key prefixes (e.g. fanout-1000,echo)"
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each run, wait up to this many seconds for both CPUs to be idle "
        "(default 3, --quick 1)",
    )
    ap.add_argument(
        "--readme",
        dest="readme",
        action="store_true",
        default=None,
        help="write the table into bench/README.md (default: yes, except with --quick)",
    )
    ap.add_argument("--no-readme", dest="readme", action="store_false")
    args = ap.parse_args()
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.readme is None:
        args.readme = not args.quick
    if args.quiet_wait is None:
        args.quiet_wait = 1.0 if args.quick else 3.0
    servers = [s for s in args.servers.split(",") if s]
    bad = set(servers) - set(SERVERS)
    if bad:
        sys.exit(f"bench: unknown server(s): {', '.join(sorted(bad))}")
    if sys.platform != "linux":
        sys.exit("bench: Linux only (taskset, /proc, epoll)")
    if (os.cpu_count() or 1) < 2:
        log("warning: one CPU: server and load generator will share it")

    scs = scenarios(args.quick)
    if args.only:
        prefixes = tuple(p for p in args.only.split(",") if p)
        scs = [s for s in scs if s.key.startswith(prefixes)]
    try:
        setup()
        run_all(args, scs, servers)
    finally:
        # the copy of fastsio/ is only for the run (and a second fastsio package lying
        # around the tree confuses tools)
        shutil.rmtree(SNAPSHOT, ignore_errors=True)


def run_all(args: argparse.Namespace, scs: list[Scenario], servers: list[str]) -> None:
    t_start = time.monotonic()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = RESULTS / f"{stamp}{'-quick' if args.quick else ''}.jsonl"
    results: list[dict[str, Any]] = []

    def runs(sc: Scenario, rnd: int) -> list[Variant]:
        if sc.variants is None:
            return [Variant(s) for s in servers]
        vs = [v for v in sc.variants if v.server in servers]
        return vs if rnd % 2 else vs[::-1]  # alternate which variant goes first

    total = sum(len(runs(sc, rnd)) for rnd in range(1, args.rounds + 1) for sc in scs)
    k = 0
    with raw.open("w") as fh:
        for rnd in range(1, args.rounds + 1):
            for sc in scs:
                for v in runs(sc, rnd):
                    k += 1
                    rec = run_one(v, sc, rnd, args.quiet_wait)
                    results.append(rec)
                    fh.write(json.dumps(rec) + "\n")
                    fh.flush()
                    summary = ", ".join(
                        f"{m} {rec[m]:.0f}"
                        for m, _, _ in sc.metrics
                        if isinstance(rec.get(m), (int, float))
                    )
                    what = f"{v.server}{' ' + v.name if v.name else ''}"
                    log(f"[{k}/{total}] round {rnd} {sc.key} {what}: {rec.get('error') or summary}")
    runtime = time.monotonic() - t_start
    block = report(results, scs, args, runtime)
    print(block)
    log(f"raw results: {raw.relative_to(ROOT)}")
    if args.readme:
        write_readme(block)
        log(f"table written to {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
