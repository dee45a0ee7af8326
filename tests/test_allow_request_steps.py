"""``allow_request`` is asked in the handshake request's own dispatch: a sync answer is acted on
at once, with no task; only an async one (a coroutine or a future) is awaited in a task. The
answers themselves (accept, refuse, message, raising) are tested in test_engine_handshake.py
and test_handshake.py."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.clients.http import json_error
from tests.clients.wire import eio_url
from tests.clients.ws import ws_open


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_allow_request_gets_a_task_only_when_async(make_server, kind):
    where: list[tuple[str | None, bool]] = []

    def decide(req):
        task = asyncio.current_task()
        where.append((req.query.get("transport"), task is not None and task in io.engine._tasks))
        return req.query.get("token") != "no"

    async def decide_async(req):
        return decide(req)

    io, url = await make_server(allow_request=decide if kind == "sync" else decide_async)
    async with aiohttp.ClientSession() as http:
        async with http.get(eio_url(url)) as r:
            assert r.status == 200
        async with http.get(eio_url(url, token="no")) as r:
            assert await json_error(r) == (403, {"code": 4, "message": "Forbidden"})
        ws, _ = await ws_open(http, url)
        await ws.close()
    in_task = kind == "async"
    assert where == [("polling", in_task), ("polling", in_task), ("websocket", in_task)]
