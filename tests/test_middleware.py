"""Connection middlewares, ``@io.use def mw(socket)`` (the official server's test/middleware.ts):
they run in order before ``connection``; raising ``ConnectionRefused(message, data=...)`` (or any
exception) answers the client with a CONNECT_ERROR."""

from __future__ import annotations

import asyncio
import re

import pytest
import socketio

import fastsio
from tests.clients.loops import wait_for


async def test_middlewares_run_in_order_before_connect(make_server, clients):
    io, url = await make_server()
    run: list[int] = []

    @io.use
    def first(socket):
        assert isinstance(socket, fastsio.Socket)
        run.append(1)

    def second(socket):
        assert isinstance(socket, fastsio.Socket)
        run.append(2)

    assert io.use(second) is second
    client = clients.new()
    at_connect: list[list[int]] = []
    client.on("connect", lambda: at_connect.append(list(run)))
    await clients.connect(url, client)
    await wait_for(lambda: at_connect)
    assert at_connect == [[1, 2]]


@pytest.mark.parametrize("error", [fastsio.ConnectionRefused("Authentication error"),
                                   Exception("Authentication error")],
                         ids=["ConnectionRefused", "Exception"])
async def test_middleware_errors_refuse_the_connection(make_server, clients, error):
    io, url = await make_server()
    later: list[object] = []
    connections: list[object] = []

    @io.use
    def refuse(socket):
        raise error

    io.use(later.append)
    io.on("connection", connections.append)
    client = clients.new()
    errors: list[object] = []
    connects: list[object] = []
    client.on("connect_error", errors.append)
    client.on("connect", lambda: connects.append(1))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(url, client)
    await wait_for(lambda: errors)
    assert errors == [{"message": "Authentication error"}]
    assert later == connections == connects == []
    # On the wire: CONNECT_ERROR with the message only.
    raw = await clients.raw(url, None)
    assert await raw.try_connect() == '44{"message":"Authentication error"}'
    assert io.sockets.sockets == {}


async def test_middleware_error_carries_data(make_server, clients):
    io, url = await make_server()

    @io.use
    def refuse(socket):
        raise fastsio.ConnectionRefused("Authentication error", data={"a": "b", "c": 3})

    client = clients.new()
    errors: list[object] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(url, client)
    await wait_for(lambda: errors)
    assert errors == [{"message": "Authentication error", "data": {"a": "b", "c": 3}}]
    raw = await clients.raw(url, None)
    assert await raw.try_connect() == (
        '44{"message":"Authentication error","data":{"a":"b","c":3}}')


async def test_refusal_message_defaults(make_server, clients):
    io, url = await make_server()
    chat = io.of("/chat")
    quiet = io.of("/quiet")

    @chat.use
    def default(socket):
        raise fastsio.ConnectionRefused()

    @quiet.use
    def bare(socket):
        raise KeyError

    raw = await clients.raw(url, None)
    assert await raw.try_connect("/chat") == '44/chat,{"message":"Connection refused"}'
    assert await raw.try_connect("/quiet") == '44/quiet,{"message":"KeyError"}'


async def test_connection_fires_only_after_the_middlewares(make_server, clients):
    io, url = await make_server()

    @io.use
    def name_it(socket):
        socket.data["name"] = "guillermo"

    names: list[object] = []
    io.on("connection", lambda s: names.append(s.data["name"]))
    await clients.connect(url)
    await wait_for(lambda: names)
    assert names == ["guillermo"]


async def test_connection_fires_only_after_lengthy_middlewares(make_server, clients):
    io, url = await make_server()
    authenticated: list[bool] = []

    @io.use
    async def slow(socket):
        await asyncio.sleep(0.1)
        authenticated.append(True)

    seen: list[list[bool]] = []
    io.on("connection", lambda s: seen.append(list(authenticated)))
    client = clients.new()
    at_connect: list[list[bool]] = []
    client.on("connect", lambda: at_connect.append(list(authenticated)))
    await clients.connect(url, client)
    await wait_for(lambda: at_connect)
    assert seen == [[True]]
    assert at_connect == [[True]]


async def test_middleware_result_is_ignored_once_the_connection_closed(make_server, clients):
    io, url = await make_server()
    raw = await clients.raw(url, None)
    done: list[fastsio.Socket] = []
    connections: list[object] = []
    disconnects: list[object] = []

    @io.use
    async def close_first(socket):
        await raw.ws.close()  # the client goes away while the middleware runs
        await wait_for(lambda: socket.client.conn.closed)
        socket.join("room")
        done.append(socket)

    io.on("connection", connections.append)
    io.on("disconnect", lambda s, r: disconnects.append(r))
    await raw.send("40")
    await wait_for(lambda: done)
    await asyncio.sleep(0.05)
    assert connections == []
    assert disconnects == []
    assert io.sockets.sockets == {}
    assert not done[0].connected
    assert "room" not in io.sockets.adapter.rooms


