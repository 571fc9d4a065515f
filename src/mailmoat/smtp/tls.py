"""STARTTLS (RFC 3207) on a client's wire connection.

Contract: ``pipelined_after_starttls(conn, client_ip)`` is True when the
client sent anything after STARTTLS before our ``220`` (RFC 3207 forbids
it; acted on inside TLS it would be a command injection, CVE-2011-0411):
that input is then discarded and logged, and the caller refuses and hangs
up. ``upgrade(conn, context, client_ip)`` runs the server side of the TLS
handshake on the connection's transport within ``TLS_HANDSHAKE_SECONDS``;
False (logged) when it failed or timed out: the caller hangs up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from mailmoat.wire.connection import Connection

log = logging.getLogger("mailmoat.smtp")

TLS_HANDSHAKE_SECONDS = 30.0


def pipelined_after_starttls(conn: Connection, client_ip: str) -> bool:
    pending = conn.pending()
    if not pending:
        return False
    log.info("client=%s sent %d bytes after STARTTLS; refused", client_ip, pending)
    conn.discard_pending()
    return True


async def upgrade(conn: Connection, context: ssl.SSLContext, client_ip: str) -> bool:
    transport = conn.transport
    assert transport is not None
    loop = asyncio.get_running_loop()
    # start_tls is awaited here, not wrapped in a task (wait_for would
    # start it one loop iteration later): it takes the transport over
    # before this task yields, so the client's ClientHello, however
    # fast, reaches the TLS protocol and never the plaintext buffer.
    try:
        async with asyncio.timeout(TLS_HANDSHAKE_SECONDS):
            new_transport = await loop.start_tls(transport, conn, context, server_side=True)
    except (OSError, TimeoutError) as exc:
        log.info("client=%s TLS handshake failed: %s", client_ip, exc)
        return False
    conn.transport = new_transport  # type: ignore[assignment]
    return True
