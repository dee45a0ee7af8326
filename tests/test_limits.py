"""Hostile Socket.IO input: each limit refuses the offending connection and nothing else."""

from __future__ import annotations

import pytest

from tests.clients.loops import wait_for

DEEP = '42["x",' + "[" * 10_000 + "]" * 10_000 + "]"
WIDE = '42["x"' + ",1" * 50_000 + "]"


@pytest.fixture
async def pair(make_server, clients):
    async def factory(**options):
        io, url = await make_server(**options)
        reasons: list[str] = []
        io.on("disconnect", lambda s, r: reasons.append(r))
        io.on("echo", lambda s, x: x)
        bad = await clients.raw(url)
        good = await clients.raw(url)
        return io, bad, good, reasons

    return factory


async def assert_only_bad_closed(bad, good, reasons):
    assert await bad.closed()
    await wait_for(lambda: reasons)
    assert reasons == ["forced close"]
    await good.send('421["echo","alive"]')
    assert await good.recv() == '431["alive"]'


@pytest.mark.parametrize("packet", [DEEP, WIDE], ids=["10000-deep", "50000-args"])
async def test_deep_or_wide_events_close_the_sender_only(pair, packet):
    _, bad, good, reasons = await pair()
    await bad.send(packet)
    await assert_only_bad_closed(bad, good, reasons)


async def test_limits_are_options(pair):
    io, bad, good, reasons = await pair(max_json_depth=3, max_event_args=3)
    got = []
    io.on("x", lambda s, *a: got.append(a))
    await good.send('42["x",[[1]],2]')
    await wait_for(lambda: got)
    assert got == [([[1]], 2)]
    await bad.send('42["x",1,2,3]')
    await assert_only_bad_closed(bad, good, reasons)


async def test_too_many_attachments(pair):
    _, bad, good, reasons = await pair(max_attachments=2)
    await bad.send('453-["x",{"_placeholder":true,"num":0}]')
    await assert_only_bad_closed(bad, good, reasons)


async def test_attachments_over_the_byte_limit(pair):
    _, bad, good, reasons = await pair(max_attachment_bytes=1000)
    await bad.send('452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    await bad.send(b"a" * 600)
    await bad.send(b"b" * 600)
    await assert_only_bad_closed(bad, good, reasons)


async def test_attachments_that_never_come_time_out(pair):
    _, bad, good, reasons = await pair(attachment_timeout=0.2)
    await bad.send('451-["x",{"_placeholder":true,"num":0}]')
    await assert_only_bad_closed(bad, good, reasons)


async def test_binary_frame_without_a_binary_packet(pair):
    _, bad, good, reasons = await pair()
    await bad.send(b"\x00\x01")
    await assert_only_bad_closed(bad, good, reasons)


async def test_namespace_name_length(pair):
    _, bad, good, reasons = await pair(max_namespace_length=10)
    await bad.send("40/" + "n" * 20 + ",")
    assert await bad.closed()
    await good.send('421["echo","alive"]')
    assert await good.recv() == '431["alive"]'
    assert reasons == ["forced close"]
