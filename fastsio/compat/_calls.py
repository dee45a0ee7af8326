"""Calling python-socketio style handlers whose signatures vary (``connect(sid, environ)`` or
``connect(sid, environ, auth)``, ``disconnect(sid)`` or ``disconnect(sid, reason)``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

# The events whose last argument was added in a later python-socketio release: a handler
# written for the older signature gets one argument fewer.
_OPTIONAL_LAST = frozenset(("connect", "disconnect"))


def _max_positional(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` takes; ``None`` for any number (or unknown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def call_handler(fn: Callable[..., Any], event: str, args: tuple[Any, ...]) -> Any:
    """``fn(*args)``, dropping the trailing ``auth`` / ``reason`` argument that a handler of the
    older signature does not take. Decided from the signature, so a ``TypeError`` raised inside
    the handler is never mistaken for a signature mismatch."""
    if event in _OPTIONAL_LAST and args:
        limit = _max_positional(fn)
        if limit is not None and limit < len(args):
            args = args[:limit]
    return fn(*args)
