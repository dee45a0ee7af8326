"""Cython core: wire formats, room index. No asyncio, no user code."""
