"""The README's five-line quick start, run as a user would (``python app.py``): it prints where
it listens without any logging set up, serves the page and the client bundle, and two browser
tabs in headless Chromium chat through it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

from tests.browser import Browser

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    text = README.read_text()
    m = re.search(r"<!-- quick-start[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its quick-start block"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_quick_start_is_five_lines():
    assert len(quick_start().strip().splitlines()) == 5


async def test_the_quick_start_runs_and_two_tabs_chat(tmp_path):
    code = quick_start()
    assert "io.run(port=3000)" in code
    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(code.replace("io.run(port=3000)", f"io.run(port={port})"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(app), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line == (f"fastsio listening on http://0.0.0.0:{port}/ "
                        f"(on this machine: http://127.0.0.1:{port}/)")
        url = f"http://127.0.0.1:{port}/"
        connected = ("document.getElementById('status').textContent.startsWith('connected')")
        async with Browser.launch() as browser:
            alice, bob = await browser.new_page(url), await browser.new_page(url)
            await alice.wait_for(connected, 15)
            await bob.wait_for(connected, 15)
            await alice.evaluate(
                "(() => { const f = document.getElementById('send');"
                " f.elements.text.value = 'hi bob'; f.requestSubmit(); })()")
            heard = await bob.wait_for(
                "[...document.querySelectorAll('#log div')].map(d => d.textContent)"
                ".find(t => t.endsWith(': hi bob'))", 10)
            alice_id = await alice.evaluate("socket.id")
            assert heard == f"{alice_id[:6]}: hi bob"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()
