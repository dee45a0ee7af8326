"""Logging what clients cause, so that no client can flood the log.

A malformed frame, a client that stopped reading, a WebSocket handshake that never finished:
each is one connection's business, and a client can cause one per connection it opens. Each is
logged at DEBUG; at INFO, at most one line per kind every :data:`EVERY` seconds, carrying how
many more of that kind happened meanwhile. Errors of the server itself (a handler that raised,
a bug) stay at ERROR.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any

EVERY = 60.0


class ClientErrors:
    """One kind of client-caused event, on ``logger``: DEBUG each, INFO rate-limited."""

    __slots__ = ("_next", "_suppressed", "every", "level", "logger")

    def __init__(self, logger: logging.Logger, every: float = EVERY,
                 level: int = logging.INFO) -> None:
        self.logger = logger
        self.every = every
        self.level = level
        self._next = 0.0
        self._suppressed = 0

    def log(self, msg: str, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug(msg, *args, **kwargs)
            return
        self._next = now + self.every
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            msg += " (and %d more like it in the last %g s, at DEBUG)"
            args = (*args, suppressed, self.every)
        self.logger.log(self.level, msg, *args, **kwargs)


# What picows logs for a client's doing (per connection), by message format.
_PICOWS_CLIENT_ERRORS = (
    "WS parser error: %s, initiate disconnect",  # a malformed frame
)


class PicowsLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger of the WebSocket connections (the core's ``WebSocketProtocol`` and the picows
    ``WSTransport`` it sends through), in picows's words. A malformed client frame is logged at
    ERROR: it goes to DEBUG (and to a rate-limited INFO); picows's INFO lines go to DEBUG. What
    is reported about our own code (a listener that raised) stays at ERROR, rate-limited, since
    client input may set it off too."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        # The logger's own method, not the adapter's frame around it.
        self.isEnabledFor = logger.isEnabledFor  # type: ignore[method-assign]
        self.client_errors = ClientErrors(logger)
        self.failures = ClientErrors(logger, level=logging.ERROR)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        # straight to the one check that matters
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.log(logging.DEBUG, msg, *args, **kwargs)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            if msg in _PICOWS_CLIENT_ERRORS:
                self.client_errors.log(msg, *args, **kwargs)
            else:
                self.failures.log(msg, *args, **kwargs)
        elif level == logging.INFO:
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.log(logging.DEBUG, msg, *args, **kwargs)
        else:
            self.logger.log(level, msg, *args, **kwargs)


# Clients that stopped reading while packets kept coming for them (either transport).
slow_clients = ClientErrors(logging.getLogger("fastsio.engine"))
