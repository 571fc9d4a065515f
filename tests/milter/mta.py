"""A scripted MTA speaking the milter protocol to a filter (for tests and bench)."""

from __future__ import annotations

import asyncio
import struct

from mailmoat.milter import codec

FINAL = {codec.ACCEPT, codec.CONTINUE, codec.DISCARD, codec.REJECT, codec.TEMPFAIL, b"y"}


class FakeMta:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = 0

    @classmethod
    async def connect(cls, host: str, port: int) -> FakeMta:
        reader, writer = await asyncio.open_connection(host, port)
        mta = cls(reader, writer)
        answer = await mta.send(codec.OPTNEG, struct.pack("!III", 6, 0x1FF, 0x1FFFFF))
        _v, _a, mta.protocol = struct.unpack("!III", answer[0].data)
        return mta

    async def send(self, command: bytes, data: bytes = b"", *, reply: bool = True):
        """Send one command; return the packets up to and including a final one."""
        self.writer.write(codec.encode(command, data))
        await self.writer.drain()
        if not reply:
            return []
        packets: list[codec.Packet] = []
        while True:
            packet = await asyncio.wait_for(codec.read_packet(self.reader), 10)
            assert packet is not None, "filter closed the connection"
            packets.append(packet)
            if packet.command in FINAL or packet.command == codec.OPTNEG:
                return packets

    async def session(self, client_ip: str, helo: str = "client.example"):
        connect = b"client.example\x004" + struct.pack("!H", 4000) + client_ip.encode() + b"\x00"
        first = await self.send(codec.CONNECT, connect)
        if first[-1].command != codec.CONTINUE:
            return first
        return await self.send(codec.HELO, helo.encode() + b"\x00")

    async def message(
        self, sender: str, rcpts: list[str], headers: list[tuple[str, str]], body: bytes
    ) -> dict[str, list[codec.Packet]]:
        out: dict[str, list[codec.Packet]] = {}
        await self.send(codec.MACRO, b"Mi\x00QUEUE1\x00", reply=False)
        out["mail"] = await self.send(codec.MAIL, f"<{sender}>\x00".encode())
        if out["mail"][-1].command != codec.CONTINUE:
            return out
        out["rcpt"] = []
        for rcpt in rcpts:
            out["rcpt"] += await self.send(codec.RCPT, f"<{rcpt}>\x00".encode())
        out["data"] = await self.send(codec.DATA)
        no_reply = bool(self.protocol & codec.SMFIP_NR_HDR)
        for name, value in headers:
            await self.send(codec.HEADER, f"{name}\x00 {value}\x00".encode(), reply=not no_reply)
        await self.send(codec.EOH, reply=not self.protocol & codec.SMFIP_NR_EOH)
        await self.send(codec.BODY, body)
        out["eom"] = await self.send(codec.BODYEOB)
        return out

    async def quit(self) -> None:
        await self.send(codec.QUIT, reply=False)
        self.writer.close()
