"""The suite's own layout: tests share code only through tests/clients (the client toolkit)
and helper modules, never by importing a test module or a conftest (pytest loads those itself;
a second import runs their module code twice and ties one test file to another's internals)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(source: str, path: Path) -> list[str]:
    """Every module ``source`` (the file ``path``) imports, as an absolute dotted name
    (relative imports resolved), and every name imported from a package."""
    package = list(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])
    found: list[str] = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append(module)
            # ``from . import test_x`` names the module in the alias.
            found += [f"{module}.{alias.name}" for alias in node.names]
    return found


def forbidden(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("tests") and (last.startswith("test_") or last == "conftest")


def test_no_module_of_the_suite_imports_a_test_module_or_a_conftest() -> None:
    """Nor do the benchmarks (bench/ reuses the toolkit the same way)."""
    paths = sorted(TESTS.rglob("*.py")) + sorted((TESTS.parent / "bench").rglob("*.py"))
    offenders = {
        str(path.relative_to(TESTS.parent)): sorted(
            {m for m in imported_modules(path.read_text(), path) if forbidden(m)}
        )
        for path in paths
    }
    assert len(paths) > 100  # the scan saw the suite
    assert {p: m for p, m in offenders.items() if m} == {}


def test_the_check_sees_every_kind_of_import() -> None:
    """The scanner is not vacuous: each way of importing another test module is caught."""
    sample = TESTS / "interop" / "sample.py"
    sources = {
        "import tests.test_socket": ["tests.test_socket"],
        "from tests.test_socket import x": ["tests.test_socket", "tests.test_socket.x"],
        "from . import test_js_client": ["tests.interop", "tests.interop.test_js_client"],
        "from ..conftest import wait_for": ["tests.conftest", "tests.conftest.wait_for"],
        "from .conftest import js_client": ["tests.interop.conftest",
                                            "tests.interop.conftest.js_client"],
    }
    for source, expected in sources.items():
        found = imported_modules(source + "\n", sample)
        assert found == expected, source
        assert any(forbidden(m) for m in found), source
    assert not forbidden("tests.clients.sio") and not forbidden("tests.interop.node_helpers")
