"""The core's coroutine step (``_core.coro.step``), which ``Server._call`` uses for every async
handler: the value of a coroutine that returns, the object one suspends on, what one raises,
and the context each step runs in."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from fastsio._core.coro import step

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")


async def returns(x):
    return ("got", x)


async def sets_and_returns():
    var.set("inner")
    return var.get()


class Yield:
    def __await__(self):
        sent = yield "suspended here"
        return sent


async def suspends():
    sent = await Yield()
    return ("resumed with", sent)


async def raises():
    raise ValueError("boom")


def test_a_coroutine_that_returns_gives_its_value():
    coro = returns(3)
    assert step(coro, contextvars.copy_context()) == (True, ("got", 3))
    with pytest.raises(RuntimeError):  # it is finished
        coro.send(None)


def test_the_step_runs_in_the_given_context_and_leaves_it():
    ctx = contextvars.copy_context()
    assert step(sets_and_returns(), ctx) == (True, "inner")
    assert ctx[var] == "inner"
    assert var.get() == "outer"  # the caller's context is untouched


def test_a_coroutine_that_suspends_gives_what_it_yielded_and_can_go_on():
    coro = suspends()
    assert step(coro, contextvars.copy_context()) == (False, "suspended here")
    with pytest.raises(StopIteration) as stop:
        coro.send("later")
    assert stop.value.value == ("resumed with", "later")


def test_what_a_coroutine_raises_propagates_and_the_context_is_left():
    ctx = contextvars.copy_context()
    with pytest.raises(ValueError, match="boom"):
        step(raises(), ctx)
    token = var.set("after")  # the current context is the caller's again, not ctx
    assert var not in ctx
    var.reset(token)


def test_cancellation_raised_inside_propagates():
    async def cancelled():
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        step(cancelled(), contextvars.copy_context())


def test_none_is_refused():
    with pytest.raises(TypeError):
        step(None, contextvars.copy_context())  # type: ignore[arg-type]
