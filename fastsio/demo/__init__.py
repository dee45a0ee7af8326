"""A small chat: the page loads the official client bundle that fastsio serves itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastsio

PAGE = Path(__file__).with_name("index.html")


def create_app() -> fastsio.Server:
    io = fastsio.Server(static_files={"/": PAGE, "/index.html": PAGE})

    @io.on("connection")
    def connected(socket: fastsio.Socket) -> None:
        name = str(socket.handshake.auth.get("name") or "anon")[:32]
        socket.data["name"] = name
        socket.join("lobby")
        socket.to("lobby").emit("system", f"{name} joined")

    @io.on("chat")
    def chat(socket: fastsio.Socket, text: Any) -> str:
        text = str(text)[:500]
        io.to("lobby").emit("chat", socket.data["name"], text)
        return "ok"

    @io.on("disconnect")
    def left(socket: fastsio.Socket, reason: str) -> None:
        io.to("lobby").emit("system", f"{socket.data.get('name', 'anon')} left ({reason})")

    return io
