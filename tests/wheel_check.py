"""A built wheel as a user gets it: installed into a fresh virtualenv, run with no ``node`` on
PATH and outside any checkout, it serves the official client bundle it carries and
``python -m fastsio.demo`` works in a real browser (headless Chromium connects, upgrades to
WebSocket and chats).

    .venv/bin/python tests/wheel_check.py dist/fastsio_server-*.whl

Run by ``scripts/dev build`` on the wheel it built and, once, by ``tests/test_wheel_install.py``
on a wheel it builds. This script runs in the development venv (for aiohttp and the browser
driver); only the server runs from the fresh venv.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import Browser

SERVED = ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.js.map",
          "socket.io.min.js.map", "socket.io.esm.min.js.map")


def say(text: str) -> None:
    print(f"  wheel_check: {text}", file=sys.stderr, flush=True)


def path_without_node() -> str:
    """PATH minus every folder that holds ``node`` or ``npm``."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not any(os.path.exists(os.path.join(d, n)) for n in ("node", "npm"))]
    return os.pathsep.join(keep)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def install(wheel: Path, where: Path) -> Path:
    venv.create(where, with_pip=True)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    say(f"pip install {wheel.name} into a fresh venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel)], check=True)
    return python


def get(url: str) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read(), dict(r.headers)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise SystemExit(f"the demo exited with {proc.returncode}:\n{out}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the demo is not listening on {port} after {timeout} s")


async def browse(url: str) -> str:
    async with Browser.launch() as browser:
        page = await browser.new_page(url)
        status = await page.wait_for(
            "document.getElementById('status').textContent.includes('over websocket')"
            " && document.getElementById('status').textContent", 20)
        await page.evaluate(
            "(() => { const f = document.getElementById('send');"
            " f.elements.text.value = 'sent from the wheel'; f.requestSubmit(); })()")
        await page.wait_for(
            "[...document.querySelectorAll('#log div')].some(d =>"
            " d.textContent.endsWith(': sent from the wheel'))", 10)
        return str(status)


def check(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        carried = {n.rsplit("/", 1)[1]: z.read(n) for n in z.namelist()
                   if n.startswith("fastsio/client_dist/")}
    missing = [n for n in (*SERVED, "LICENSE", "VERSION") if n not in carried]
    if missing:
        raise SystemExit(f"{wheel.name} lacks fastsio/client_dist/{missing}")
    if b"MIT License" not in carried["LICENSE"]:
        raise SystemExit("fastsio/client_dist/LICENSE is not the client's MIT license")
    version = carried["VERSION"].decode().split()[0]
    say(f"{wheel.name} carries {version} ({len(carried)} files)")

    with tempfile.TemporaryDirectory(prefix="fastsio-wheel-") as tmp:
        python = install(wheel, Path(tmp) / "venv")
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "FASTSIO_CLIENT_DIST", "VIRTUAL_ENV")}
        env["PATH"] = os.pathsep.join([str(python.parent), path_without_node()])
        if shutil.which("node", path=env["PATH"]) or shutil.which("npm", path=env["PATH"]):
            raise SystemExit("node is still on the PATH given to the server")
        where = subprocess.run(
            [str(python), "-c", "import fastsio, fastsio.static as s; "
             "print(fastsio.__file__); print(s.find_client_dist())"],
            cwd=tmp, env=env, check=True, capture_output=True, text=True).stdout.split("\n")
        if not where[0].startswith(tmp) or not where[1].startswith(tmp):
            raise SystemExit(f"fastsio or its bundle did not come from the fresh venv: {where}")
        port = free_port()
        proc = subprocess.Popen(
            [str(python), "-m", "fastsio.demo", "--port", str(port)], cwd=tmp, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, proc)
            base = f"http://127.0.0.1:{port}"
            for name in SERVED:
                status, body, _ = get(f"{base}/socket.io/{name}")
                if status != 200 or body != carried[name]:
                    raise SystemExit(f"/socket.io/{name}: {status}, not the wheel's file")
            say(f"no node on PATH: /socket.io/ serves the bundle ({len(SERVED)} files)")
            status, page, _ = get(base + "/")
            if status != 200 or b"/socket.io/socket.io.js" not in page:
                raise SystemExit(f"the demo page: {status}")
            text = asyncio.run(browse(base + "/"))
            say(f"the demo in headless Chromium: {text!r}, a chat line came back")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the demo exited with {proc.returncode}:\n{out.decode()}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: wheel_check.py WHEEL")
    check(Path(sys.argv[1]).resolve())
    say("ok")
