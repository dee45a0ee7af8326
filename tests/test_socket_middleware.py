"""Per-packet middlewares, ``socket.use(fn(socket, [event, *args]))`` (the official server's
test/socket-middleware.ts): they run in order before the handlers, may rewrite the packet, and
refuse it by raising (the socket then gets an "error" event with the exception)."""

from __future__ import annotations

import asyncio

from tests.clients.loops import wait_for


async def test_middlewares_run_in_order_and_may_rewrite_the_packet(make_server, clients):
    io, url = await make_server()
    run: list[int] = []
    got: list[tuple] = []

    @io.on("connection")
    def setup(socket):
        def wrap(s, packet):
            assert s is socket
            assert packet == ["join", "woot"]
            packet.insert(0, "wrap")
            run.append(1)

        def check(s, packet):
            assert packet == ["wrap", "join", "woot"]
            run.append(2)

        assert socket.use(wrap) is wrap
        socket.use(check)
        socket.on("wrap", lambda a, b: got.append((a, b, len(run))))

    client = await clients.connect(url)
    await client.emit("join", "woot")
    await wait_for(lambda: got)
    assert got == [("join", "woot", 2)]


async def test_middleware_error_refuses_the_packet(make_server, clients):
    io, url = await make_server()
    errors: list[BaseException] = []
    unexpected: list[object] = []

    @io.on("connection")
    def setup(socket):
        def refuse(s, packet):
            raise Exception("Authentication error")

        socket.use(refuse)
        socket.use(lambda s, packet: unexpected.append("second middleware"))
        socket.on("join", lambda *a: unexpected.append("handler"))
        socket.on("error", errors.append)

    io.on("join", lambda s, *a: unexpected.append("namespace handler"))
    client = await clients.connect(url)
    await client.emit("join", "woot")
    await wait_for(lambda: errors)
    assert len(errors) == 1
    assert isinstance(errors[0], Exception)
    assert str(errors[0]) == "Authentication error"
    assert unexpected == []


async def test_async_middlewares(make_server, clients):
    io, url = await make_server()
    got: list[tuple] = []
    errors: list[BaseException] = []

    @io.on("connection")
    def setup(socket):
        async def check(s, packet):
            await asyncio.sleep(0.01)
            if packet[0] == "forbidden":
                raise PermissionError("no")
            packet[1] = packet[1].upper()

        socket.use(check)
        socket.on("say", lambda text: got.append(("say", text)))
        socket.on("forbidden", lambda text: got.append(("forbidden", text)))
        socket.on("error", errors.append)

    client = await clients.connect(url)
    await client.emit("say", "hello")
    await wait_for(lambda: got)
    await client.emit("forbidden", "x")
    await wait_for(lambda: errors)
    assert got == [("say", "HELLO")]
    assert isinstance(errors[0], PermissionError)


async def test_middleware_sees_binary_arguments(make_server, clients):
    io, url = await make_server()
    packets: list[list] = []
    got: list[tuple] = []

    @io.on("connection")
    def setup(socket):
        socket.use(lambda s, packet: packets.append(list(packet)))
        socket.on("bin", lambda *a: got.append(a))

    client = await clients.connect(url)
    await client.emit("bin", (b"\x00\x01", {"k": b"\x02"}))
    await wait_for(lambda: got)
    assert packets == [["bin", b"\x00\x01", {"k": b"\x02"}]]
    assert got == [(b"\x00\x01", {"k": b"\x02"})]


async def test_refused_packet_gets_no_ack_and_the_socket_stays(make_server, clients):
    io, url = await make_server()
    errors: list[BaseException] = []

    @io.on("connection")
    def setup(socket):
        def refuse_secret(s, packet):
            if packet[0] == "secret":
                raise ValueError("refused")

        socket.use(refuse_secret)
        socket.on("error", errors.append)

    io.on("secret", lambda s: "leaked")
    io.on("public", lambda s: "fine")
    raw = await clients.raw(url)
    await raw.send('421["secret"]')
    await raw.send('422["public"]')
    assert await raw.recv() == '432["fine"]'
    await wait_for(lambda: errors)
    assert await raw.silent(0.05)
    assert io.sockets.sockets[raw.sid].connected


async def test_middleware_applies_to_its_own_socket_only(make_server, clients):
    io, url = await make_server()
    seen: list[str] = []
    first: list[bool] = []

    @io.on("connection")
    def setup(socket):
        if not first:
            first.append(True)
            socket.use(lambda s, packet: seen.append(s.id))

    io.on("ev", lambda s: "ok")
    a = await clients.raw(url)
    b = await clients.raw(url)
    await b.send('421["ev"]')
    assert await b.recv() == '431["ok"]'
    await a.send('421["ev"]')
    assert await a.recv() == '431["ok"]'
    assert seen == [a.sid]


async def test_error_listener_may_disconnect_the_socket(make_server, clients):
    io, url = await make_server()
    reasons: list[str] = []

    @io.on("connection")
    def setup(socket):
        def refuse(s, packet):
            raise Exception("unauthorized event")

        socket.use(refuse)
        socket.on("error", lambda err: socket.disconnect())
        socket.on("disconnect", reasons.append)

    raw = await clients.raw(url)
    await raw.send('42["anything"]')
    assert await raw.recv() == "41"
    assert reasons == ["server namespace disconnect"]


async def test_any_listeners_see_the_packet_before_the_middlewares(make_server, clients):
    # The official server calls onAny listeners when the packet arrives, before running
    # socket.use() middlewares: a packet a middleware refuses has still been seen by them.
    io, url = await make_server()
    any_seen: list[tuple] = []
    errors: list[BaseException] = []

    @io.on("connection")
    def setup(socket):
        def refuse(s, packet):
            raise Exception("refused")

        socket.on_any(lambda *a: any_seen.append(a))
        socket.use(refuse)
        socket.on("error", errors.append)

    client = await clients.connect(url)
    await client.emit("refused-event", 1)
    await wait_for(lambda: errors)
    assert any_seen == [("refused-event", 1)]
