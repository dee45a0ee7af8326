"""The request target as the HTTP front reads it: the query (``parse_query``: what
``parse_qsl(keep_blank_values=True)`` gives, first value kept, without its per-field calls when
there is nothing to unescape) and the path, for the engine and the hooks (``req.query``)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsio.engine.http import Request, parse_query


def reference(qs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in parse_qsl(qs, keep_blank_values=True):
        out.setdefault(k, v)
    return out


CASES = [
    "",
    "EIO=4&transport=websocket",
    "EIO=4&transport=polling&sid=abc_-DEF&t=PaX3x1",
    "a&b=&=c&&d==e&a=2",
    "a=1&a=2&A=3",
    "x=%41%zz&y=a+b&z=%2B",
    "&&&",
    "=",
    "é=ü&k=v;w",
]


def test_known_queries():
    for qs in CASES:
        assert parse_query(qs) == reference(qs), qs


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab=&%+;2F é", max_size=24))
def test_any_query_reads_as_parse_qsl_does(qs):
    assert parse_query(qs) == reference(qs)


def test_the_request_reads_path_and_query():
    req = Request("GET", "/socket.io/?EIO=4&transport=polling&t=1", [], b"", "1.1", True, "")
    assert req.path == "/socket.io/" and req.query == {
        "EIO": "4", "transport": "polling", "t": "1"
    }
    req = Request("GET", "/a%20b/?q=%C3%A9", [], b"", "1.1", True, "")
    assert req.path == "/a b/" and req.query == {"q": "é"}
