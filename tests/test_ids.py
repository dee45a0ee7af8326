"""Random ids (``fastsio._core.ids``): ``secrets.token_urlsafe``'s format, from bytes read from
the OS a few KiB at a time; never repeated, not shared with a forked child."""

from __future__ import annotations

import base64
import os
import re

import pytest

from fastsio._core import ids

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


@pytest.mark.parametrize("nbytes", [1, 2, 3, 15, 16, 17, 255, 256])
def test_format_is_token_urlsafe(nbytes: int) -> None:
    for _ in range(50):
        tok = ids.token(nbytes)
        assert _URLSAFE.fullmatch(tok)
        assert len(tok) == len(base64.urlsafe_b64encode(b"\0" * nbytes).rstrip(b"="))
        # decodes back to exactly nbytes bytes, and encodes again to the same text
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        assert len(raw) == nbytes
        assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == tok


@pytest.mark.parametrize("nbytes", [0, -1, 257])
def test_bad_sizes_are_refused(nbytes: int) -> None:
    with pytest.raises(ValueError):
        ids.token(nbytes)


def test_no_repeats_across_many_pool_refills() -> None:
    # 4096-byte pool: 15-byte ids refill it every 273 ids; 50,000 ids cross it ~180 times.
    seen = {ids.token(15) for _ in range(50_000)}
    assert len(seen) == 50_000


def test_bytes_look_uniform() -> None:
    # Each of the 64 symbols at the 4 positions of a 3-byte group is equally likely: over
    # 20,000 ids of 15 bytes (400,000 symbols) no symbol strays far from 6,250.
    counts: dict[str, int] = {}
    for _ in range(20_000):
        for ch in ids.token(15):
            counts[ch] = counts.get(ch, 0) + 1
    assert len(counts) == 64
    assert all(5_600 < c < 6_900 for c in counts.values()), counts


def test_forked_child_does_not_repeat_the_parent() -> None:
    ids.token(15)  # the pool is filled in the parent before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(w, " ".join(ids.token(15) for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    child = b"".join(chunks).decode().split()
    parent = [ids.token(15) for _ in range(100)]
    assert len(child) == 100
    assert not set(child) & set(parent)
