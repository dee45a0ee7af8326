"""``Server(json_default=...)``: handlers emit pydantic models, dataclasses, datetimes and
Decimals; what cannot be encoded raises a ``TypeError`` that names the event, and nothing is
sent. Real python-socketio clients over WebSocket receive what a JS client would."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import logging
import uuid
from typing import Any

import pydantic
import pytest
import socketio

from tests.clients.sio import sio_clients


class Item(pydantic.BaseModel):
    name: str
    price: decimal.Decimal
    at: datetime.datetime


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    total: decimal.Decimal
    tags: set[str]


def default(value: Any) -> Any:
    """A typical hook: pydantic models as JSON-mode dicts, Decimals as strings, sets sorted."""
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


AT = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
OID = uuid.UUID("12345678-1234-5678-1234-567812345678")


async def _listen(client: Any, event: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.on(event, lambda *args: queue.put_nowait(list(args)))
    return queue


async def test_socket_emit_broadcast_and_ack_go_through_the_hook(make_server):
    io, url = await make_server(json_default=default)
    item = Item(name="tea", price=decimal.Decimal("3.50"), at=AT)
    order = Order(OID, decimal.Decimal("7.00"), {"b", "a"})
    io.on("order", lambda socket: order)  # the ack: a dataclass with a Decimal inside
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"])
        items = await _listen(client, "item")
        news = await _listen(client, "news")
        io.emit("news", {"total": decimal.Decimal("1.25"), "tags": frozenset({"x"})})
        assert await asyncio.wait_for(news.get(), 5) == [{"total": "1.25", "tags": ["x"]}]
        assert await client.call("order", timeout=5) == {
            "id": str(OID), "total": "7.00", "tags": ["a", "b"],
        }
        sock = next(iter(io.sockets.sockets.values()))
        sock.emit("item", item, AT, b"\x00\x01")  # the bytes stay a binary attachment
        assert await asyncio.wait_for(items.get(), 5) == [
            {"name": "tea", "price": "3.50", "at": "2026-01-02T03:04:05Z"},
            "2026-01-02T03:04:05+00:00",
            b"\x00\x01",
        ]


async def test_without_a_hook_the_error_names_the_event_and_nothing_is_sent(make_server):
    io, url = await make_server()
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"])
        heard = await _listen(client, "price")
        sock = next(iter(io.sockets.sockets.values()))
        with pytest.raises(TypeError, match=r"event 'price'.*Decimal.*json_default"):
            sock.emit("price", decimal.Decimal("1"))
        with pytest.raises(TypeError, match=r"event 'price'.*Decimal"):
            io.emit("price", [decimal.Decimal("1")])
        with pytest.raises(TypeError, match=r"event 'price'"):
            sock.emit("price", decimal.Decimal("1"), callback=lambda *a: None)
        assert not sock._acks  # the ack slot of the refused emit is gone
        sock.emit("price", "1.00")  # the connection is fine, and only this arrives
        assert await asyncio.wait_for(heard.get(), 5) == ["1.00"]
        await asyncio.sleep(0.05)
        assert heard.empty()


async def test_a_hook_that_cannot_help_names_the_event(make_server):
    io, url = await make_server(json_default=default)
    async with sio_clients() as connect:
        await connect(url, transports=["websocket"])
        sock = next(iter(io.sockets.sockets.values()))
        with pytest.raises(TypeError, match=r"event 'blob'.*complex is not JSON serializable"):
            sock.emit("blob", {"z": 1j})
        io.json_default = lambda value: value
        with pytest.raises(TypeError, match=r"event 'loop'.*json_default returned its argument"):
            sock.emit("loop", object())


async def test_an_unencodable_return_value_is_logged_and_no_ack_is_sent(make_server, caplog):
    io, url = await make_server()
    io.on("ask", lambda socket: decimal.Decimal("2"))
    io.on("ping", lambda socket: "pong")
    async with sio_clients() as connect:
        client = await connect(url, transports=["websocket"])
        with caplog.at_level(logging.ERROR, logger="fastsio"):
            with pytest.raises(socketio.exceptions.TimeoutError):
                await client.call("ask", timeout=0.5)
        assert any("the return value of event 'ask'" in r.getMessage() + str(r.exc_info)
                   for r in caplog.records), [r.getMessage() for r in caplog.records]
        assert await client.call("ping", timeout=5) == "pong"


def test_json_default_must_be_callable():
    import fastsio

    with pytest.raises(TypeError, match="json_default"):
        fastsio.Server(json_default="str")
