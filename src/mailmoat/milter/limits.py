"""Resource bounds of the milter front: header size and connection count.

Contract: ``HEADERS_TOO_BIG`` is the reply for a message whose header fields
pass ``milter.max_headers`` or ``milter.max_header_bytes``
(``headers_over(config, fields, size)`` says when). ``ConnectionCap``
judges each new MTA connection against ``milter.max_connections``:
``admit(open_now)`` is False past it, counts the refusal in ``refused`` and
logs a warning naming the setting, at most once a minute (a connection
flood must not flood the log as well).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mailmoat.config import MilterConfig

log = logging.getLogger("mailmoat.milter")

HEADERS_TOO_BIG = "552 5.3.4 Message header size or count exceeds the limit"
LOG_EVERY = 60.0


def headers_over(config: MilterConfig, fields: int, size: int) -> bool:
    """True when ``fields`` header fields of ``size`` bytes pass a bound."""
    return fields > config.max_headers or size > config.max_header_bytes


class ConnectionCap:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.refused = 0
        self._last_log = -LOG_EVERY

    def admit(self, config: MilterConfig, open_now: int, peer: object) -> bool:
        """``open_now`` counts the connections already served, not this one."""
        if open_now < config.max_connections:
            return True
        self.refused += 1
        now = self.clock()
        if now - self._last_log >= LOG_EVERY:
            self._last_log = now
            log.warning(
                "milter: %d connections open, the limit (milter.max_connections = %d): "
                "closing new ones (%d closed so far, last from %s); the MTA applies its "
                "milter_default_action",
                open_now,
                config.max_connections,
                self.refused,
                peer,
            )
        return False