async def test_namespace_middlewares_run_in_order(make_server, clients):
    io, url = await make_server()
    result: list[int] = []
    wrong: list[object] = []
    io.use(wrong.append)  # "/" middlewares do not run for "/chat"
    chat = io.of("/chat")
    for n in (1, 2, 3):
        async def step(socket, n=n):
            result.append(n)
            await asyncio.sleep(0.01)

        chat.use(step)
    client = clients.new()
    at_connect: list[list[int]] = []
    client.on("connect", lambda: at_connect.append(list(result)), namespace="/chat")
    await clients.connect(url, client, namespaces=["/chat"])
    await wait_for(lambda: at_connect)
    assert at_connect == [[1, 2, 3]]
    assert wrong == []


@pytest.mark.parametrize("transports", [("polling",), ("websocket",), ("polling", "websocket")])
async def test_connect_with_a_middleware_on_every_transport(make_server, clients, transports):
    # The official "should disable the merge of handshake packets": with a middleware the
    # CONNECT answer comes later than the Engine.IO handshake, on any transport.
    io, url = await make_server()
    ran: list[str] = []
    io.use(lambda s: ran.append(s.transport))
    client = await clients.connect(url, transports=transports)
    assert client.connected
    assert len(ran) == 1
    raw = await clients.raw(url, None)
    assert (await raw.try_connect()).startswith('40{"sid":')


async def test_middleware_on_a_custom_namespace_only(make_server, clients):
    io, url = await make_server()
    ran: list[str] = []
    io.of("/chat").use(lambda s: ran.append(s.nsp.name))
    plain = await clients.connect(url)
    chat = await clients.connect(url, namespaces=["/chat"])
    assert plain.connected and chat.connected
    assert ran == ["/chat"]


async def test_connected_only_after_the_middlewares(make_server, clients):
    io, url = await make_server()
    during: list[tuple] = []
    after: list[tuple] = []

    @io.use
    def check(socket):
        during.append((socket.connected, socket.disconnected, len(io.of("/").sockets)))

    io.on("connection", lambda s: after.append((s.connected, s.disconnected,
                                                len(io.of("/").sockets))))
    await clients.connect(url)
    await wait_for(lambda: after)
    assert during == [(False, True, 0)]
    assert after == [(True, False, 1)]


async def test_middleware_sees_the_handshake_and_refuses_by_auth(make_server, clients):
    io, url = await make_server()

    @io.use
    def check_token(socket):
        if socket.handshake.auth.get("token") != "secret":
            raise fastsio.ConnectionRefused("unauthorized", data={"need": "token"})
        socket.data["user"] = socket.handshake.query.get("user")

    users: list[object] = []
    io.on("connection", lambda s: users.append(s.data["user"]))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(url, auth={"token": "wrong"})
    await clients.connect(url + "?user=tobi", auth={"token": "secret"})
    await wait_for(lambda: users)
    assert users == ["tobi"]


async def test_refused_client_keeps_its_connection_and_may_retry(make_server, clients):
    io, url = await make_server()
    attempts: list[int] = []

    @io.use
    def second_time_lucky(socket):
        attempts.append(1)
        if len(attempts) == 1:
            raise fastsio.ConnectionRefused("not yet")

    raw = await clients.raw(url, None)
    assert await raw.try_connect() == '44{"message":"not yet"}'
    assert (await raw.try_connect()).startswith('40{"sid":')
    assert len(io.sockets.sockets) == 1


async def test_rooms_joined_by_a_successful_middleware_are_kept(make_server, clients):
    io, url = await make_server()
    io.use(lambda s: s.join(["vip", "lobby"]))
    rooms: list[set] = []
    io.on("connection", lambda s: rooms.append(s.rooms))
    raw = await clients.raw(url)
    await wait_for(lambda: rooms)
    assert rooms == [{raw.sid, "vip", "lobby"}]
    io.to("vip").emit("hello")
    assert await raw.recv() == '42["hello"]'


async def test_middleware_slower_than_connect_timeout(make_server, clients):
    io, url = await make_server(connect_timeout=0.1)
    release = asyncio.Event()
    connections: list[object] = []

    @io.use
    async def too_slow(socket):
        await release.wait()

    io.on("connection", connections.append)
    raw = await clients.raw(url, None)
    await raw.send("40")
    assert await raw.until_closed(timeout=2) == []
    release.set()
    await asyncio.sleep(0.05)
    assert connections == []
    assert io.sockets.sockets == {}


async def test_dynamic_namespace_middlewares_apply_to_every_child(make_server, clients):
    io, url = await make_server()
    parent = io.of(re.compile(r"^/room-\d+$"))
    ran: list[str] = []

    @parent.use
    def only_even(socket):
        ran.append(socket.nsp.name)
        if int(socket.nsp.name.rsplit("-", 1)[1]) % 2:
            raise fastsio.ConnectionRefused("odd")

    raw = await clients.raw(url, None)
    assert (await raw.try_connect("/room-2")).startswith('40/room-2,{"sid":')
    assert await raw.try_connect("/room-3") == '44/room-3,{"message":"odd"}'
    assert ran == ["/room-2", "/room-3"]
