"""The first end-to-end path with python-socketio's client on every transport."""

from __future__ import annotations

import asyncio

import pytest
import socketio


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_event_ack_and_room_broadcast(make_server, transports):
    io, url = await make_server()
    seen = []

    @io.on("connection")
    def on_connection(socket):
        socket.join("lobby")

    @io.on("chat")
    async def chat(socket, text):
        io.to("lobby").emit("chat", text.upper())
        return "ok:" + text

    client = socketio.AsyncClient()
    got = asyncio.Event()

    @client.on("chat")
    def on_chat(text):
        seen.append(text)
        got.set()

    await client.connect(url, transports=transports)
    assert await client.call("chat", "hi", timeout=5) == "ok:hi"
    await asyncio.wait_for(got.wait(), 5)
    assert seen == ["HI"]
    await client.disconnect()
