"""One step of a coroutine, for the Python layer's handler calls."""

from collections.abc import Coroutine
from contextvars import Context
from typing import Any

def step(coro: Coroutine[Any, Any, Any], ctx: Context) -> tuple[bool, Any]: ...
