"""A raw SMTP client for tests that must send exactly the bytes they choose
(smuggling variants, pipelined garbage, bare LF) and read replies as text.

``RawClient(port)`` connects and reads the banner; ``ReplyReader(sock)``
reads replies off a socket the test already has (plain or TLS)."""

from __future__ import annotations

import socket
import time


class ReplyReader:
    """Commands written to a connected socket, complete replies read off it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """One complete (possibly multi-line) reply."""
        lines: list[str] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {lines!r} {self.buffer!r}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\r\n", 1)
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def command(self, line: str | bytes) -> str:
        data = line.encode() if isinstance(line, str) else line
        self.send(data + b"\r\n")
        return self.reply()


class RawClient(ReplyReader):
    def __init__(self, port: int, host: str = "127.0.0.1", source: str | None = None) -> None:
        super().__init__(
            socket.create_connection(
                (host, port), timeout=10, source_address=(source, 0) if source else None
            )
        )
        self.banner = self.reply()

    def closed(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, TimeoutError):
            return True
        return False

    def close(self) -> None:
        self.sock.close()
