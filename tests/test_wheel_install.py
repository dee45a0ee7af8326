"""The wheel a user installs (``pip install fastsio-server``), built from this checkout: it is a
manylinux wheel (auditwheel), and installed into a fresh virtualenv with no ``node`` on PATH it
serves the client bundle it carries and the demo works in headless Chromium
(``tests/wheel_check.py``, which ``scripts/dev build`` runs too). About 40 s: the one test of
the suite that compiles the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.long
@pytest.mark.timeout(300)
def test_the_built_wheel_serves_the_bundle_and_the_demo_without_node(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("fastsio_server-*.whl")
    if sys.platform == "linux":
        shown = subprocess.run(
            [sys.executable, "-m", "auditwheel", "show", str(wheel)],
            check=True, capture_output=True, text=True,
        ).stdout
        assert "manylinux_" in shown, shown
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "wheel_check.py"), str(wheel)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "a chat line came back" in result.stderr
